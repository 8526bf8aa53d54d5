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

// BenchWallet runs the four wallet benchmarks (Balance, Debit, Cancel,
// Present) as sub-benchmarks, each on a wallet that start returns for it,
// for the player a under the sandbox's appID.
func BenchWallet(b *testing.B, start func(testing.TB) Wallet, appID string, a providers.Account) {
	b.Run("Balance", func(b *testing.B) { BenchBalance(b, start(b), a) })
	b.Run("Debit", func(b *testing.B) { BenchDebit(b, start(b), appID, a) })
	b.Run("Cancel", func(b *testing.B) { BenchCancel(b, start(b), appID, a) })
	b.Run("Present", func(b *testing.B) { BenchPresent(b, start(b), a) })
}

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
