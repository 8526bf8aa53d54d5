package worker

import (
	"testing"
	"time"
)

func TestStoreWrites(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	t.Run("a worker whose writes succeed starts every step", func(t *testing.T) {
		var s storeWrites
		for i := range 3 {
			if !s.admit(at(time.Duration(i))) || !s.ok() {
				t.Fatal("a step was held back with no write failing")
			}
		}
		if recovered, _, _, _ := s.succeeded(at(0)); recovered {
			t.Error("a success with no failure before it counts as a recovery")
		}
	})

	t.Run("a failure pauses every step, then lets one through per delay", func(t *testing.T) {
		var s storeWrites
		s.failed(at(0))
		if s.ok() || s.mayStart(at(time.Millisecond)) || s.admit(at(time.Millisecond)) {
			t.Fatal("a step may start right after a failed write")
		}
		resume, paused := s.paused(at(time.Millisecond))
		if !paused || resume.Before(at(80*time.Millisecond)) || resume.After(at(120*time.Millisecond)) {
			t.Fatalf("paused until %v (%v), want about 100ms on", resume.Sub(t0), paused)
		}
		if !s.admit(resume) {
			t.Fatal("no probe once the delay passed")
		}
		if s.mayStart(resume) || s.admit(resume.Add(time.Millisecond)) {
			t.Fatal("a second step started beside the probe")
		}
	})

	t.Run("the delay grows only with failures after it passed, up to its cap", func(t *testing.T) {
		var s storeWrites
		s.failed(at(0))
		for range 50 {
			s.failed(at(time.Millisecond)) // steps under way when the store failed
		}
		if s.level != 0 {
			t.Fatalf("level %d after failures within the first delay, want 0", s.level)
		}
		now := at(0)
		var last time.Duration
		for i := range 12 {
			resume, _ := s.paused(now)
			if !s.admit(resume) {
				t.Fatalf("probe %d refused at the end of its pause", i)
			}
			now = resume.Add(time.Millisecond)
			s.failed(now)
			next, _ := s.paused(now)
			last = next.Sub(now)
		}
		if last < 4*time.Second || last > 6*time.Second {
			t.Errorf("delay %v after 12 failed probes, want about the 5s cap", last)
		}
	})

	t.Run("a success ends the pause and says how many writes failed", func(t *testing.T) {
		var s storeWrites
		for i := range 4 {
			s.failed(at(time.Duration(i) * time.Millisecond))
		}
		recovered, logIt, failures, lasted := s.succeeded(at(2 * time.Second))
		if !recovered || !logIt || failures != 4 || lasted != 2*time.Second {
			t.Fatalf("recovered %v (logged %v) after %d failures over %v, want true, true, 4, 2s", recovered, logIt, failures, lasted)
		}
		if !s.ok() || !s.admit(at(2*time.Second)) {
			t.Error("steps still held back after a write succeeded")
		}
		s.failed(at(3 * time.Second))
		if _, _, failures, _ := s.succeeded(at(4 * time.Second)); failures != 1 {
			t.Errorf("a new run of failures counts %d, want 1", failures)
		}
	})

	t.Run("failures are logged once per interval with the count of those not logged", func(t *testing.T) {
		var s storeWrites
		if logIt, _, _, _ := s.failed(at(0)); !logIt {
			t.Fatal("the first failure is not logged")
		}
		for i := 1; i <= 10; i++ {
			if logIt, _, _, _ := s.failed(at(time.Duration(i) * 100 * time.Millisecond)); logIt {
				t.Fatalf("failure %d, %v after the first, logged", i, time.Duration(i)*100*time.Millisecond)
			}
		}
		logIt, suppressed, failures, _ := s.failed(at(storeLogEvery))
		if !logIt || suppressed != 10 || failures != 12 {
			t.Errorf("after %v: logged %v, suppressed %d, failures %d; want true, 10, 12", storeLogEvery, logIt, suppressed, failures)
		}
	})

	t.Run("a store that fails and recovers over and over is logged once per interval", func(t *testing.T) {
		var s storeWrites
		lines := 0
		for i := range 100 { // a flip every 50ms for 5s
			now := at(time.Duration(i) * 50 * time.Millisecond)
			if logIt, _, _, _ := s.failed(now); logIt {
				lines++
			}
			if _, logIt, _, _ := s.succeeded(now.Add(time.Millisecond)); logIt {
				lines++
			}
		}
		if lines != 2 {
			t.Errorf("%d lines for 100 runs of failures within %v, want 2 (failing, recovered)", lines, storeLogEvery)
		}
	})
}
