package mogs_test

import (
	"context"
	"strings"
	"testing"
	"time"

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

// TestBillsExpireAfter48Hours is the hazard the saga must guard against:
// 48 hours after the first pay MOGS forgets the bill number, so a cancel
// finds nothing and a pay with the same number charges again.
func TestBillsExpireAfter48Hours(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := providers.Debit{BillNo: "order-48h", Amount: 100}

	t.Run("a cancel 47 hours after the pay restores the coins", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.sb.SetAccount("mogs", appID, "p", 1000, 0)
		if _, err := e.client.Debit(ctx, account("p"), d); err != nil {
			t.Fatal(err)
		}
		e.sb.AdvanceClock(47 * time.Hour)
		if r, err := e.client.Cancel(ctx, account("p"), providers.Cancel{BillNo: d.BillNo, Amount: d.Amount}); err != nil || r.Class != providers.OK {
			t.Fatalf("cancel = %+v, %v", r, err)
		}
	})

	t.Run("a cancel 49 hours after the pay is final not found and the coins stay charged", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.sb.SetAccount("mogs", appID, "p", 1000, 0)
		if _, err := e.client.Debit(ctx, account("p"), d); err != nil {
			t.Fatal(err)
		}
		e.sb.AdvanceClock(49 * time.Hour)
		_, err := e.client.Cancel(ctx, account("p"), providers.Cancel{BillNo: d.BillNo, Amount: d.Amount})
		if pe := wantErr(t, err, providers.Final, providers.CodeNotFound); pe.Ret != 90000 {
			t.Errorf("Ret = %d, want 90000", pe.Ret)
		}
		if v, _ := e.sb.Account("mogs", appID, "p"); v.Balance != 900 {
			t.Errorf("balance = %d, want 900: not found does not mean not charged", v.Balance)
		}
	})

	t.Run("a pay 49 hours later with the same bill number charges a second time", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.sb.SetAccount("mogs", appID, "p", 1000, 0)
		if _, err := e.client.Debit(ctx, account("p"), d); err != nil {
			t.Fatal(err)
		}
		e.sb.AdvanceClock(49 * time.Hour)
		r, err := e.client.Debit(ctx, account("p"), d)
		if err != nil || r.Class != providers.OK || r.Balance != 800 {
			t.Fatalf("second pay = %+v, %v; want OK with a second debit", r, err)
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
