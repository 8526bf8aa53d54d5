package console_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/console"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/storetest"
	"github.com/coinsaga/coinsaga/worker"
)

// BenchmarkOverview50kWaiting renders / over a store holding 50,000
// debited orders waiting in confirmation (issue 18: under 300 ms), with
// the worker's metrics filled in. "uncached" runs store.Stats for every
// request; "cached" is the default, one Stats per second.
//
//	go test -run '^$' -bench Overview -benchtime 50x ./internal/console/
func BenchmarkOverview50kWaiting(b *testing.B) {
	st := kit.OpenStore(b)
	ctx := context.Background()
	base := time.Now()
	kit.AcceptOrders(b, st, 50000, func(i int) store.Accept {
		o := storetest.Order(fmt.Sprintf("wait-%05d", i), base.Add(time.Duration(i%1000)*time.Millisecond))
		o.State, o.Step = events.StateDebited, worker.StepConfirm
		return store.Accept{Order: o, History: store.HistoryEntry{State: o.State, Step: o.Step}}
	})
	reg := prometheus.NewRegistry()
	m := worker.NewMetrics(reg)
	for _, ep := range []string{"pay", "getbalance", "cancelpay"} {
		for range 1000 {
			m.ObserveCall("mogs", ep, providers.OK, 20*time.Millisecond)
		}
	}
	m.CircuitChanged("mogs.pay", false)

	for _, bc := range []struct {
		name string
		ttl  time.Duration
		flow bool
	}{{"uncached", time.Nanosecond, false}, {"cached", 0, false}, {"uncached while orders flow", time.Nanosecond, true}} {
		b.Run(bc.name, func(b *testing.B) {
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			accepted := 0
			flowed := make(chan struct{})
			if bc.flow {
				// New orders keep committing, 64 per group commit, as
				// intake at full speed does.
				go func() {
					defer close(flowed)
					for n := 0; runCtx.Err() == nil; n++ {
						reqs := make([]store.Accept, 64)
						for i := range reqs {
							reqs[i] = store.Accept{Order: storetest.Order(fmt.Sprintf("flow-%s-%d-%d", b.Name(), n, i), time.Now()),
								History: store.HistoryEntry{State: "accepted"}}
						}
						if _, err := st.Accept(runCtx, reqs); err != nil {
							return
						}
						accepted += len(reqs)
					}
				}()
			} else {
				close(flowed)
			}
			started := time.Now()
			c, err := console.New(runCtx, console.Config{Orders: st, Metrics: reg, StatsTTL: bc.ttl,
				Access: console.Access{OpenReads: true}, SampleEvery: 100 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			var worst time.Duration
			for b.Loop() {
				start := time.Now()
				rec := httptest.NewRecorder()
				c.ServeHTTP(rec, req)
				if d := time.Since(start); d > worst {
					worst = d
				}
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "50,000") {
					b.Fatalf("GET / = %d without the 50,000 waiting orders", rec.Code)
				}
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
			cancel()
			<-flowed
			if bc.flow {
				b.ReportMetric(float64(accepted)/time.Since(started).Seconds(), "orders/s")
			}
		})
	}
}

// BenchmarkLiveFeedCost runs batches of orders through a worker with and
// without an open live feed (/live/events read to its end by a client), to
// show what a feed costs order processing (issue 18: at most 5%) and that
// it keeps up: feed-behind is how many status events it had not delivered
// 10 s after the last order completed (0 is keeping up).
//
//	go test -run '^$' -bench LiveFeed -benchtime 4x ./internal/console/
func BenchmarkLiveFeedCost(b *testing.B) {
	const batch = 500
	for _, feed := range []bool{false, true} {
		name := "without a feed"
		if feed {
			name = "with an open feed"
		}
		b.Run(name, func(b *testing.B) {
			e := startConsoleEnv(b, false)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// Every status event, as the stream has it.
			var events, completed atomic.Int64
			w, err := eventsWatch(ctx, e)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Stop()
			tick := make(chan struct{}, 1)
			go func() {
				for {
					got, err := w.Next(ctx)
					if err != nil {
						if ctx.Err() != nil {
							return
						}
						continue
					}
					events.Add(1)
					if got.Event.State == "completed" {
						completed.Add(1)
						select {
						case tick <- struct{}{}:
						default:
						}
					}
				}
			}()
			var fed atomic.Int64
			if feed {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"/live/events", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				defer resp.Body.Close()
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() && sc.Text() != "event: ready" {
				}
				go func() {
					for sc.Scan() {
						if strings.HasPrefix(sc.Text(), "data: {\"out_order_id\"") {
							fed.Add(1)
						}
					}
				}()
			}
			want := int64(0)
			start := time.Now()
			for b.Loop() {
				for range batch {
					e.publish(b, "mogs")
				}
				want += batch
				deadline := time.After(2 * time.Minute)
				for completed.Load() < want {
					select {
					case <-tick:
					case <-deadline:
						b.Fatalf("%d of %d orders completed in 2 minutes", completed.Load(), want)
					}
				}
			}
			b.ReportMetric(float64(want)/time.Since(start).Seconds(), "orders/s")
			if feed {
				deadline := time.Now().Add(10 * time.Second)
				for fed.Load() < events.Load() && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond) // a measurement, not a test: polls a counter
				}
				b.ReportMetric(float64(events.Load()-fed.Load()), "feed-behind")
			}
		})
	}
}

func eventsWatch(ctx context.Context, e *consoleEnv) (*events.Watcher, error) {
	return events.Watch(ctx, e.js, e.subjects, events.WatchFilter{})
}
