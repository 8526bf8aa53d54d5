package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/progress"
)

// watcher reads every status event and hands this run's to their tracker.
type watcher struct {
	subjects events.Subjects
	sub      *nats.Subscription
	mu       sync.Mutex
	trackers map[string]*tracker // by out_order_id prefix
}

func newWatcher(s events.Subjects) *watcher {
	return &watcher{subjects: s, trackers: map[string]*tracker{}}
}

func (w *watcher) subscribe(nc *nats.Conn) error {
	sub, err := nc.Subscribe(w.subjects.Statuses(), w.handle)
	if err != nil {
		return fmt.Errorf("subscribe to status events: %w", err)
	}
	// Never drop an event for being slow: a lost terminal event would
	// leave the run waiting for an order that finished.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return fmt.Errorf("status subscription: %w", err)
	}
	// The subscription must be live at the server before the first
	// publish, or the fastest orders' events could pass unseen.
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("status subscription: %w", err)
	}
	w.sub = sub
	return nil
}

func (w *watcher) unsubscribe() {
	if w.sub != nil {
		_ = w.sub.Unsubscribe()
	}
}

// track registers n orders named prefix-0 … prefix-(n-1), done when they
// reach a state target accepts.
func (w *watcher) track(prefix string, n int, target func(events.State) bool) *tracker {
	t := newTracker(prefix, n, target)
	w.mu.Lock()
	w.trackers[prefix] = t
	w.mu.Unlock()
	return t
}

// Status is the part of a status event a load generator reads.
type Status struct {
	OutOrderID string       `json:"out_order_id"`
	State      events.State `json:"state"`
	At         time.Time    `json:"at"` // when the worker decided the state
}

// ReadStatus takes the three fields of Status from a status event. The
// bench reads tens of thousands of events a second on the same cores as
// the system it measures, so it looks for the plain string fields first
// (ids, states and times never need JSON escapes) and decodes the whole
// event only when that fails.
func ReadStatus(data []byte) (Status, bool) {
	id, okID := plainField(data, `"out_order_id":"`)
	state, okState := plainField(data, `"state":"`)
	at, okAt := plainField(data, `"at":"`)
	if okID && okState && okAt {
		if t, err := time.Parse(time.RFC3339Nano, string(at)); err == nil {
			return Status{OutOrderID: string(id), State: events.State(state), At: t}, true
		}
	}
	var ev Status
	if err := json.Unmarshal(data, &ev); err != nil {
		return Status{}, false
	}
	return ev, true
}

// plainField returns the string after key up to the closing quote, if it
// holds no escape.
func plainField(data []byte, key string) ([]byte, bool) {
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return nil, false
	}
	v := data[i+len(key):]
	end := bytes.IndexByte(v, '"')
	if end < 0 || bytes.IndexByte(v[:end], '\\') >= 0 {
		return nil, false
	}
	return v[:end], true
}

func (w *watcher) handle(m *nats.Msg) {
	arrived := time.Now()
	ev, ok := ReadStatus(m.Data)
	if !ok {
		return // not ours to judge; the run counts only its own orders
	}
	dash := strings.LastIndexByte(ev.OutOrderID, '-')
	if dash < 0 {
		return
	}
	w.mu.Lock()
	t := w.trackers[ev.OutOrderID[:dash]]
	w.mu.Unlock()
	if t == nil {
		return
	}
	i, err := strconv.Atoi(ev.OutOrderID[dash+1:])
	if err != nil || i < 0 || i >= t.n {
		return
	}
	t.observe(i, ev.State, ev.At, arrived)
}

// tracker follows one batch of orders from publish to their target state.
type tracker struct {
	prefix   string
	n        int
	epoch    time.Time
	pubAt    []atomic.Int64 // ns since epoch; written by the publisher
	done     chan struct{}
	timedOut atomic.Bool
	retried  atomic.Int64 // publishes that needed a second try
	bar      *progress.Bar

	mu        sync.Mutex
	target    func(events.State) bool
	reached   []bool
	terminal  []bool
	count     int
	completed int
	failed    int
	pubFailed int
	latency   []time.Duration
	eventLag  []time.Duration // terminal state decided to its event's arrival
}

func newTracker(prefix string, n int, target func(events.State) bool) *tracker {
	return &tracker{prefix: prefix, n: n, target: target, done: make(chan struct{}),
		pubAt: make([]atomic.Int64, n), reached: make([]bool, n), terminal: make([]bool, n),
		latency: make([]time.Duration, 0, n), epoch: time.Now()}
}

func (t *tracker) index(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, t.prefix+"-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	return i, err == nil && i >= 0 && i < t.n
}

func (t *tracker) published(i int) { t.pubAt[i].Store(int64(time.Since(t.epoch))) }

// retarget changes the state the orders not yet done wait for.
func (t *tracker) retarget(target func(events.State) bool) {
	t.mu.Lock()
	t.target = target
	t.mu.Unlock()
}

// publishFailed counts an order JetStream never stored: it can never
// finish, so it counts as failed rather than leave the run waiting.
func (t *tracker) publishFailed(i int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reached[i] {
		return
	}
	t.pubFailed++
	t.failed++
	t.terminal[i] = true
	t.reach(i)
}

// observe records that order i's event for state s, decided at decided,
// arrived at arrived.
func (t *tracker) observe(i int, s events.State, decided, arrived time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.Terminal() && !t.terminal[i] {
		t.terminal[i] = true
		if s == events.StateCompleted {
			t.completed++
		} else {
			t.failed++
		}
		if !t.reached[i] {
			t.latency = append(t.latency, arrived.Sub(t.epoch)-time.Duration(t.pubAt[i].Load()))
			if !decided.IsZero() {
				t.eventLag = append(t.eventLag, arrived.Sub(decided))
			}
		}
	}
	if !t.reached[i] && t.target(s) {
		t.reach(i)
	}
}

// reach marks order i done; t.mu is held.
func (t *tracker) reach(i int) {
	t.reached[i] = true
	t.count++
	if t.bar != nil {
		t.bar.Add(1)
	}
	if t.count == t.n {
		close(t.done)
	}
}

func (t *tracker) finished() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

func (t *tracker) unfinished() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n - t.count
}

func (t *tracker) countTerminal() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.completed + t.failed
}

// fill copies the counts and latency percentiles into r.
func (t *tracker) fill(r *Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r.Completed, r.Failed, r.PublishFailures = t.completed, t.failed, t.pubFailed
	r.PublishRetries = int(t.retried.Load())
	r.Unfinished = t.n - t.count
	r.TimedOut = t.timedOut.Load() && r.Unfinished > 0
	lat := slices.Clone(t.latency)
	slices.Sort(lat)
	r.P50ms, r.P95ms, r.P99ms = percentileMS(lat, 0.50), percentileMS(lat, 0.95), percentileMS(lat, 0.99)
	lag := slices.Clone(t.eventLag)
	slices.Sort(lag)
	r.EventLagP50ms, r.EventLagP99ms = percentileMS(lag, 0.50), percentileMS(lag, 0.99)
}

// percentileMS is the nearest-rank percentile of sorted durations, in ms.
func percentileMS(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(p*float64(len(sorted)))) - 1
	k = max(0, min(k, len(sorted)-1))
	return round3(float64(sorted[k]) / float64(time.Millisecond))
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
