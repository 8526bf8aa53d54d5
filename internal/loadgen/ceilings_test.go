package loadgen

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sud"
)

// countingProviders is SUD and both wallets in memory: it counts the calls
// and the bills it was paid, and refuses the pay of one bill.
type countingProviders struct {
	provider string
	shared   *callCounts
}

type callCounts struct {
	mu       sync.Mutex
	created  int
	balances int
	bills    map[string]int
	refuse   string // bill whose pay fails
}

var errRefused = errors.New("pay refused")

func (p countingProviders) Provider() string { return p.provider }

func (p countingProviders) CreateOrder(_ context.Context, req sud.CreateOrderRequest) (sud.CreateOrderReply, error) {
	p.shared.mu.Lock()
	defer p.shared.mu.Unlock()
	p.shared.created++
	return sud.CreateOrderReply{Class: providers.OK, OutOrderID: req.OutOrderID, OrderID: "sud-" + req.OutOrderID}, nil
}

func (p countingProviders) QueryOrder(context.Context, string) (sud.Order, error) {
	return sud.Order{}, errors.New("query_order: a new order is never looked up")
}

func (p countingProviders) Balance(context.Context, providers.Account) (providers.Balance, error) {
	p.shared.mu.Lock()
	defer p.shared.mu.Unlock()
	p.shared.balances++
	return providers.Balance{Balance: 1 << 30}, nil
}

func (p countingProviders) Debit(_ context.Context, _ providers.Account, d providers.Debit) (providers.DebitReply, error) {
	p.shared.mu.Lock()
	defer p.shared.mu.Unlock()
	if d.BillNo == p.shared.refuse {
		return providers.DebitReply{}, errRefused
	}
	p.shared.bills[d.BillNo]++
	return providers.DebitReply{Class: providers.OK, BillNo: d.BillNo}, nil
}

func (p countingProviders) Cancel(context.Context, providers.Account, providers.Cancel) (providers.CancelReply, error) {
	return providers.CancelReply{}, errors.New("cancel: a successful order never cancels")
}

func (p countingProviders) Present(context.Context, providers.Account, providers.Present) (providers.PresentReply, error) {
	return providers.PresentReply{}, errors.New("present: a successful order never presents")
}

func TestProviderCeilingMakesEveryOrdersCallsOnce(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		orders      int
		concurrency int
		refuse      string
		wantErr     error
	}{
		{name: "one caller makes every order's calls", orders: 40, concurrency: 1},
		{name: "many callers make each order's calls once", orders: 300, concurrency: 16},
		{name: "more callers than orders still pay each order once", orders: 5, concurrency: 64},
		{name: "a refused pay stops the ceiling with the provider's error", orders: 50, concurrency: 4, refuse: "c1-17", wantErr: errRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			counts := &callCounts{bills: map[string]int{}, refuse: tc.refuse}
			orders := countingProviders{shared: counts}
			wallets := map[string]providers.Wallet{
				events.ProviderMOGS:  countingProviders{provider: events.ProviderMOGS, shared: counts},
				events.ProviderMidas: countingProviders{provider: events.ProviderMidas, shared: counts},
			}
			r := &run{cfg: Config{Run: "1", Orders: tc.orders, Concurrency: tc.concurrency, MidasShare: 0.5, Players: 7, Log: &strings.Builder{}},
				t: Target{SUD: orders, Wallets: wallets}}
			rate, err := r.providerCeiling(context.Background())
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.refuse) {
					t.Fatalf("providerCeiling error %v, want %v naming bill %s", err, tc.wantErr, tc.refuse)
				}
				return
			}
			if err != nil {
				t.Fatalf("providerCeiling: %v", err)
			}
			if rate <= 0 {
				t.Errorf("rate %v, want a positive orders/s", rate)
			}
			if counts.created != tc.orders || counts.balances != 2*tc.orders || len(counts.bills) != tc.orders {
				t.Errorf("%d create_order, %d balance reads, %d bills paid; want %d, %d, %d",
					counts.created, counts.balances, len(counts.bills), tc.orders, 2*tc.orders, tc.orders)
			}
			for bill, n := range counts.bills {
				if n != 1 {
					t.Errorf("bill %s paid %d times, want once", bill, n)
				}
			}
		})
	}
}

func TestProviderCeilingRefusesToRunWithoutProviders(t *testing.T) {
	t.Parallel()
	r := &run{cfg: Config{Orders: 1, Concurrency: 1, Players: 1, Log: &strings.Builder{}}}
	if _, err := r.providerCeiling(context.Background()); err == nil {
		t.Error("a provider ceiling with no providers to call reported a rate")
	}
}

func TestJetStreamCeilingAcksEveryMessageAndRemovesItsStream(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embednats.Start(embednats.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	conn := func() *nats.Conn { return kit.Connect(t, srv.ClientURL()).Conn }
	s := events.Subjects{Prefix: "lg"}
	r := &run{cfg: Config{Subjects: s, Run: "t1", Orders: 500, MidasShare: 0.5, Players: 10, Timeout: 20 * time.Second, Log: &strings.Builder{}},
		t: Target{Pub: conn(), Sub: conn()}}
	rate, err := r.jetstreamCeiling(ctx)
	if err != nil {
		t.Fatalf("jetstreamCeiling: %v", err)
	}
	if rate <= 0 {
		t.Errorf("rate %v, want a positive messages/s", rate)
	}
	js, err := jetstream.New(r.t.Pub)
	if err != nil {
		t.Fatal(err)
	}
	for name := range js.StreamNames(ctx).Name() {
		t.Errorf("stream %s left behind; the scratch stream must go", name)
	}
}
