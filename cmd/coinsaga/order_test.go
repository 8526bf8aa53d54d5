package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/worker"
)

// TestOrderGetPrefersTheWorkerThatHasTheOrder is defect 9 of issue 12 as
// the operator meets it: two workers answer `order get`, and the one
// without the order answers first. The two stand-ins reply as
// worker/api.go does; the one with the order waits until the "not found"
// is out, so that answer always comes first.
func TestOrderGetPrefersTheWorkerThatHasTheOrder(t *testing.T) {
	t.Parallel()
	ns := embednats.StartTest(t)
	var s events.Subjects
	const id = "held-by-one"
	connect := func() *nats.Conn { return kit.Connect(t, ns.ClientURL()).Conn }
	request := func(m *nats.Msg) string {
		var req worker.OrderRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			t.Errorf("request %q: %v", m.Data, err)
		}
		return req.OutOrderID
	}
	notFoundSent := make(chan string, 1) // the reply subject answered
	empty := connect()
	if _, err := empty.Subscribe(s.OrderGetAPI(), func(m *nats.Msg) {
		data, _ := json.Marshal(worker.OrderReply{Error: "order " + request(m) + " not found"})
		_ = m.Respond(data)
		_ = empty.Flush()
		notFoundSent <- m.Reply
	}); err != nil {
		t.Fatal(err)
	}
	holder := connect()
	if _, err := holder.Subscribe(s.OrderGetAPI(), func(m *nats.Msg) {
		select {
		case reply := <-notFoundSent:
			if reply != m.Reply {
				t.Errorf("not found answered %s, this request is %s", reply, m.Reply)
			}
		case <-time.After(5 * time.Second):
			t.Error("the worker without the order did not answer within 5s")
		}
		reply := worker.OrderReply{Error: "order " + request(m) + " not found"}
		if request(m) == id {
			now := time.Now()
			reply = worker.OrderReply{
				Order: &worker.OrderView{OutOrderID: id, MgID: "1468180338417074177", RoomID: "9009", FromUID: "001",
					Provider: "mogs", Amount: 10, State: "completed", Step: "done", CreatedAt: now, UpdatedAt: now},
				History: []worker.HistoryEntry{{At: now, State: "completed", Step: "confirm", Attempt: 1}},
			}
		}
		data, _ := json.Marshal(reply)
		_ = m.Respond(data)
	}); err != nil {
		t.Fatal(err)
	}
	for _, nc := range []*nats.Conn{empty, holder} {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()

	t.Run("twenty order gets in a row all find the order", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			out, errOut, code := runCLI(t, ctx, "order", "get", "--nats-url", ns.ClientURL(), id)
			if code != 0 || !strings.Contains(out, "completed") || !strings.Contains(out, id) {
				t.Fatalf("call %d of 20: exit %d, stdout %q, stderr %q", i+1, code, out, errOut)
			}
		}
	})
	t.Run("an order neither has is reported not found", func(t *testing.T) {
		_, errOut, code := runCLI(t, ctx, "order", "get", "--nats-url", ns.ClientURL(), "held-by-none")
		if code != 1 || !strings.Contains(errOut, "order held-by-none not found") {
			t.Errorf("exit %d, stderr %q; want exit 1, not found", code, errOut)
		}
	})
}
