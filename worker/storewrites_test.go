package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/worker"
)

// errDiskFull is what SQLite says when the file or its WAL cannot grow.
var errDiskFull = errors.New("database or disk is full")

// fullDisk is a store whose writes fail while full is set, as SQLite's do
// on a full disk; reads keep working, as they do there.
type fullDisk struct {
	store.Store
	full atomic.Bool
	// applies picks the commits that fail (nil: every one); accepts says
	// whether recording intents fails too.
	applies func(store.Transition) bool
	accepts bool

	mu            sync.Mutex
	refusedAccept map[string]bool // out_order_ids of intents not recorded
}

func (s *fullDisk) Apply(ctx context.Context, t store.Transition) (store.Order, error) {
	if s.full.Load() && (s.applies == nil || s.applies(t)) {
		return store.Order{}, fmt.Errorf("store: apply %s: %w", t.From.OutOrderID, errDiskFull)
	}
	return s.Store.Apply(ctx, t)
}

func (s *fullDisk) Accept(ctx context.Context, reqs []store.Accept) ([]store.AcceptResult, error) {
	if s.full.Load() && s.accepts {
		s.mu.Lock()
		for _, r := range reqs {
			s.refusedAccept[r.Order.OutOrderID] = true
		}
		s.mu.Unlock()
		return nil, fmt.Errorf("store: accept: %w", errDiskFull)
	}
	return s.Store.Accept(ctx, reqs)
}

// levelCounter counts log records by level and keeps their messages.
type levelCounter struct {
	mu   sync.Mutex
	n    map[slog.Level]int
	msgs []string
}

func (h *levelCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h *levelCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n[r.Level]++
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *levelCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *levelCounter) WithGroup(string) slog.Handler      { return h }

func (h *levelCounter) count(l slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[l]
}

func (h *levelCounter) said(prefix string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if strings.HasPrefix(m, prefix) {
			return true
		}
	}
	return false
}

func TestAStoreThatCannotWrite(t *testing.T) {
	const (
		orders = 5
		// window is how long the test watches the worker while the store
		// fails. maxCalls bounds the provider calls in it: what the orders
		// under way when the store failed still call before their commits
		// (at most three calls each: the balance read and create_order, or
		// after a debit the balance poll and SUD's verdict with the pay),
		// then one order per backoff period (100 ms doubling: four fit in
		// two seconds; allow five) of at most three calls (a repeated
		// create_order, the query that follows it, the balance read; or a
		// repeated pay, the poll and the verdict query).
		// Without the backoff every order runs again every 50 ms: hundreds
		// of calls.
		window   = 2 * time.Second
		maxCalls = 3*orders + 3*5
		// maxErrors bounds the ERROR lines in the window: one when the
		// failures start, then one every few seconds at most.
		maxErrors = 2
	)
	tests := []struct {
		name string
		// applies and accepts say which writes fail (see fullDisk).
		applies func(store.Transition) bool
		accepts bool
		// stalled holds once every order is where the full disk stops it.
		stalled func(e *env, d *fullDisk, ids []string) bool
	}{
		{
			name: "when no commit can be stored the worker pauses, is not ready, and completes every order once the store writes again",
			stalled: func(e *env, _ *fullDisk, ids []string) bool {
				return allOrders(e, ids, func(o store.Order) bool { return true })
			},
		},
		{
			name:    "when the commit after a debit cannot be stored the pay is repeated later with its bill_no and charges once",
			applies: func(t store.Transition) bool { return t.From.Step == worker.StepPay },
			stalled: func(e *env, _ *fullDisk, ids []string) bool {
				return allOrders(e, ids, func(o store.Order) bool { return o.Step == worker.StepPay })
			},
		},
		{
			name:    "when intents cannot be recorded the worker is not ready until they can",
			accepts: true,
			stalled: func(_ *env, d *fullDisk, ids []string) bool {
				d.mu.Lock()
				defer d.mu.Unlock()
				for _, id := range ids {
					if !d.refusedAccept[id] {
						return false
					}
				}
				return true
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			disk := &fullDisk{applies: tt.applies, accepts: tt.accepts, refusedAccept: map[string]bool{}}
			logs := &levelCounter{n: map[slog.Level]int{}}
			reg := prometheus.NewRegistry()
			e := startEnv(t, func(c *worker.Config) {
				disk.Store = c.Store
				c.Store = disk
				c.Logger = slog.New(logs)
				c.Metrics = worker.NewMetrics(reg)
			})
			disk.full.Store(true)
			var ids []string
			amounts := map[string]int64{}
			for i := range orders {
				in := intent([]string{events.ProviderMOGS, events.ProviderMidas}[i%2], int64(20+i))
				e.publishIntent(in)
				ids = append(ids, in.OutOrderID)
				amounts[in.Payment.OpenID] = in.Payment.Amount
			}
			kit.Eventually(t, 10*time.Second, "every order stopped by the full disk", func() bool { return tt.stalled(e, disk, ids) })

			// The worker says it is not ready as soon as a write fails, and
			// stays so while they do.
			calls, errs, notReady := e.calls.Total(), logs.count(slog.LevelError), false
			for end := time.Now().Add(window); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				if n := e.calls.Total() - calls; n > maxCalls {
					t.Fatalf("%d provider calls within %s of a full disk, want at most %d", n, window, maxCalls)
				}
				switch ready := e.worker.Ready(); {
				case !ready:
					notReady = true
				case notReady:
					t.Fatal("the worker said it was ready again while the store could not write")
				}
			}
			if !notReady {
				t.Fatalf("the worker said it was ready for all of %s while the store could not write", window)
			}
			t.Logf("%d provider calls and %d ERROR lines in %s of a full disk", e.calls.Total()-calls, logs.count(slog.LevelError)-errs, window)
			if n := logs.count(slog.LevelError) - errs; n > maxErrors {
				t.Errorf("%d ERROR lines in %s of a full disk, want at most %d", n, window, maxErrors)
			}
			if !logs.said("store writes failing") {
				t.Error(`no "store writes failing" line`)
			}
			if n := metric(t, reg, "coinsaga_store_write_failures_total"); n < 1 {
				t.Errorf("coinsaga_store_write_failures_total %v, want the failures counted", n)
			}
			kit.Eventually(t, 5*time.Second, "coinsaga_store_writes_failing is 1", func() bool {
				return metric(t, reg, "coinsaga_store_writes_failing") == 1
			})

			disk.full.Store(false)
			for id, ev := range e.waitTerminal(30*time.Second, ids...) {
				if ev.State != events.StateCompleted {
					t.Errorf("order %s ended %s %+v, want completed", id, ev.State, ev.Error)
				}
			}
			for openid, amt := range amounts {
				if bills := e.bills(openid); len(bills) != 1 || bills[0].Amt != amt || bills[0].Cancelled {
					t.Errorf("player %s: bills %+v, want one uncancelled pay of %d", openid, bills, amt)
				}
			}
			kit.Eventually(t, 5*time.Second, "the worker is ready again", e.worker.Ready)
			if !logs.said("store writes recovered") {
				t.Error(`no "store writes recovered" line`)
			}
			kit.Eventually(t, 5*time.Second, "coinsaga_store_writes_failing is 0", func() bool {
				return metric(t, reg, "coinsaga_store_writes_failing") == 0
			})
		})
	}
}

// allOrders reports whether every id is stored and ok says so of its row.
func allOrders(e *env, ids []string, ok func(store.Order) bool) bool {
	for _, id := range ids {
		o, err := e.store.Get(context.Background(), id)
		if err != nil || !ok(o) {
			return false
		}
	}
	return true
}

// metric returns the value of an unlabelled counter or gauge in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name || len(f.GetMetric()) != 1 {
			continue
		}
		m := f.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}
