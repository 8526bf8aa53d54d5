package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/internal/orderstate"
	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

func openInternal(t *testing.T) *SQLite {
	t.Helper()
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "coinsaga.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testOrder(id string) Order {
	return Order{OutOrderID: id, MgID: "mg", RoomID: "room", FromUID: "u", Provider: "mogs", Amount: 1,
		Intent: []byte("{}"), State: "accepted", Step: "order", Seq: 1, NextRunAt: time.Now()}
}

func request(t *testing.T, ctx context.Context, run runFunc) *writeReq {
	t.Helper()
	return sqlcommon.NewRequest(ctx, run)
}

func answer(t *testing.T, r *writeReq) error {
	t.Helper()
	select {
	case err := <-r.Answer():
		return err
	default:
		t.Fatal("request was not answered")
		return nil
	}
}

func mustAccept(t *testing.T, s *SQLite, id string) Order {
	t.Helper()
	if _, err := s.Accept(t.Context(), []Accept{{Order: testOrder(id), History: HistoryEntry{State: "accepted"}}}); err != nil {
		t.Fatal(err)
	}
	o, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestGroupCommit(t *testing.T) {
	t.Run("requests in one batch keep their own outcomes", func(t *testing.T) {
		s := openInternal(t)
		o := mustAccept(t, s, "o-1")
		p := mustAccept(t, s, "o-2")

		first, firstRes, _ := applyRun(Transition{From: o, To: withState(o, "ordered"), History: []HistoryEntry{{Detail: "first"}}})
		second, secondRes, _ := applyRun(Transition{From: o, To: withState(o, "failed"), History: []HistoryEntry{{Detail: "second"}},
			Outbox: []Message{{Subject: "s", MsgID: "from-stale"}}})
		other, otherRes, _ := applyRun(Transition{From: p, To: withState(p, "ordered"), History: []HistoryEntry{{Detail: "other"}}})
		dup, dupRes, _ := acceptRun([]Accept{{Order: testOrder("o-1")}, {Order: testOrder("o-3"), History: HistoryEntry{State: "accepted"}}})
		batch := []*writeReq{request(t, t.Context(), first), request(t, t.Context(), second), request(t, t.Context(), other), request(t, t.Context(), dup)}
		s.commit(batch)

		for i, r := range batch {
			if err := answer(t, r); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		if got, err := firstRes(); err != nil || got.State != "ordered" || got.Version != o.Version+1 {
			t.Errorf("first apply = %+v, %v; want ordered at version %d", got, err, o.Version+1)
		}
		if _, err := secondRes(); !errors.Is(err, ErrStale) {
			t.Errorf("second apply from the same version: err = %v, want ErrStale", err)
		}
		if got, err := otherRes(); err != nil || got.State != "ordered" {
			t.Errorf("apply to another order = %+v, %v", got, err)
		}
		if res := dupRes(); res[0].Created || res[0].Existing.State != "ordered" || !res[1].Created {
			t.Errorf("accept in the batch = %+v; want o-1 existing as ordered, o-3 created", res)
		}
		if msgs, _ := s.PendingOutbox(t.Context(), 0, 10); len(msgs) != 0 {
			t.Errorf("stale apply wrote outbox %+v", msgs)
		}
		if h, _ := s.History(t.Context(), "o-1"); len(h) != 2 || h[1].Detail != "first" {
			t.Errorf("history of o-1 = %+v, want accept and first", h)
		}
	})

	failures := []struct {
		name string
		run  runFunc
	}{
		{"a SQL error", func(ctx context.Context, tx *sqlx.Tx, _ time.Time) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO no_such_table VALUES (1)")
			return err
		}},
		{"a panic", func(context.Context, *sqlx.Tx, time.Time) error { panic("bug") }},
	}
	for _, f := range failures {
		t.Run(f.name+" rolls back the whole batch and reaches every caller", func(t *testing.T) {
			s := openInternal(t)
			o := mustAccept(t, s, "o-1")
			good, _, _ := applyRun(Transition{From: o, To: withState(o, "ordered")})
			acc, _, _ := acceptRun([]Accept{{Order: testOrder("o-new")}})
			batch := []*writeReq{request(t, t.Context(), good), request(t, t.Context(), acc), request(t, t.Context(), f.run)}
			s.commit(batch)
			for i, r := range batch {
				if err := answer(t, r); err == nil {
					t.Errorf("request %d succeeded in a failed batch", i)
				}
			}
			if got, _ := s.Get(t.Context(), "o-1"); got.State != "accepted" || got.Version != o.Version {
				t.Errorf("o-1 = %s at version %d after a rolled back batch, want unchanged", got.State, got.Version)
			}
			if _, err := s.Get(t.Context(), "o-new"); !errors.Is(err, ErrNotFound) {
				t.Errorf("accept of a rolled back batch is visible: %v", err)
			}
			// The committer goes on with the next batch.
			if _, err := s.Apply(t.Context(), Transition{From: o, To: withState(o, "ordered")}); err != nil {
				t.Errorf("apply after a failed batch: %v", err)
			}
		})
	}

	t.Run("a caller that gave up before its batch began writes nothing", func(t *testing.T) {
		s := openInternal(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		run, _, _ := acceptRun([]Accept{{Order: testOrder("o-gone")}})
		r := request(t, ctx, run)
		s.commit([]*writeReq{r})
		if err := answer(t, r); !errors.Is(err, context.Canceled) {
			t.Errorf("answer = %v, want context.Canceled", err)
		}
		if _, err := s.Get(t.Context(), "o-gone"); !errors.Is(err, ErrNotFound) {
			t.Errorf("cancelled accept was written: %v", err)
		}
	})

	t.Run("a caller whose ctx ends while the committer is busy gets the ctx error", func(t *testing.T) {
		s := openInternal(t)
		started, release := make(chan struct{}), make(chan struct{})
		busy := make(chan error, 1)
		go func() {
			busy <- s.submit(t.Context(), func(context.Context, *sqlx.Tx, time.Time) error {
				close(started)
				<-release
				return nil
			})
		}()
		<-started
		ctx, cancel := context.WithCancel(t.Context())
		waited := make(chan error, 1)
		go func() {
			_, err := s.Accept(ctx, []Accept{{Order: testOrder("o-late")}})
			waited <- err
		}()
		cancel()
		if err := <-waited; !errors.Is(err, context.Canceled) {
			t.Errorf("accept with a cancelled ctx = %v, want context.Canceled", err)
		}
		close(release)
		if err := <-busy; err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(t.Context(), "o-late"); !errors.Is(err, ErrNotFound) {
			t.Errorf("an accept abandoned before its batch was written: %v", err)
		}
	})

	t.Run("close answers every writer and refuses later ones", func(t *testing.T) {
		s := openInternal(t)
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range cap(errs) {
			wg.Go(func() {
				_, err := s.Accept(t.Context(), []Accept{{Order: testOrder(fmt.Sprint("o-", i))}})
				if err != nil && !errors.Is(err, ErrClosed) {
					errs <- err
				}
			})
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("writer racing Close: %v", err)
		}
		if _, err := s.Accept(t.Context(), []Accept{{Order: testOrder("o-after")}}); !errors.Is(err, ErrClosed) {
			t.Errorf("accept after close = %v, want ErrClosed", err)
		}
		if err := s.DeleteOutbox(t.Context(), []int64{1}); !errors.Is(err, ErrClosed) {
			t.Errorf("delete after close = %v, want ErrClosed", err)
		}
	})
}

func withState(o Order, state orderstate.State) Order {
	o.State = state
	return o
}
