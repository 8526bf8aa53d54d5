package worker

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/mogs"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/storetest"
)

// Run with: go test -run '^$' -bench Relay -benchmem ./worker/

// relayWorker is a Worker wired to an embedded JetStream and a SQLite
// store, never Run: the benchmark drives its relay directly. The provider
// clients point at a closed port; the relay never calls them.
func relayWorker(b testing.TB) (*Worker, *store.SQLite) {
	b.Helper()
	ns := embednats.StartTest(b)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	st, err := store.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "coinsaga.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	sc, err := sud.New(sud.Config{AppID: "bench", AppSecret: "bench",
		CreateOrderURL: "http://127.0.0.1:1/create_order", QueryOrderURL: "http://127.0.0.1:1/query_order"})
	if err != nil {
		b.Fatal(err)
	}
	w, err := New(Config{Conn: nc, Store: st, SUD: sc,
		Wallets: map[string]providers.Wallet{events.ProviderMOGS: mogs.New(mogs.Config{BaseURL: "http://127.0.0.1:1/mogs"})}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := events.EnsureStreams(context.Background(), w.js, w.cfg.Subjects, w.cfg.Streams); err != nil {
		b.Fatal(err)
	}
	return w, st
}

// BenchmarkRelay measures the outbox relay: read a batch of status events
// from SQLite, publish them to JetStream asynchronously, wait for the acks
// and delete the acknowledged rows. One op is one message.
func BenchmarkRelay(b *testing.B) {
	const rows = 2048 // four relay batches per fill
	w, st := relayWorker(b)
	ctx := context.Background()
	subjects := w.cfg.Subjects
	fill := func(round int) {
		reqs := make([]store.Accept, rows)
		now := time.Now()
		for i := range reqs {
			o := storetest.Order("r"+strconv.Itoa(round)+"-"+strconv.Itoa(i), time.Time{})
			o.State, o.Step = events.StateCompleted, StepDone
			reqs[i] = store.Accept{Order: o, History: store.HistoryEntry{State: o.State, Step: "bench"},
				Outbox: []store.Message{statusMessage(subjects, o, now)}}
		}
		if _, err := st.Accept(ctx, reqs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	relayed, round := 0, 0
	for relayed < b.N {
		b.StopTimer()
		fill(round)
		round++
		b.StartTimer()
		for {
			n, err := w.relayOnce(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				break
			}
			relayed += n
		}
	}
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(relayed)/s, "msgs/s")
	}
	// Everything relayed was acknowledged and deleted.
	w.outbox.wait(ctx)
	if left, err := st.PendingOutbox(ctx, 0, 1); err != nil || len(left) != 0 {
		b.Fatalf("outbox not empty after the relay: %v %v", left, err)
	}
}

// BenchmarkWaitingPoll50k measures what a poll that sees nothing costs the
// waiting orders' bookkeeping with 50,000 of them waiting: pop the due
// one, rebuild the order its poll decides on, push it back one interval
// later. The balance read itself is the provider benchmarks' business.
func BenchmarkWaitingPoll50k(b *testing.B) {
	const waiting = 50000
	var q waitingOrders
	base := time.Now()
	for i := range waiting {
		o := store.Order{OutOrderID: "o" + strconv.Itoa(i), Provider: events.ProviderMOGS, Amount: 100,
			BillNo: "o" + strconv.Itoa(i), State: events.StateDebited, Step: StepConfirm,
			NextRunAt: base.Add(time.Duration(i) * time.Millisecond), DebitedAt: base, Version: 3}
		q.push(o, providers.Account{OpenID: "p" + strconv.Itoa(i%10000)})
	}
	p := policy{confirmInterval: 15 * time.Second, confirmTimeout: 2 * time.Minute}
	now := base.Add(time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		wo, ok := q.popDue(now)
		if !ok {
			b.Fatal("nothing due")
		}
		p.now = wo.due
		out := decideConfirm(wo.view(), balanceReading{at: wo.due}, nil, p)
		next := out.next
		next.NextRunAt = wo.due.Add(time.Microsecond) // still due: the heap keeps its size
		q.pushBack(wo.after(next))
	}
}
