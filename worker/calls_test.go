package worker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/worker"
)

// callRecorder is a SUD and a wallet that write down every call they get.
type callRecorder struct {
	mu        sync.Mutex
	calls     []string
	sudExists bool  // create_order answers that SUD has the order already
	payErr    error // the pay's answer
}

func (r *callRecorder) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
}

func (r *callRecorder) CreateOrder(_ context.Context, req sud.CreateOrderRequest) (sud.CreateOrderReply, error) {
	r.note("create_order %s %s %s", req.OutOrderID, req.MGID, req.Cmd)
	if r.sudExists {
		return sud.CreateOrderReply{Class: providers.AlreadyDone, OutOrderID: req.OutOrderID}, nil
	}
	return sud.CreateOrderReply{Class: providers.OK, OutOrderID: req.OutOrderID, OrderID: "sud-" + req.OutOrderID}, nil
}

func (r *callRecorder) QueryOrder(_ context.Context, id string) (sud.Order, error) {
	r.note("query_order %s", id)
	return sud.Order{OrderID: "sud-" + id, Status: sud.StatusExecuteSuccess}, nil
}

func (r *callRecorder) Provider() string { return events.ProviderMOGS }

func (r *callRecorder) Balance(_ context.Context, acct providers.Account) (providers.Balance, error) {
	r.note("balance %s", acct.OpenID)
	return providers.Balance{Balance: 1000}, nil
}

func (r *callRecorder) Debit(_ context.Context, acct providers.Account, d providers.Debit) (providers.DebitReply, error) {
	r.note("pay %s %s %d %s", acct.OpenID, d.BillNo, d.Amount, d.PayItem)
	return providers.DebitReply{Class: providers.OK, BillNo: d.BillNo, Balance: 1000 - d.Amount, BalanceKnown: true}, r.payErr
}

func (r *callRecorder) Cancel(_ context.Context, _ providers.Account, c providers.Cancel) (providers.CancelReply, error) {
	r.note("cancel %s", c.BillNo)
	return providers.CancelReply{}, errors.New("a successful order never cancels")
}

func (r *callRecorder) Present(_ context.Context, _ providers.Account, p providers.Present) (providers.PresentReply, error) {
	r.note("present %s", p.BillNo)
	return providers.PresentReply{}, errors.New("a successful order never presents")
}

func TestOrderCallsMakesTheSagasCallsOfASuccessfulOrder(t *testing.T) {
	t.Parallel()
	mogsIntent := func() *events.Intent {
		return &events.Intent{OutOrderID: "o-1", MgID: "1468180338417074177", Cmd: "specify_dice_roll", FromUID: "u1",
			Payment: events.Payment{Provider: events.ProviderMOGS, Amount: 7, OpenID: "open-1",
				MOGS: &events.MOGSPayment{JSCode: "js", PayItem: "dice"}}}
	}
	midasIntent := &events.Intent{OutOrderID: "o-2", MgID: "1472142747708284929", Cmd: "buy_role", FromUID: "u2",
		Payment: events.Payment{Provider: events.ProviderMidas, Amount: 9, OpenID: "open-2",
			Midas: &events.MidasPayment{OpenKey: "key", PF: "pf", ZoneID: "1"}}}
	refused := &providers.Error{Provider: "mogs", Endpoint: "pay", Class: providers.Final, Code: providers.CodeInsufficientBalance, Msg: "short"}
	cases := []struct {
		name      string
		in        *events.Intent
		wallet    string // the provider the wallet is configured for
		sudExists bool
		payErr    error
		want      []string
		wantErr   string
	}{
		{name: "a MOGS order reads the baseline, creates the SUD order, pays its first bill with the pay item and confirms",
			in: mogsIntent(), wallet: events.ProviderMOGS,
			want: []string{"balance open-1", "create_order o-1 1468180338417074177 specify_dice_roll",
				"pay open-1 o-1 7 dice", "balance open-1"}},
		{name: "a Midas order without a pay item pays for its cmd",
			in: midasIntent, wallet: events.ProviderMidas,
			want: []string{"balance open-2", "create_order o-2 1472142747708284929 buy_role",
				"pay open-2 o-2 9 buy_role", "balance open-2"}},
		{name: "an order SUD already has is looked up with query_order before the pay",
			in: mogsIntent(), wallet: events.ProviderMOGS, sudExists: true,
			want: []string{"balance open-1", "create_order o-1 1468180338417074177 specify_dice_roll",
				"query_order o-1", "pay open-1 o-1 7 dice", "balance open-1"}},
		{name: "a refused pay stops before the confirming read and names the bill",
			in: mogsIntent(), wallet: events.ProviderMOGS, payErr: refused,
			want: []string{"balance open-1", "create_order o-1 1468180338417074177 specify_dice_roll",
				"pay open-1 o-1 7 dice"}, wantErr: "pay o-1"},
		{name: "an order for a provider with no wallet makes no call",
			in: mogsIntent(), wallet: events.ProviderMidas, wantErr: "no mogs wallet"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &callRecorder{sudExists: tc.sudExists, payErr: tc.payErr}
			err := worker.OrderCalls(context.Background(), rec, map[string]providers.Wallet{tc.wallet: rec}, tc.in)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("OrderCalls: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("OrderCalls error %v, want one naming %q", err, tc.wantErr)
			case tc.payErr != nil && !errors.Is(err, tc.payErr):
				t.Errorf("OrderCalls error %v does not wrap the pay's error", err)
			}
			if !slices.Equal(rec.calls, tc.want) {
				t.Errorf("calls:\n  %s\nwant:\n  %s", strings.Join(rec.calls, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}
