package mogs_test

import (
	"context"
	"strings"
	"testing"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// badBillNos break the bill-number rule (providers.md, Learned since: 1 to
// 63 characters of [0-9A-Za-z_-], no leading "_").
var badBillNos = []struct{ name, bill string }{
	{"a bill number with a dot, as generation 1 used to be", "order-1.1"},
	{"a bill number with a leading underscore", "_order-1"},
	{"a bill number of 64 characters", strings.Repeat("b", 64)},
	{"a bill number with a space", "order 1"},
	{"a bill number with a non-ASCII letter", "订单-1"},
}

func TestBillNumbersTheProviderWouldRefuseNeverLeave(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := account("k")
	for _, bn := range badBillNos {
		calls := []struct {
			endpoint string
			call     func(c providers.Wallet) error
		}{
			{"pay", func(c providers.Wallet) error {
				_, err := c.Debit(ctx, a, providers.Debit{BillNo: bn.bill, Amount: 1})
				return err
			}},
			{"cancelpay", func(c providers.Wallet) error {
				_, err := c.Cancel(ctx, a, providers.Cancel{BillNo: bn.bill, Amount: 1})
				return err
			}},
			{"present", func(c providers.Wallet) error {
				_, err := c.Present(ctx, a, providers.Present{BillNo: bn.bill, Amount: 1})
				return err
			}},
		}
		for _, call := range calls {
			t.Run(call.endpoint+" with "+bn.name+" is refused as a final param error before any request", func(t *testing.T) {
				t.Parallel()
				cp, c := newCapture(t, `{"ret":0,"balance":1}`)
				pe := wantErr(t, call.call(c), providers.Final, providers.CodeParamError)
				if pe.Endpoint != call.endpoint || !strings.Contains(pe.Msg, "bill number") {
					t.Errorf("err = %+v, want one that names the endpoint and the bill number", pe)
				}
				if n := cp.hits.Load(); n != 0 {
					t.Errorf("%d requests reached the provider, want 0", n)
				}
			})
		}
	}

	t.Run("a bill number of 63 characters is paid", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		bill := strings.Repeat("b", 62) + "1"
		if _, err := e.client.Debit(ctx, account("long"), providers.Debit{BillNo: bill, Amount: 1}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestABusyCancelpayIsRetryableWhicheverCodeSaysSo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.sb.SetFault(sandbox.Fault{Endpoint: "mogs.cancelpay", BusyRate: 1})
	seen := map[int]bool{}
	for range 40 {
		_, err := e.client.Cancel(ctx, account("p"), providers.Cancel{BillNo: "busy-1", Amount: 1})
		pe := wantErr(t, err, providers.Retryable, providers.CodeBusy)
		seen[pe.Ret] = true
	}
	if !seen[-1] || !seen[90016] || len(seen) != 2 {
		t.Fatalf("saw rets %v in 40 busy cancels, want -1 and 90016", seen)
	}
}
