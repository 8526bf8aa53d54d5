package kit

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
)

// Status records every status event and dead letter as it is published,
// so that tests wait on them rather than poll the streams.
type Status struct {
	mu   sync.Mutex
	byID map[string][]events.StatusEvent // by out_order_id, in arrival order
	raw  [][]byte                        // every status event exactly as published
	dead []*nats.Msg                     // every dead letter as published
	wake chan struct{}

	// Diagnose, when set, is added to every wait's failure (a worker's
	// log tail, say).
	Diagnose func() string
}

// WatchStatus subscribes to every status event under subjects on nc, from
// now until the test ends; WatchDeadLetters adds the dead letters.
func WatchStatus(t testing.TB, nc *nats.Conn, subjects events.Subjects) *Status {
	t.Helper()
	s := &Status{byID: map[string][]events.StatusEvent{}, wake: make(chan struct{}, 1)}
	subscribe(t, nc, subjects.Statuses(), func(m *nats.Msg) {
		var ev events.StatusEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Errorf("status event does not decode: %v: %s", err, m.Data)
			return
		}
		s.mu.Lock()
		s.byID[ev.OutOrderID] = append(s.byID[ev.OutOrderID], ev)
		s.raw = append(s.raw, m.Data)
		s.mu.Unlock()
		s.notify()
	})
	return s
}

// WatchDeadLetters records every dead letter as published, too. It is a
// choice, not a default: a plain subscriber on the dead-letter subjects
// changes what a worker sees when the dead-letter stream is gone (its
// publish then reaches a listener that never acknowledges, instead of
// finding no one), which tests of that case must not have.
func (s *Status) WatchDeadLetters(t testing.TB, nc *nats.Conn, subjects events.Subjects) *Status {
	t.Helper()
	subscribe(t, nc, subjects.DeadLetters(), func(m *nats.Msg) {
		s.mu.Lock()
		s.dead = append(s.dead, m)
		s.mu.Unlock()
		s.notify()
	})
	return s
}

// subscribe calls f with every message on subject until the test ends;
// the subscription is in place when it returns, before the test publishes.
func subscribe(t testing.TB, nc *nats.Conn, subject string, f nats.MsgHandler) {
	t.Helper()
	sub, err := nc.Subscribe(subject, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
}

func (s *Status) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Events returns the events of one order in arrival order.
func (s *Status) Events(id string) []events.StatusEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.byID[id])
}

// Raw returns every status event so far, as published.
func (s *Status) Raw() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.raw)
}

// DeadLettersSeen returns every dead letter published so far.
func (s *Status) DeadLettersSeen() []*nats.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.dead)
}

// States returns the states an order went through, by seq.
func (s *Status) States(id string) []events.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	bySeq := map[int]events.State{}
	top := 0
	for _, ev := range s.byID[id] {
		bySeq[ev.Seq] = ev.State
		top = max(top, ev.Seq)
	}
	out := make([]events.State, 0, top)
	for i := 1; i <= top; i++ {
		out = append(out, bySeq[i])
	}
	return out
}

// Last returns the order's highest-seq event, and whether it has one.
func (s *Status) Last(id string) (events.StatusEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last events.StatusEvent
	for _, ev := range s.byID[id] {
		if ev.Seq > last.Seq {
			last = ev
		}
	}
	return last, last.Seq > 0
}

// Wait waits until cond holds, re-checking whenever an event or a dead
// letter arrives (and now and then, for conditions on other things).
func (s *Status) Wait(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	EventuallyOn(t, s.wake, timeout, what, cond, s.Diagnose)
}

// WaitState waits until id has published an event of state.
func (s *Status) WaitState(t testing.TB, id string, state events.State, timeout time.Duration) {
	t.Helper()
	s.Wait(t, timeout, fmt.Sprintf("order %s reaches %s", id, state), func() bool {
		return slices.Contains(s.States(id), state)
	})
}

// WaitLatest waits until every order's latest event is in one of states.
func (s *Status) WaitLatest(t testing.TB, ids []string, timeout time.Duration, states ...events.State) {
	t.Helper()
	s.Wait(t, timeout, fmt.Sprintf("%d orders reach %v", len(ids), states), func() bool {
		for _, id := range ids {
			if last, _ := s.Last(id); !slices.Contains(states, last.State) {
				return false
			}
		}
		return true
	})
}

// WaitTerminal waits until every id has published a terminal state event,
// and returns those final events.
func (s *Status) WaitTerminal(t testing.TB, timeout time.Duration, ids ...string) map[string]events.StatusEvent {
	t.Helper()
	final := map[string]events.StatusEvent{}
	var missing []string
	cond := func() bool {
		clear(final)
		missing = missing[:0]
		for _, id := range ids {
			if ev, ok := s.Last(id); ok && ev.State.Terminal() {
				final[id] = ev
			} else if len(missing) < 5 {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	}
	more := func() string {
		out := fmt.Sprintf("%d of %d orders not terminal, e.g. %v", len(ids)-len(final), len(ids), missing)
		if s.Diagnose != nil {
			out += "\n" + s.Diagnose()
		}
		return out
	}
	EventuallyOn(t, s.wake, timeout, "every order terminal", cond, more)
	return final
}
