package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/storetest"
)

// Run with: go test -run '^$' -bench . -benchmem ./store/

func reportBatching(b *testing.B, s *store.SQLite, commits0, writes0 int64) {
	commits, writes := store.CommitCounts(s)
	if c := commits - commits0; c > 0 {
		b.ReportMetric(float64(writes-writes0)/float64(c), "writes/commit")
	}
}

func acceptReq(id string, runAt time.Time) store.Accept {
	return store.Accept{
		Order:   storetest.Order(id, runAt),
		History: store.HistoryEntry{State: "accepted", Step: "order", Detail: "accepted"},
		Outbox: []store.Message{{Subject: "coinsaga.status.1468180338417074177.9009." + id, MsgID: id + ":1",
			Header: map[string]string{"Nats-Msg-Id": id + ":1"}, Data: []byte(`{"out_order_id":"` + id + `","state":"accepted","seq":1}`)}},
	}
}

func BenchmarkAccept(b *testing.B) {
	b.Run("single caller", func(b *testing.B) {
		s, _ := openTemp(b)
		defer s.Close()
		ctx := context.Background()
		now := time.Now()
		i := 0
		for b.Loop() {
			i++
			if _, err := s.Accept(ctx, []store.Accept{acceptReq(fmt.Sprint("single-", i), now)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("64 orders in one call", func(b *testing.B) {
		s, _ := openTemp(b)
		defer s.Close()
		ctx := context.Background()
		now := time.Now()
		reqs := make([]store.Accept, 64)
		i := 0
		for b.Loop() {
			for k := range reqs {
				i++
				reqs[k] = acceptReq(fmt.Sprint("call-", i), now)
			}
			if _, err := s.Accept(ctx, reqs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(reqs)), "ns/order")
	})
	b.Run("64 concurrent callers", func(b *testing.B) {
		s, _ := openTemp(b)
		defer s.Close()
		ctx := context.Background()
		now := time.Now()
		c0, w0 := store.CommitCounts(s)
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		for range 64 {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > int64(b.N) {
						return
					}
					if _, err := s.Accept(ctx, []store.Accept{acceptReq(fmt.Sprint("conc-", i), now)}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		reportBatching(b, s, c0, w0)
	})
}

func BenchmarkApply(b *testing.B) {
	b.Run("synchronous=NORMAL", func(b *testing.B) { benchApply(b) })
	b.Run("synchronous=FULL", func(b *testing.B) { benchApply(b, store.WithSynchronousFull()) })
}

func benchApply(b *testing.B, opts ...store.Option) {
	s, _ := openTemp(b, opts...)
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	const orders = 256
	reqs := make([]store.Accept, orders)
	for i := range reqs {
		reqs[i] = acceptReq(fmt.Sprint("apply-", i), now)
	}
	if _, err := s.Accept(ctx, reqs); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	c0, w0 := store.CommitCounts(s)
	b.SetParallelism(32) // 64 sagas on 2 cores: the concurrency a busy worker has
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine owns one order, as the scheduler gives an order to
		// one saga at a time.
		o, err := s.Get(ctx, fmt.Sprint("apply-", next.Add(1)-1))
		if err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			to := o
			to.Seq++
			to.Attempt++
			to.NextRunAt = now.Add(15 * time.Second)
			o, err = s.Apply(ctx, store.Transition{
				From: o, To: to,
				History: []store.HistoryEntry{{State: to.State, Step: to.Step, Attempt: to.Attempt, Detail: "confirm poll"}},
				Outbox:  []store.Message{{Subject: "coinsaga.status.x", MsgID: fmt.Sprintf("%s:%d", o.OutOrderID, to.Seq), Data: []byte(`{"seq":1}`)}},
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportBatching(b, s, c0, w0)
}

func BenchmarkOutboxPendingDelete256(b *testing.B) {
	s, _ := openTemp(b)
	defer s.Close()
	ctx := context.Background()
	msgs := make([]store.Message, 256)
	for i := range msgs {
		msgs[i] = store.Message{Subject: "coinsaga.status.1468180338417074177.9009.x", MsgID: fmt.Sprint("x:", i),
			Header: map[string]string{"Nats-Msg-Id": fmt.Sprint("x:", i), "Coinsaga-State": "debited"},
			Data:   []byte(`{"out_order_id":"x","state":"debited","seq":3,"amount":100,"balance":900}`)}
	}
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		a := acceptReq(fmt.Sprint("outbox-", i), time.Time{})
		a.Outbox = msgs
		if _, err := s.Accept(ctx, []store.Accept{a}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		got, err := s.PendingOutbox(ctx, 0, 256)
		if err != nil || len(got) != 256 {
			b.Fatalf("pending = %d, %v", len(got), err)
		}
		ids := make([]int64, len(got))
		for k, m := range got {
			ids[k] = m.ID
		}
		if err := s.DeleteOutbox(ctx, ids); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDue50k(b *testing.B) {
	s, _ := openTemp(b)
	defer s.Close()
	ctx := context.Background()
	base := time.Now()
	kit.AcceptOrders(b, s, 50000, func(n int) store.Accept {
		return store.Accept{
			Order:   storetest.Order(fmt.Sprintf("due-%05d", n), base.Add(time.Duration(n%3600-1800)*time.Second)),
			History: store.HistoryEntry{State: "accepted"},
		}
	})
	running := map[string]bool{}
	first, err := s.Due(ctx, base, 100, nil, nil)
	if err != nil || len(first) != 100 {
		b.Fatalf("due = %d, %v", len(first), err)
	}
	for _, o := range first {
		running[o.OutOrderID] = true
	}
	b.Run("100 of 25k due", func(b *testing.B) {
		for b.Loop() {
			if got, err := s.Due(ctx, base, 100, nil, nil); err != nil || len(got) != 100 {
				b.Fatalf("due = %d, %v", len(got), err)
			}
		}
	})
	b.Run("100 due past 100 running", func(b *testing.B) {
		for b.Loop() {
			got, err := s.Due(ctx, base, 100, nil, func(id string) bool { return running[id] })
			if err != nil || len(got) != 100 {
				b.Fatalf("due = %d, %v", len(got), err)
			}
		}
	})
	b.Run("next due", func(b *testing.B) {
		for b.Loop() {
			if _, ok, err := s.NextDue(ctx, nil); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("stats", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Stats(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStoragePerCompletedOrder reports the file bytes one completed
// order costs (10k orders through accept, four transitions, history and
// published status events), and the rate at which they went through.
func BenchmarkStoragePerCompletedOrder(b *testing.B) {
	const n = 10000
	for b.Loop() {
		s, path := openTemp(b)
		start := time.Now()
		fillCompleted(b, s, 0, n)
		elapsed := time.Since(start)
		size := fileSize(b, path)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(size)/n, "bytes/order")
		b.ReportMetric(n*5/elapsed.Seconds(), "writes/s")
	}
}

// BenchmarkAcceptApply is storetest.BenchAcceptApply on SQLite; the
// PostgreSQL store runs the same (store/postgres).
func BenchmarkAcceptApply(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("%d callers", callers), func(b *testing.B) {
			s, _ := openTemp(b)
			defer s.Close()
			c0, w0 := store.CommitCounts(s)
			storetest.BenchAcceptApply(b, s, callers)
			reportBatching(b, s, c0, w0)
		})
	}
}
