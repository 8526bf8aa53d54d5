package mogs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/providertest"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

func TestBillNumbersTheProviderWouldRefuseNeverLeave(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	providertest.BadBillNosNeverLeave(t, account("k"), providertest.Endpoints{Pay: "pay", Cancel: "cancelpay", Present: "present"},
		func(t *testing.T) (providers.Wallet, func() int32) {
			cp, c := newCapture(t, `{"ret":0,"balance":1}`)
			return c, cp.hits.Load
		})

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
