// Package providertest holds checks that every wallet client must pass,
// run by each client's own tests, so that the wallet contract is written
// once.
package providertest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/coinsaga/coinsaga/providers"
)

// BadBillNos break the bill-number rule (providers.md, Learned since: 1 to
// 63 characters of [0-9A-Za-z_-], no leading "_").
var BadBillNos = []struct{ Name, Bill string }{
	{"a bill number with a dot, as generation 1 used to be", "order-1.1"},
	{"a bill number with a leading underscore", "_order-1"},
	{"a bill number of 64 characters", strings.Repeat("b", 64)},
	{"a bill number with a space", "order 1"},
	{"a bill number with a non-ASCII letter", "订单-1"},
}

// Endpoints names a wallet's money endpoints as its errors report them.
type Endpoints struct{ Pay, Cancel, Present string }

// BadBillNosNeverLeave checks that the wallet refuses every bill number of
// BadBillNos on pay, cancel and present as a Final param error naming the
// endpoint, before any request. capture returns a wallet pointed at a
// server that answers any request, and a count of the requests it got.
func BadBillNosNeverLeave(t *testing.T, acct providers.Account, ep Endpoints, capture func(t *testing.T) (providers.Wallet, func() int32)) {
	t.Helper()
	ctx := context.Background()
	for _, bn := range BadBillNos {
		calls := []struct {
			endpoint string
			call     func(w providers.Wallet) error
		}{
			{ep.Pay, func(w providers.Wallet) error {
				_, err := w.Debit(ctx, acct, providers.Debit{BillNo: bn.Bill, Amount: 1})
				return err
			}},
			{ep.Cancel, func(w providers.Wallet) error {
				_, err := w.Cancel(ctx, acct, providers.Cancel{BillNo: bn.Bill, Amount: 1})
				return err
			}},
			{ep.Present, func(w providers.Wallet) error {
				_, err := w.Present(ctx, acct, providers.Present{BillNo: bn.Bill, Amount: 1})
				return err
			}},
		}
		for _, call := range calls {
			t.Run(call.endpoint+" with "+bn.Name+" is refused as a final param error before any request", func(t *testing.T) {
				t.Parallel()
				w, hits := capture(t)
				var pe *providers.Error
				if err := call.call(w); !errors.As(err, &pe) || pe.Class != providers.Final || pe.Code != providers.CodeParamError {
					t.Fatalf("err = %v, want a final param error", err)
				}
				if pe.Endpoint != call.endpoint || !strings.Contains(pe.Msg, "bill number") {
					t.Errorf("err = %+v, want one that names the endpoint and the bill number", pe)
				}
				if n := hits(); n != 0 {
					t.Errorf("%d requests reached the provider, want 0", n)
				}
			})
		}
	}
}
