package mogs_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/coinsaga/coinsaga/providers"
)

// The benchmarks measure one client call over loopback HTTP against the
// sandbox, connection reuse included; the sandbox's own work is in the
// figures too.

func BenchmarkBalance(b *testing.B) {
	e := newEnv(b)
	ctx, a := context.Background(), account("bench")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.client.Balance(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDebit(b *testing.B) {
	e := newEnv(b)
	ctx, a := context.Background(), account("bench")
	e.sb.SetAccount("mogs", appID, "bench", 1<<40, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := e.client.Debit(ctx, a, providers.Debit{BillNo: "bench-pay-" + strconv.Itoa(i), Amount: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCancel(b *testing.B) {
	e := newEnv(b)
	ctx, a := context.Background(), account("bench")
	e.sb.SetAccount("mogs", appID, "bench", 1<<40, 0)
	for i := range b.N {
		if _, err := e.client.Debit(ctx, a, providers.Debit{BillNo: "bench-cancel-" + strconv.Itoa(i), Amount: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := e.client.Cancel(ctx, a, providers.Cancel{BillNo: "bench-cancel-" + strconv.Itoa(i), Amount: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPresent(b *testing.B) {
	e := newEnv(b)
	ctx, a := context.Background(), account("bench")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := e.client.Present(ctx, a, providers.Present{BillNo: "bench-gift-" + strconv.Itoa(i), Amount: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
