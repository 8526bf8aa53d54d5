package providertest

import (
	"context"
	"strconv"
	"testing"

	"github.com/coinsaga/coinsaga/providers"
)

// The benchmarks measure one wallet call over loopback HTTP against the
// sandbox, connection reuse included; the sandbox's own work is in the
// figures too. Each takes the wallet under test, started by the caller.

// BenchBalance measures a balance read.
func BenchBalance(b *testing.B, w Wallet, a providers.Account) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Client.Balance(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchDebit measures a pay, each with a bill number of its own, from an
// account rich enough for any run.
func BenchDebit(b *testing.B, w Wallet, appID string, a providers.Account) {
	ctx := context.Background()
	w.Sandbox.SetAccount(w.Client.Provider(), appID, a.OpenID, 1<<40, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := w.Client.Debit(ctx, a, providers.Debit{BillNo: "bench-pay-" + strconv.Itoa(i), Amount: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchCancel measures a cancel of a pay made before the timer starts.
func BenchCancel(b *testing.B, w Wallet, appID string, a providers.Account) {
	ctx := context.Background()
	w.Sandbox.SetAccount(w.Client.Provider(), appID, a.OpenID, 1<<40, 0)
	for i := range b.N {
		if _, err := w.Client.Debit(ctx, a, providers.Debit{BillNo: "bench-cancel-" + strconv.Itoa(i), Amount: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := w.Client.Cancel(ctx, a, providers.Cancel{BillNo: "bench-cancel-" + strconv.Itoa(i), Amount: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchPresent measures a present, each with a bill number of its own.
func BenchPresent(b *testing.B, w Wallet, a providers.Account) {
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := w.Client.Present(ctx, a, providers.Present{BillNo: "bench-gift-" + strconv.Itoa(i), Amount: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
