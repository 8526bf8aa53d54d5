package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/worker"
)

// secondWorker runs another worker on e's NATS and sandbox with a store
// of its own, as a second process would: it has none of e's orders.
func (e *env) secondWorker() {
	e.t.Helper()
	nc, err := nats.Connect(e.nc.ConnectedUrl())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	cfg := e.cfg
	cfg.Conn, cfg.Store = nc, kit.OpenStore(e.t)
	kit.StartWorker(e.t, cfg)
}

// getOrder is what `coinsaga order get` does, with its default timeout.
func (e *env) getOrder(id string) (worker.OrderReply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return worker.GetOrder(ctx, e.nc, e.subjects.OrderGetAPI(), id)
}

// TestOrderGetFindsTheOrderWhicheverWorkerAnswers is defect 9 of issue
// 12: with two workers, each with its own store, the one without the
// order answered "not found" for half the requests.
func TestOrderGetFindsTheOrderWhicheverWorkerAnswers(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	in := intent(events.ProviderMOGS, 10)
	e.publishIntent(in)
	e.waitState(in.OutOrderID, events.StateCompleted, 30*time.Second)
	e.secondWorker()

	found := func(t *testing.T, calls int) {
		t.Helper()
		for i := 0; i < calls; i++ {
			r, err := e.getOrder(in.OutOrderID)
			if err != nil || r.Order == nil || r.Order.OutOrderID != in.OutOrderID || r.Order.State != events.StateCompleted {
				t.Fatalf("call %d of %d: %+v, %v; want the completed order", i+1, calls, r.Order, err)
			}
			if len(r.History) == 0 {
				t.Fatalf("call %d of %d: the order comes without its history", i+1, calls)
			}
		}
	}
	t.Run("twenty calls all find the order with two workers", func(t *testing.T) { found(t, 20) })

	// A third responder that never has an order and answers first, in
	// the reply format of the workers.
	fake, err := e.nc.Subscribe(e.subjects.OrderGetAPI(), func(m *nats.Msg) {
		var req worker.OrderRequest
		_ = json.Unmarshal(m.Data, &req)
		data, _ := json.Marshal(worker.OrderReply{Error: "order " + req.OutOrderID + " not found"})
		_ = m.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Unsubscribe() })
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Run("twenty calls all find the order when a not found answers first", func(t *testing.T) { found(t, 20) })

	t.Run("an order no worker has is not found, well before the timeout", func(t *testing.T) {
		start := time.Now()
		r, err := e.getOrder("no-such-order")
		if err == nil || !strings.Contains(err.Error(), "order no-such-order not found") || r.Order != nil {
			t.Fatalf("got %+v, %v; want not found", r, err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("not found took %s of the 5s timeout", took)
		}
	})
}

func TestOrderGetWithoutWorkersSaysNoneAnswers(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	e.stop()
	_, err := e.getOrder("any")
	if err == nil || !strings.Contains(err.Error(), "no coinsaga worker is answering") {
		t.Fatalf("got %v; want no worker answering", err)
	}
}
