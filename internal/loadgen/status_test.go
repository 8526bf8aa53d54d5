package loadgen

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
)

func TestPercentileMSIsTheNearestRank(t *testing.T) {
	t.Parallel()
	ms := func(vs ...float64) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v * float64(time.Millisecond))
		}
		return out
	}
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   float64
	}{
		{"no samples give zero", nil, 0.5, 0},
		{"one sample is every percentile", ms(7), 0.99, 7},
		{"the median of four is the second", ms(1, 2, 3, 4), 0.50, 2},
		{"p99 of four is the largest", ms(1, 2, 3, 4), 0.99, 4},
		{"p50 of 1..100 ms is 50 ms", ms(hundred...), 0.50, 50},
		{"p95 of 1..100 ms is 95 ms", ms(hundred...), 0.95, 95},
		{"p99 of 1..100 ms is 99 ms", ms(hundred...), 0.99, 99},
		{"p100 is the largest", ms(hundred...), 1, 100},
		{"p0 is the smallest, not below it", ms(3, 5), 0, 3},
		{"a fraction of a millisecond is rounded to the microsecond", []time.Duration{1234567 * time.Nanosecond}, 0.5, 1.235},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := percentileMS(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentileMS(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

// event is one status event as the tracker sees it: order i reached state,
// decided ms after the epoch and arriving ms after it.
type event struct {
	i                int
	state            events.State
	decided, arrived int // ms after the epoch; decided < 0: no decision time
}

func TestTrackerCountsEachOrderOnceAndTimesItFromItsPublish(t *testing.T) {
	t.Parallel()
	parked := func(s events.State) bool { return s == events.StateDebited || s.Terminal() }
	cases := []struct {
		name      string
		n         int
		target    func(events.State) bool
		events    []event
		pubFailed []int
		wantDone  bool
		want      Result
	}{
		{name: "two completed orders are done, timed from their publish to their event",
			n: 2, target: events.State.Terminal,
			events:   []event{{0, events.StateAccepted, 1, 2}, {0, events.StateCompleted, 30, 31}, {1, events.StateCompleted, 45, 50}},
			wantDone: true,
			want:     Result{Completed: 2, P50ms: 21, P95ms: 30, P99ms: 30, EventLagP50ms: 1, EventLagP99ms: 5}},
		{name: "a repeated terminal event counts once",
			n: 2, target: events.State.Terminal,
			events: []event{{0, events.StateCompleted, 30, 31}, {0, events.StateCompleted, 30, 90}},
			want:   Result{Completed: 1, Unfinished: 1, P50ms: 21, P95ms: 21, P99ms: 21, EventLagP50ms: 1, EventLagP99ms: 1}},
		{name: "a failed and a compensated order count as failed",
			n: 2, target: events.State.Terminal,
			events:   []event{{0, events.StateFailed, 20, 25}, {1, events.StateCompensated, 40, 40}},
			wantDone: true,
			want:     Result{Failed: 2, P50ms: 15, P95ms: 20, P99ms: 20, EventLagP50ms: 0, EventLagP99ms: 5}},
		{name: "states before the target do not finish an order",
			n: 1, target: events.State.Terminal,
			events: []event{{0, events.StateAccepted, 1, 1}, {0, events.StateDebited, 5, 5}},
			want:   Result{Unfinished: 1}},
		{name: "an order parked at its target counts its later end but not its latency",
			n: 1, target: parked,
			events:   []event{{0, events.StateDebited, 5, 6}, {0, events.StateCompleted, 70, 71}},
			wantDone: true,
			want:     Result{Completed: 1}},
		{name: "an event without a decision time has a latency but no event lag",
			n: 1, target: events.State.Terminal,
			events:   []event{{0, events.StateCompleted, -1, 12}},
			wantDone: true,
			want:     Result{Completed: 1, P50ms: 2, P95ms: 2, P99ms: 2}},
		{name: "an order JetStream never stored fails and finishes the run",
			n: 2, target: events.State.Terminal,
			events:    []event{{0, events.StateCompleted, 30, 31}},
			pubFailed: []int{1, 1},
			wantDone:  true,
			want:      Result{Completed: 1, Failed: 1, PublishFailures: 1, P50ms: 21, P95ms: 21, P99ms: 21, EventLagP50ms: 1, EventLagP99ms: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := newTracker("r1", tc.n, tc.target)
			at := func(ms int) time.Time { return tr.epoch.Add(time.Duration(ms) * time.Millisecond) }
			for i := range tc.n {
				tr.pubAt[i].Store(int64(time.Duration(10*(i+1)) * time.Millisecond)) // order i published at 10(i+1) ms
			}
			for _, ev := range tc.events {
				decided := time.Time{}
				if ev.decided >= 0 {
					decided = at(ev.decided)
				}
				tr.observe(ev.i, ev.state, decided, at(ev.arrived))
			}
			for _, i := range tc.pubFailed {
				tr.publishFailed(i)
			}
			if got := tr.finished(); got != tc.wantDone {
				t.Errorf("finished() = %v, want %v", got, tc.wantDone)
			}
			var got Result
			tr.fill(&got)
			if got != tc.want {
				t.Errorf("fill:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestTrackerReportsATimeoutOnlyWhileOrdersAreMissing(t *testing.T) {
	t.Parallel()
	tr := newTracker("r1", 1, events.State.Terminal)
	tr.timedOut.Store(true)
	var r Result
	tr.fill(&r)
	if !r.TimedOut || r.Unfinished != 1 {
		t.Errorf("an unfinished run after the timeout: TimedOut %v, Unfinished %d; want true, 1", r.TimedOut, r.Unfinished)
	}
	tr.observe(0, events.StateCompleted, time.Time{}, time.Now())
	tr.fill(&r)
	if r.TimedOut || r.Unfinished != 0 {
		t.Errorf("a run whose last order ended after all: TimedOut %v, Unfinished %d; want false, 0", r.TimedOut, r.Unfinished)
	}
}

func TestWatcherHandsEachRunItsOwnOrders(t *testing.T) {
	t.Parallel()
	w := newWatcher(events.Subjects{})
	mine := w.track("m42", 3, events.State.Terminal)
	other := w.track("z42", 1, events.State.Terminal)
	msg := func(id string, s events.State) *nats.Msg {
		data, err := json.Marshal(events.StatusEvent{OutOrderID: id, State: s, At: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return &nats.Msg{Data: data}
	}
	for _, m := range []*nats.Msg{
		msg("m42-0", events.StateCompleted),
		msg("m42-2", events.StateFailed),
		msg("m42-3", events.StateCompleted),    // past the run's last order
		msg("m42-x", events.StateCompleted),    // not an index
		msg("m41-1", events.StateCompleted),    // another run
		msg("noprefix", events.StateCompleted), // no run at all
		{Data: []byte("not json")},
		msg("z42-0", events.StateCompleted),
	} {
		w.handle(m)
	}
	if got := mine.countTerminal(); got != 2 {
		t.Errorf("run m42 saw %d terminal orders, want 2 (m42-0, m42-2)", got)
	}
	if got := mine.unfinished(); got != 1 {
		t.Errorf("run m42 has %d unfinished orders, want 1 (m42-1)", got)
	}
	if !other.finished() {
		t.Error("run z42 did not see its only order end")
	}
}
