package worker

// The saga's I/O: each step's provider call, whose reply saga.go's decide
// functions turn into the order's next row.

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/store"
)

// orderReply is what the order step learned from SUD.
type orderReply struct {
	orderID string
	status  string // the action's state when query_order was asked (70501), else ""
	// mismatch, when SUD answered 70501, names how the order SUD holds
	// under this out_order_id differs from ours; empty when it is ours.
	mismatch string
}

// OrderService is SUD's order API as the saga uses it.
type OrderService interface {
	CreateOrder(ctx context.Context, req sud.CreateOrderRequest) (sud.CreateOrderReply, error)
	QueryOrder(ctx context.Context, outOrderID string) (sud.Order, error)
}

// saga runs steps against the providers.
type saga struct {
	sud      OrderService
	wallets  map[string]providers.Wallet
	readings *readings // confirmation reads shared by an account's orders
	verdicts *verdicts // SUD's notified verdicts, not yet read by their orders
}

// run makes the provider call for o's step and decides the outcome.
func (s *saga) run(ctx context.Context, o store.Order, in *events.Intent, p policy) (outcome, error) {
	switch o.Step {
	case StepOrder:
		r, err := s.createOrder(ctx, in)
		return decideOrder(o, r, err, p), nil
	case StepVerdict:
		status, err := s.verdict(ctx, o)
		return decideVerdict(o, status, err, p), nil
	}
	w, ok := s.wallets[o.Provider]
	if !ok {
		// Configuration, not the world, said no: stop where we are so that
		// a replay finishes the order once the provider is configured.
		msg := fmt.Sprintf("no %s wallet is configured", o.Provider)
		return outcome{next: stop(o, events.StateFailed, o.Step, codeNotConfigured, msg), detail: msg, dead: events.ReasonFailed}, nil
	}
	acct := account(in)
	switch o.Step {
	case StepBaseline:
		bal, err := w.Balance(ctx, acct)
		return decideBaseline(o, bal, err, p), nil
	case StepPay:
		if out, stopped := decidePayBefore(o, s.verdicts.peek(o.OutOrderID, o.SudStatus), p); stopped {
			return out, nil
		}
		r, err := w.Debit(ctx, acct, providers.Debit{BillNo: o.BillNo, Amount: o.Amount, PayItem: payItem(in)})
		return decidePay(o, r, err, p), nil
	case StepConfirm:
		r, err := s.readBalance(ctx, w, o, acct, p)
		return decideConfirm(o, r, err, p), nil
	case StepCancel:
		r, err := w.Cancel(ctx, acct, providers.Cancel{BillNo: o.BillNo, Amount: o.Amount})
		return decideCancel(o, r, err, p), nil
	}
	return outcome{}, fmt.Errorf("order %s: unknown step %q", o.OutOrderID, o.Step)
}

// verdict learns SUD's state of o's action: from what the order knows
// already or SUD notified, when that is final, else from query_order.
func (s *saga) verdict(ctx context.Context, o store.Order) (string, error) {
	if st := s.verdicts.peek(o.OutOrderID, o.SudStatus); st == sud.StatusExecuteSuccess || st == sud.StatusExecuteFail {
		return st, nil
	}
	q, err := s.sud.QueryOrder(ctx, o.OutOrderID)
	if err != nil {
		return "", fmt.Errorf("query_order %s: %w", o.OutOrderID, err)
	}
	return q.Status, nil
}

// confirm makes o's confirmation poll for the account acct: what run does
// for the confirm step, for a waiting order that keeps its account beside
// it (see waitingOrders). It also returns the reading and the read's
// error, so that a poll made on confirmView(o) can be decided again on the
// whole row; err is set only when no poll could be made at all.
func (s *saga) confirm(ctx context.Context, o store.Order, acct providers.Account, p policy) (out outcome, r balanceReading, readErr, err error) {
	w, ok := s.wallets[o.Provider]
	if !ok {
		return outcome{}, balanceReading{}, nil, fmt.Errorf("order %s: no %s wallet is configured", o.OutOrderID, o.Provider)
	}
	r, readErr = s.readBalance(ctx, w, o, acct, p)
	return decideConfirm(o, r, readErr, p), r, readErr, nil
}

// readBalance reads acct's balance for o's poll, or takes a reading
// another of the account's polls made recently enough (see readings).
func (s *saga) readBalance(ctx context.Context, w providers.Wallet, o store.Order, acct providers.Account, p policy) (balanceReading, error) {
	return s.readings.get(ctx, keyOf(o.Provider, acct), pollSince(o, p), p.now,
		func(ctx context.Context) (providers.Balance, error) { return w.Balance(ctx, acct) })
}

// createOrder asks SUD for the order; when SUD already has it (a retry
// after a lost reply, or a replay) it asks query_order which order that
// is, never guessing, and whether it is ours.
func (s *saga) createOrder(ctx context.Context, in *events.Intent) (orderReply, error) {
	reply, err := s.sud.CreateOrder(ctx, sud.CreateOrderRequest{
		OutOrderID: in.OutOrderID, OutGroupID: in.OutGroupID, MGID: in.MgID, RoomID: in.RoomID,
		Cmd: in.Cmd, FromUID: in.FromUID, ToUID: in.ToUID, Value: in.Value, Payload: in.Payload,
	})
	if err != nil {
		return orderReply{}, fmt.Errorf("create_order %s: %w", in.OutOrderID, err)
	}
	if reply.Class != providers.AlreadyDone && reply.OrderID != "" {
		return orderReply{orderID: reply.OrderID}, nil
	}
	q, err := s.sud.QueryOrder(ctx, in.OutOrderID)
	if err != nil {
		if providers.CodeOf(err) == providers.CodeNotFound {
			// SUD said the order exists, then that it does not: a
			// transient inconsistency, not an answer.
			err = &providers.Error{Provider: "sud", Endpoint: "query_order", Class: providers.Retryable, Code: providers.CodeBusy, Msg: "order reported existing but not found", Err: err}
		}
		return orderReply{}, fmt.Errorf("query_order %s: %w", in.OutOrderID, err)
	}
	r := orderReply{orderID: q.OrderID, status: q.Status}
	if reply.Class == providers.AlreadyDone {
		r.mismatch = sameOrder(in, q)
	}
	return r, nil
}

// account maps an intent's payment block to the wallet's account.
func account(in *events.Intent) providers.Account {
	a := providers.Account{OpenID: in.Payment.OpenID}
	if m := in.Payment.MOGS; m != nil {
		a.MOGS = providers.MOGSLogin{JSCode: m.JSCode, AppPlat: m.AppPlat, OSPlatID: m.OSPlatID, SessionKey: m.SessionKey, PayItem: m.PayItem}
	}
	if m := in.Payment.Midas; m != nil {
		a.Midas = providers.MidasLogin{OpenKey: m.OpenKey, PF: m.PF, PFKey: m.PFKey, ZoneID: m.ZoneID,
			SessionType: m.SessionType, UserIP: m.UserIP, AccountType: m.AccountType, PayItem: m.PayItem}
	}
	return a
}

func payItem(in *events.Intent) string {
	if m := in.Payment.MOGS; m != nil && m.PayItem != "" {
		return m.PayItem
	}
	if m := in.Payment.Midas; m != nil && m.PayItem != "" {
		return m.PayItem
	}
	return in.Cmd
}

// sameOrder compares the order SUD holds under our out_order_id with the
// intent; it returns how they differ, or "" when SUD's is ours.
func sameOrder(in *events.Intent, q sud.Order) string {
	var diffs []string
	check := func(field, ours, theirs string) {
		if ours != theirs {
			diffs = append(diffs, fmt.Sprintf("%s %q (ours %q)", field, theirs, ours))
		}
	}
	check("mg_id", in.MgID, q.MgID)
	check("cmd", in.Cmd, q.Cmd)
	check("value", strconv.FormatInt(int64(in.Value), 10), strconv.FormatInt(q.Value, 10))
	check("from_uid", in.FromUID, q.FromUID)
	check("to_uid", in.ToUID, q.ToUID)
	return strings.Join(diffs, ", ")
}
