package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/store"
)

// OrderRequest asks for one order over NATS request/reply.
type OrderRequest struct {
	OutOrderID string `json:"out_order_id"`
}

// OrderReply answers an OrderRequest.
type OrderReply struct {
	Order   *OrderView     `json:"order,omitempty"`
	History []HistoryEntry `json:"history,omitempty"`
	Error   string         `json:"error,omitempty"`
}

// OrderView is an order as the order API sends it: its own type, so that
// the store's row can change without changing what operators' tools read.
// It never carries the intent, which holds the player's login secrets.
// The fields and their JSON names are what the API has always sent.
type OrderView struct {
	OutOrderID string `json:"out_order_id"`
	MgID       string `json:"mg_id"`
	RoomID     string `json:"room_id"`
	FromUID    string `json:"from_uid"`
	Provider   string `json:"provider"`
	Amount     int64  `json:"amount"`

	State     events.State `json:"state"`
	Step      Step         `json:"step"`
	Seq       int          `json:"seq"`
	Attempt   int          `json:"attempt"`
	NextRunAt time.Time    `json:"next_run_at"`

	SudOrderID    string `json:"sud_order_id,omitempty"`
	BillNo        string `json:"bill_no,omitempty"`
	PayGeneration int    `json:"pay_generation"`

	HasBaseline        bool  `json:"has_baseline"`
	BaselineBalance    int64 `json:"baseline_balance"`
	BaselineSaveAmt    int64 `json:"baseline_save_amt"`
	BaselineCostSum    int64 `json:"baseline_cost_sum"`
	BaselineGenBalance int64 `json:"baseline_gen_balance"`

	HasPayBalance bool      `json:"has_pay_balance"`
	PayBalance    int64     `json:"pay_balance"`
	UsedGenAmt    int64     `json:"used_gen_amt"`
	DebitedAt     time.Time `json:"debited_at"`

	SudStatus  string    `json:"sud_status,omitempty"`
	OrderedAt  time.Time `json:"ordered_at"`
	FirstPayAt time.Time `json:"first_pay_at"`
	PayUnknown bool      `json:"pay_unknown,omitempty"`

	ErrorCode string `json:"error_code,omitempty"`
	Error     string `json:"error,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Version   int64     `json:"version"`
}

// HistoryEntry is one line of an order's history as the order API sends it.
type HistoryEntry struct {
	At        time.Time    `json:"at"`
	State     events.State `json:"state"`
	Step      Step         `json:"step"`
	Attempt   int          `json:"attempt"`
	ErrorCode string       `json:"error_code,omitempty"`
	Error     string       `json:"error,omitempty"`
	Detail    string       `json:"detail,omitempty"`
}

// orderView is the wire form of o, without its intent.
func orderView(o store.Order) *OrderView {
	return &OrderView{
		OutOrderID: o.OutOrderID, MgID: o.MgID, RoomID: o.RoomID, FromUID: o.FromUID, Provider: o.Provider, Amount: o.Amount,
		State: o.State, Step: o.Step, Seq: o.Seq, Attempt: o.Attempt, NextRunAt: o.NextRunAt,
		SudOrderID: o.SudOrderID, BillNo: o.BillNo, PayGeneration: o.PayGeneration,
		HasBaseline: o.HasBaseline, BaselineBalance: o.BaselineBalance, BaselineSaveAmt: o.BaselineSaveAmt,
		BaselineCostSum: o.BaselineCostSum, BaselineGenBalance: o.BaselineGenBalance,
		HasPayBalance: o.HasPayBalance, PayBalance: o.PayBalance, UsedGenAmt: o.UsedGenAmt, DebitedAt: o.DebitedAt,
		SudStatus: o.SudStatus, OrderedAt: o.OrderedAt, FirstPayAt: o.FirstPayAt, PayUnknown: o.PayUnknown,
		ErrorCode: o.ErrorCode, Error: o.Error,
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, Version: o.Version,
	}
}

// historyView is the wire form of an order's history.
func historyView(h []store.HistoryEntry) []HistoryEntry {
	if h == nil {
		return nil
	}
	out := make([]HistoryEntry, len(h))
	for i, e := range h {
		// The two types have the same fields, so Go converts one into the
		// other; a field added to the store's entry alone stops this
		// compiling instead of going unsent or sent unnoticed.
		out[i] = HistoryEntry(e)
	}
	return out
}

// serveAPI answers order requests on the subject OrderGetAPI, so that an
// operator needs NATS access, not the database. Every worker answers
// every request, as each has only the orders it took; GetOrder picks the
// answer of the one that has the order.
func (w *Worker) serveAPI() (*nats.Subscription, error) {
	sub, err := w.cfg.Conn.Subscribe(w.cfg.Subjects.OrderGetAPI(), func(m *nats.Msg) {
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
	ctx, cancel := context.WithTimeout(context.Background(), orderReadTimeout)
	defer cancel()
	o, err := w.cfg.Store.Get(ctx, r.OutOrderID)
	if errors.Is(err, store.ErrNotFound) {
		return OrderReply{Error: notFound(r.OutOrderID)}
	}
	if err != nil {
		return OrderReply{Error: "reading order: " + err.Error()}
	}
	h, err := w.cfg.Store.History(ctx, r.OutOrderID)
	if err != nil {
		return OrderReply{Error: "reading history: " + err.Error()}
	}
	return OrderReply{Order: orderView(o), History: historyView(h)}
}

// DefaultOrderGetTimeout is how long `coinsaga order get` waits for the
// workers' answers unless told otherwise.
const DefaultOrderGetTimeout = 5 * time.Second

// orderReadTimeout bounds a worker's reads of one order and its history
// for a reply: a reply later than the client waits is no use.
const orderReadTimeout = DefaultOrderGetTimeout

// notFound is the Error of a reply from a worker without the order.
func notFound(outOrderID string) string { return "order " + outOrderID + " not found" }

// notFoundGrace is how long GetOrder goes on listening after the first
// answer that is not the order, for the worker that has it: workers
// answer on their own, a worker without the order often first.
const notFoundGrace = 250 * time.Millisecond

// GetOrder asks the running workers for an order over NATS. Each worker
// answers, and only the one that took the order has it: the first answer
// with the order is returned at once. Without one, listening ends
// notFoundGrace after the first answer (or with ctx), and the best other
// answer is returned with its Error: a worker that could not read its
// store over "not found", as the order may be there.
func GetOrder(ctx context.Context, nc *nats.Conn, subject, outOrderID string) (OrderReply, error) {
	req, _ := json.Marshal(OrderRequest{OutOrderID: outOrderID})
	sub, err := nc.SubscribeSync(nc.NewInbox())
	if err != nil {
		return OrderReply{}, fmt.Errorf("order %s: %w", outOrderID, err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(subject, sub.Subject, req); err != nil {
		return OrderReply{}, fmt.Errorf("order %s: %w", outOrderID, err)
	}
	var (
		best     OrderReply
		bestRank = -1 // nothing answered yet
		badReply error
		wait     = ctx // until the first answer, then grace
	)
	grace, endGrace := context.WithCancel(ctx)
	defer endGrace()
	for {
		m, err := sub.NextMsgWithContext(wait)
		if err != nil {
			switch {
			case bestRank >= 0:
				if bestRank == 0 {
					return OrderReply{}, fmt.Errorf("order %s: bad reply: %w", outOrderID, badReply)
				}
				return best, errors.New(best.Error)
			case errors.Is(err, nats.ErrNoResponders):
				return OrderReply{}, fmt.Errorf("no coinsaga worker is answering on %s", subject)
			}
			return OrderReply{}, fmt.Errorf("order %s: %w", outOrderID, err)
		}
		var r OrderReply
		rank := 0 // undecodable
		switch err := json.Unmarshal(m.Data, &r); {
		case err != nil:
			if badReply == nil {
				badReply = err
			}
		case r.Error == "" && r.Order != nil:
			return r, nil
		case r.Error == "":
			if badReply == nil {
				badReply = errors.New("neither an order nor an error")
			}
		case r.Error == notFound(outOrderID):
			rank = 1
		default:
			rank = 2 // the order may be in the store that failed
		}
		if bestRank < 0 {
			wait = grace
			time.AfterFunc(notFoundGrace, endGrace)
		}
		if rank > bestRank {
			best, bestRank = r, rank
		}
	}
}
