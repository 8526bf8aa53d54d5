package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/store"
)

// BenchAcceptApply measures what the store does for one order, with
// callers orders in flight at once: an Accept with its status message,
// then an Apply that completes the order with another, as the saga's
// first and last writes. b.N counts orders; it reports orders/s. The same
// function runs against every store, so their figures compare.
func BenchAcceptApply(b *testing.B, s store.Store, callers int) {
	ctx := context.Background()
	prefix := fmt.Sprintf("bench-%d-%d-", callers, time.Now().UnixNano())
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	for range callers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				id := prefix + fmt.Sprint(i)
				o := Order(id, time.Now())
				msg := func(seq int, state string) []store.Message {
					return []store.Message{{Subject: "coinsaga.status.1468180338417074177.9009." + id,
						MsgID: fmt.Sprintf("%s:%d", id, seq), Header: map[string]string{"Nats-Msg-Id": fmt.Sprintf("%s:%d", id, seq)},
						Data: []byte(`{"out_order_id":"` + id + `","state":"` + state + `"}`)}}
				}
				res, err := s.Accept(ctx, []store.Accept{{Order: o,
					History: store.HistoryEntry{State: "accepted", Step: "order", Detail: "accepted"}, Outbox: msg(1, "accepted")}})
				if err != nil || !res[0].Created {
					b.Errorf("accept %s: %+v, %v", id, res, err)
					return
				}
				o.Version = 1 // as Accept stores it; the saga does not read it back either
				to := o
				to.State, to.Step, to.Seq, to.NextRunAt = "completed", "done", 2, time.Time{}
				if _, err := s.Apply(ctx, store.Transition{From: o, To: to,
					History: []store.HistoryEntry{{State: "completed", Step: "done", Detail: "confirmed"}},
					Outbox:  msg(2, "completed")}); err != nil {
					b.Errorf("apply %s: %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}
