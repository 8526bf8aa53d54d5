package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/store"
)

// OrderRequest asks for one order over NATS request/reply.
type OrderRequest struct {
	OutOrderID string `json:"out_order_id"`
}

// OrderReply answers an OrderRequest. Order never carries the intent (it
// holds the player's login secrets).
type OrderReply struct {
	Order   *store.Order         `json:"order,omitempty"`
	History []store.HistoryEntry `json:"history,omitempty"`
	Error   string               `json:"error,omitempty"`
}

// apiQueue spreads order requests over the running workers.
const apiQueue = "coinsaga-api"

// serveAPI answers order requests on the subject OrderGetAPI, so that an
// operator needs NATS access, not the database.
func (w *Worker) serveAPI() (*nats.Subscription, error) {
	sub, err := w.cfg.Conn.QueueSubscribe(w.cfg.Subjects.OrderGetAPI(), apiQueue, func(m *nats.Msg) {
		reply := w.orderReply(m.Data)
		data, _ := json.Marshal(reply)
		_ = m.Respond(data)
	})
	if err != nil {
		return nil, fmt.Errorf("worker: order API: %w", err)
	}
	return sub, nil
}

func (w *Worker) orderReply(req []byte) OrderReply {
	var r OrderRequest
	if err := json.Unmarshal(req, &r); err != nil || r.OutOrderID == "" {
		return OrderReply{Error: `bad request: want {"out_order_id":"..."}`}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	o, err := w.cfg.Store.Get(ctx, r.OutOrderID)
	if errors.Is(err, store.ErrNotFound) {
		return OrderReply{Error: "order " + r.OutOrderID + " not found"}
	}
	if err != nil {
		return OrderReply{Error: "reading order: " + err.Error()}
	}
	h, err := w.cfg.Store.History(ctx, r.OutOrderID)
	if err != nil {
		return OrderReply{Error: "reading history: " + err.Error()}
	}
	o.Intent = nil
	return OrderReply{Order: &o, History: h}
}

// GetOrder asks a running worker for an order over NATS.
func GetOrder(ctx context.Context, nc *nats.Conn, subject, outOrderID string) (OrderReply, error) {
	req, _ := json.Marshal(OrderRequest{OutOrderID: outOrderID})
	m, err := nc.RequestWithContext(ctx, subject, req)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return OrderReply{}, fmt.Errorf("no coinsaga worker is answering on %s", subject)
		}
		return OrderReply{}, fmt.Errorf("order %s: %w", outOrderID, err)
	}
	var r OrderReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return OrderReply{}, fmt.Errorf("order %s: bad reply: %w", outOrderID, err)
	}
	if r.Error != "" {
		return r, errors.New(r.Error)
	}
	return r, nil
}
