package storetest

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/coinsaga/coinsaga/internal/orderstate"
	"github.com/coinsaga/coinsaga/store"
)

// writeLoad is what the outbox cases relay: writers on every handle, each
// accepting its orders and applying steps to each, every write with one
// outbox message "<order>:<step>".
type writeLoad struct {
	// expected holds every message id the writers write.
	expected map[string]bool
	// done is closed once every writer has returned.
	done chan struct{}

	mu   sync.Mutex
	errs []error
}

// startWriters starts writers goroutines per handle, each writing orders
// orders of steps steps after the accept. pause, when not nil, is called
// once per writer, in order, for how many times it yields between writes
// (to vary the interleaving).
func startWriters(t *testing.T, handles []store.Store, writers, orders, steps int, pause func() int) *writeLoad {
	l := &writeLoad{expected: map[string]bool{}, done: make(chan struct{})}
	var wg sync.WaitGroup
	for side, s := range handles {
		for w := range writers {
			yields := 0
			if pause != nil {
				yields = pause()
			}
			ids := make([]string, orders)
			for i := range ids {
				ids[i] = fmt.Sprintf("o-%d-%d-%02d", side, w, i)
				for st := 0; st <= steps; st++ {
					l.expected[fmt.Sprintf("%s:%d", ids[i], st)] = true
				}
			}
			wg.Go(func() {
				if err := writeOrders(t, s, ids, steps, yields); err != nil {
					l.mu.Lock()
					defer l.mu.Unlock()
					l.errs = append(l.errs, err)
				}
			})
		}
	}
	go func() { wg.Wait(); close(l.done) }()
	return l
}

func writeOrders(t *testing.T, s store.Store, ids []string, steps, yields int) error {
	for _, id := range ids {
		res, err := s.Accept(ctx(t), []store.Accept{{Order: Order(id, now()), History: store.HistoryEntry{State: "accepted"},
			Outbox: []store.Message{{Subject: "s", MsgID: id + ":0"}}}})
		if err != nil || !res[0].Created {
			return fmt.Errorf("accept %s: %+v, %v", id, res, err)
		}
		cur, err := s.Get(ctx(t), id)
		if err != nil {
			return err
		}
		for st := 1; st <= steps; st++ {
			to := cur
			to.Seq = st + 1
			if cur, err = s.Apply(ctx(t), store.Transition{From: cur, To: to,
				History: []store.HistoryEntry{{State: to.State}},
				Outbox:  []store.Message{{Subject: "s", MsgID: fmt.Sprintf("%s:%d", id, st)}}}); err != nil {
				return fmt.Errorf("apply %s step %d: %w", id, st, err)
			}
			for range yields {
				runtime.Gosched()
			}
		}
	}
	return nil
}

// err is what the writers failed with, once done is closed.
func (l *writeLoad) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(l.errs...)
}

// checkEachOnce reports the expected messages that got (how many times
// each was read, or acked) has not exactly once.
func (l *writeLoad) checkEachOnce(t *testing.T, got map[string]int, verb string) {
	t.Helper()
	var lost, twice []string
	for id := range l.expected {
		switch got[id] {
		case 0:
			lost = append(lost, id)
		case 1:
		default:
			twice = append(twice, id)
		}
	}
	slices.Sort(lost)
	if len(lost) > 0 || len(twice) > 0 {
		t.Errorf("of %d messages, %d lost (%v), %d %s twice (%v)", len(l.expected), len(lost), lost, len(twice), verb, twice)
	}
}

// raceTally is how a race of applies from one version ended.
type raceTally struct {
	won, stale int
	winner     orderstate.State // the state the winning apply wrote
	unexpected []error
}

// applyRace has racers goroutines per handle apply a transition from o at
// once, each to the state named by state(side, i), with one outbox message
// of that name when outbox is set.
func applyRace(t *testing.T, o store.Order, handles []store.Store, racers int, state func(side, i int) string, outbox bool) raceTally {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		tally raceTally
		start = make(chan struct{})
	)
	for side, s := range handles {
		for i := range racers {
			wg.Go(func() {
				to := o
				to.State, to.Seq = orderstate.State(state(side, i)), 2
				tr := store.Transition{From: o, To: to, History: []store.HistoryEntry{{State: to.State}}}
				if outbox {
					tr.Outbox = []store.Message{{Subject: "s", MsgID: string(to.State)}}
				}
				<-start
				_, err := s.Apply(ctx(t), tr)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					tally.won++
					tally.winner = to.State
				case errors.Is(err, store.ErrStale):
					tally.stale++
				default:
					tally.unexpected = append(tally.unexpected, err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	return tally
}
