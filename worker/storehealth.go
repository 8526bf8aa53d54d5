package worker

import (
	"sync"
	"sync/atomic"
	"time"
)

// storeBackoff paces the steps while the store cannot write: a step whose
// commit fails leaves its order due, so without a pause every due order
// would run again at once, calling the providers each time for an outcome
// that cannot be kept (a full disk made thousands of calls a second).
var storeBackoff = RetryPolicy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// storeLogEvery is how often, at most, failing writes are logged; the
// line counts the failures it stands for.
const storeLogEvery = 5 * time.Second

// storeWrites is whether the store takes writes, for the whole worker: a
// full disk or a broken file fails every order's commit alike, so the
// pause is the worker's, not an order's.
//
// After a write fails, no step starts until the backoff delay has passed;
// then one step may start (a probe, with its provider calls), and the
// next after another delay. A delay that passes with a failure grows the
// next one; failures of steps that were under way already do not. Any
// write that succeeds ends the pause. An order whose commit failed is
// left as last stored: it runs again later, with the same idempotency
// keys, so a repeated pay is the same bill.
type storeWrites struct {
	failing atomic.Bool // read without the lock on every step start and commit

	mu         sync.Mutex
	since      time.Time // first failure of this run
	failures   int       // failed writes in this run
	level      int       // backoff delays grown in this run
	until      time.Time // no step starts before this
	nextProbe  time.Time // nor before this, once a probe has started
	loggedAt   time.Time // last "failing" line, of this run or an earlier one
	loggedRun  bool      // this run has had its "failing" line
	suppressed int       // failures since that line
}

// failed notes a failed write at now. It says whether to log it, and how
// many failures went unlogged before it. A store that fails and recovers
// over and over is logged no more often than one that keeps failing.
func (s *storeWrites) failed(now time.Time) (logIt bool, suppressed, failures int, retryIn time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.failing.Load():
		s.since, s.failures, s.level, s.loggedRun = now, 0, 0, false
		s.until = now.Add(storeBackoff.Delay(0))
		s.failing.Store(true)
	case !now.Before(s.until):
		s.level++
		s.until = now.Add(storeBackoff.Delay(s.level))
	}
	s.failures++
	if !s.loggedAt.IsZero() && now.Sub(s.loggedAt) < storeLogEvery {
		s.suppressed++
		return false, 0, s.failures, 0
	}
	suppressed, s.suppressed, s.loggedAt, s.loggedRun = s.suppressed, 0, now, true
	return true, suppressed, s.failures, s.until.Sub(now)
}

// succeeded notes a write that succeeded at now. It says whether that
// ended a run of failures, whether the run was logged (then so is its
// end), how many writes failed in it, and how long it lasted.
func (s *storeWrites) succeeded(now time.Time) (recovered, logIt bool, failures int, lasted time.Duration) {
	if !s.failing.Load() {
		return false, false, 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failing.Load() {
		return false, false, 0, 0
	}
	s.failing.Store(false)
	return true, s.loggedRun, s.failures, now.Sub(s.since)
}

// ok reports whether writes are succeeding.
func (s *storeWrites) ok() bool { return !s.failing.Load() }

// mayStart reports whether a step may start at now.
func (s *storeWrites) mayStart(now time.Time) bool {
	if !s.failing.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.probeDue(now)
}

// admit is mayStart for a step that starts if it says yes: while writes
// fail, the probe it lets through holds back the next one by a delay.
func (s *storeWrites) admit(now time.Time) bool {
	if !s.failing.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.probeDue(now) {
		return false
	}
	s.nextProbe = now.Add(storeBackoff.Delay(s.level))
	return true
}

// paused returns when the next step may start, and whether that is after
// now.
func (s *storeWrites) paused(now time.Time) (time.Time, bool) {
	if !s.failing.Load() {
		return time.Time{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resume := s.until
	if s.nextProbe.After(resume) {
		resume = s.nextProbe
	}
	return resume, resume.After(now)
}

func (s *storeWrites) probeDue(now time.Time) bool {
	return !s.failing.Load() || (!now.Before(s.until) && !now.Before(s.nextProbe))
}

// storeWriteFailed notes a write the store refused (not a stale or missing
// order: those are answers) and logs it, at most once per storeLogEvery.
func (w *Worker) storeWriteFailed(what string, err error) {
	if w.metrics != nil {
		w.metrics.storeFailures.Inc()
	}
	logIt, suppressed, failures, retryIn := w.writes.failed(w.now())
	if logIt {
		w.log.Error("store writes failing; pausing steps", "writing", what, "err", err,
			"failures", failures, "suppressed", suppressed, "retry_in", retryIn.Round(time.Millisecond))
	}
}

// storeWriteOK notes a write the store took, which ends a pause.
func (w *Worker) storeWriteOK() {
	recovered, logIt, failures, lasted := w.writes.succeeded(w.now())
	if !recovered {
		return
	}
	if logIt {
		w.log.Info("store writes recovered; steps resume", "failures", failures, "after", lasted.Round(time.Millisecond))
	}
	wake(w.wakeSched) // the orders left due wait for no timer
}
