package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/storetest"

	"github.com/coinsaga/coinsaga/internal/orderstate"
)

func openTemp(t testing.TB, opts ...store.Option) (*store.SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "coinsaga.db")
	s, err := store.OpenSQLite(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return s, path
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := openTemp(t)
		return s
	})
}

func TestSQLiteWithMaxBatchOneConforms(t *testing.T) {
	// Batching must not change any outcome; a batch of one is the baseline.
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := openTemp(t, store.WithMaxBatch(1), store.WithSynchronousFull())
		return s
	})
}

func TestSQLiteSharedDatabaseCases(t *testing.T) {
	// SQLite admits one process per database: a second handle is refused
	// with ErrLocked (checked here), so the two-handle cases run between
	// goroutines of the one handle, which is how a single worker shares it.
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		s, path := openTemp(t)
		if second, err := store.OpenSQLite(t.Context(), path); !errors.Is(err, store.ErrLocked) {
			if second != nil {
				second.Close()
			}
			t.Fatalf("second handle on one database: err = %v, want ErrLocked", err)
		}
		t.Log("a second SQLite handle is refused (ErrLocked): both sides use one handle")
		return s, s
	})
}

func TestSQLiteLockRefusesASecondOpen(t *testing.T) {
	s, path := openTemp(t)
	defer s.Close()

	_, err := store.OpenSQLite(t.Context(), path)
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: err = %v, want ErrLocked", err)
	}
	msg := err.Error()
	for _, want := range []string{path + ".lock", "another coinsaga process", fmt.Sprint("pid ", os.Getpid())} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	// The refused open must not have disturbed the holder.
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("holder after a refused open: %v", err)
	}
}

func TestSQLiteCloseReleasesTheLock(t *testing.T) {
	s, path := openTemp(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	s2, err := store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSQLiteReopenKeepsData(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	o := storetest.Order("o-1", time.Now().Add(time.Minute))
	if _, err := s.Accept(ctx, []store.Accept{{
		Order:   o,
		History: store.HistoryEntry{State: "accepted", Detail: "accepted"},
		Outbox:  []store.Message{{Subject: "s", MsgID: "o-1:1", Header: map[string]string{"k": "v"}, Data: []byte("x")}},
	}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	to := got
	to.State, to.Step, to.SudOrderID = "ordered", "debit", "sud-1"
	applied, err := s.Apply(ctx, store.Transition{From: got, To: to, History: []store.HistoryEntry{{State: "ordered", Detail: "ordered"}}})
	if err != nil {
		t.Fatal(err)
	}
	wantHistory, _ := s.History(ctx, "o-1")
	wantOutbox, _ := s.PendingOutbox(ctx, 0, 10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	read, err := s.Get(ctx, "o-1")
	if err != nil {
		t.Fatalf("get after reopen: %v", err)
	}
	if fmt.Sprintf("%+v", read) != fmt.Sprintf("%+v", applied) {
		t.Errorf("order after reopen:\n got  %+v\n want %+v", read, applied)
	}
	h, _ := s.History(ctx, "o-1")
	if fmt.Sprint(h) != fmt.Sprint(wantHistory) || len(h) != 2 {
		t.Errorf("history after reopen = %+v, want %+v", h, wantHistory)
	}
	msgs, _ := s.PendingOutbox(ctx, 0, 10)
	if fmt.Sprint(msgs) != fmt.Sprint(wantOutbox) || len(msgs) != 1 {
		t.Errorf("outbox after reopen = %+v, want %+v", msgs, wantOutbox)
	}
}

func TestSQLiteApplyKeepsTheIntent(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	ctx := t.Context()
	o := storetest.Order("o-1", time.Now())
	if _, err := s.Accept(ctx, []store.Accept{{Order: o, History: store.HistoryEntry{State: "accepted"}}}); err != nil {
		t.Fatal(err)
	}
	from, _ := s.Get(ctx, "o-1")
	// A To built from scratch: no intent, no creation time.
	to := store.Order{OutOrderID: "o-1", State: "ordered", Step: "debit", Seq: 2}
	got, err := s.Apply(ctx, store.Transition{From: from, To: to, History: []store.HistoryEntry{{State: "ordered"}}})
	if err != nil {
		t.Fatal(err)
	}
	read, _ := s.Get(ctx, "o-1")
	for _, o := range []store.Order{got, read} {
		if string(o.Intent) != string(from.Intent) || o.IntentSubject != from.IntentSubject ||
			o.BodyHash != from.BodyHash || !o.CreatedAt.Equal(from.CreatedAt) {
			t.Errorf("after apply: intent %q subject %q hash %q created %v; want those of the accept",
				o.Intent, o.IntentSubject, o.BodyHash, o.CreatedAt)
		}
		if o.State != "ordered" || o.MgID != "" {
			t.Errorf("after apply: state %q mg_id %q; want To's other fields", o.State, o.MgID)
		}
	}
}

// TestSQLiteSurvivesAKilledProcess runs a child that accepts an order and
// is killed without Close: the parent must find the order and the lock
// free, as after a real crash.
func TestSQLiteSurvivesAKilledProcess(t *testing.T) {
	if path := os.Getenv("COINSAGA_STORE_CRASH_CHILD"); path != "" {
		s, err := store.OpenSQLite(context.Background(), path)
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(2)
		}
		if _, err := s.Accept(context.Background(), []store.Accept{{
			Order:   storetest.Order("o-crash", time.Now()),
			History: store.HistoryEntry{State: "accepted"},
			Outbox:  []store.Message{{Subject: "s", MsgID: "o-crash:1", Data: []byte("accepted")}},
		}}); err != nil {
			fmt.Println("accept:", err)
			os.Exit(2)
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal ends the process
	}

	path := filepath.Join(t.TempDir(), "coinsaga.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSQLiteSurvivesAKilledProcess$")
	cmd.Env = append(os.Environ(), "COINSAGA_STORE_CRASH_CHILD="+path)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}

	s, err := store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("open after the holder was killed: %v", err)
	}
	defer s.Close()
	o, err := s.Get(t.Context(), "o-crash")
	if err != nil {
		t.Fatalf("order accepted before the kill: %v", err)
	}
	if o.State != "accepted" || o.Version != 1 {
		t.Errorf("order after the kill = %+v", o)
	}
	if msgs, err := s.PendingOutbox(t.Context(), 0, 10); err != nil || len(msgs) != 1 {
		t.Errorf("outbox after the kill = %+v, %v; want the accepted event", msgs, err)
	}
}

func TestSQLiteMigrationsAreIdempotent(t *testing.T) {
	s, path := openTemp(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		s, err := store.OpenSQLite(t.Context(), path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	db := sqlx.MustOpen("sqlite3", path)
	defer db.Close()
	var applied []int
	if err := db.Select(&applied, "SELECT version FROM schema_migrations ORDER BY version"); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("migrations/*.sql")
	if len(applied) != len(files) {
		t.Errorf("schema_migrations has versions %v for %d migration files", applied, len(files))
	}
	var tables []string
	if err := db.Select(&tables, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(tables, ","), "history,orders,outbox,schema_migrations,workers"; got != want {
		t.Errorf("tables = %s, want %s", got, want)
	}
}

func TestSQLiteWithClockStampsWrites(t *testing.T) {
	clock := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)
	s, _ := openTemp(t, store.WithClock(func() time.Time { return clock }))
	defer s.Close()
	ctx := t.Context()
	if _, err := s.Accept(ctx, []store.Accept{{
		Order:   storetest.Order("o-1", clock),
		History: store.HistoryEntry{State: "accepted"}, // At left zero: the store stamps it
		Outbox:  []store.Message{{Subject: "s", MsgID: "m"}},
	}}); err != nil {
		t.Fatal(err)
	}
	o, _ := s.Get(ctx, "o-1")
	want := clock.Truncate(time.Millisecond)
	if !o.CreatedAt.Equal(want) || !o.UpdatedAt.Equal(want) || o.Version != 1 {
		t.Errorf("accepted order created %v updated %v version %d; want %v, %v, 1", o.CreatedAt, o.UpdatedAt, o.Version, want, want)
	}
	h, _ := s.History(ctx, "o-1")
	if len(h) != 1 || !h[0].At.Equal(want) {
		t.Errorf("history = %+v, want one line at %v", h, want)
	}
	st, _ := s.Stats(ctx)
	if !st.OldestOutbox.Equal(want) {
		t.Errorf("oldest outbox = %v, want %v", st.OldestOutbox, want)
	}
}

func TestSQLiteQueriesUseTheirIndexes(t *testing.T) {
	s, path := openTemp(t)
	defer s.Close()
	db := sqlx.MustOpen("sqlite3", "file:"+path+"?mode=ro")
	defer db.Close()
	tests := []struct {
		name, query, want string
	}{
		{"due walks the due index", `SELECT id FROM orders WHERE next_run_at IS NOT NULL AND next_run_at <= 1 AND (next_run_at, id) > (0, 0) ORDER BY next_run_at, id LIMIT 5`, "orders_due"},
		{"due of one step walks the step index", `SELECT id FROM orders WHERE next_run_at IS NOT NULL AND next_run_at <= 1 AND (next_run_at, id) > (0, 0) AND step = 'pay' ORDER BY next_run_at, id LIMIT 5`, "orders_step"},
		{"next due reads the due index", `SELECT MIN(next_run_at) FROM orders WHERE next_run_at IS NOT NULL`, "orders_due"},
		{"stats by state reads the state index", `SELECT state, COUNT(*) FROM orders GROUP BY state`, "orders_state"},
		{"stats by step reads the step index", `SELECT step, COUNT(*) FROM orders WHERE next_run_at IS NOT NULL GROUP BY step`, "orders_step"},
		{"prune finds old terminal orders by state and time", `SELECT id FROM orders WHERE +state IN ('completed','failed') AND next_run_at IS NULL AND updated_at < 5 LIMIT 3`, "orders_finished"},
		{"history reads by order key", `SELECT h.at FROM history h JOIN orders o ON o.id = h.order_id WHERE o.out_order_id = 'x' ORDER BY h.version`, "PRIMARY KEY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := db.Query("EXPLAIN QUERY PLAN " + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var text []string
			for rows.Next() {
				var p struct {
					ID, Parent, NotUsed int
					Detail              string
				}
				if err := rows.Scan(&p.ID, &p.Parent, &p.NotUsed, &p.Detail); err != nil {
					t.Fatal(err)
				}
				text = append(text, p.Detail)
			}
			joined := strings.Join(text, "; ")
			if !strings.Contains(joined, tc.want) || strings.Contains(joined, "SCAN o ") || strings.Contains(joined, "TEMP B-TREE") {
				t.Errorf("plan %q, want it to use %s without a scan or sort", joined, tc.want)
			}
		})
	}
}

// TestSQLiteStorageStaysSmall guards the storage budget: each completed
// order, with its history and once its outbox messages are published, grows
// the database file by at most 2 KiB, indexes and free pages included.
func TestSQLiteStorageStaysSmall(t *testing.T) {
	first, then := 300, 1000
	if testing.Short() {
		first, then = 100, 300
	}
	s, path := openTemp(t)
	defer s.Close()
	fillCompleted(t, s, 0, first)
	before := fileSize(t, path)
	fillCompleted(t, s, first, then)
	after := fileSize(t, path)
	growth := float64(after-before) / float64(then)
	t.Logf("file grows %.0f bytes per completed order (%d bytes after %d orders: %.0f per order with fixed overhead)",
		growth, after, first+then, float64(after)/float64(first+then))
	if growth > 2048 {
		t.Errorf("file grows %.0f bytes per completed order, budget 2048", growth)
	}
}

// fileSize checkpoints the WAL into the database file and returns the size
// of both, as a restart would find them.
func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	db := sqlx.MustOpen("sqlite3", path)
	defer db.Close()
	// The store's own checkpointer may be copying at this moment; a
	// TRUNCATE checkpoint then reports busy and leaves the WAL as it is.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var busy, frames, copied int
		if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &copied); err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
		if busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint still busy after 10s")
		}
		time.Sleep(5 * time.Millisecond) // another checkpoint holds the lock: no event to wait on
	}
	var size int64
	for _, f := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(f); err == nil {
			size += fi.Size()
		}
	}
	return size
}

// fillCompleted runs orders from..from+n through accept and four
// transitions, each with a history line and a status event, and deletes
// the published events as a relay would.
func fillCompleted(t testing.TB, s *store.SQLite, from, n int) {
	t.Helper()
	ctx := context.Background()
	base := time.Now()
	const chunk = 250
	relay := func() {
		for {
			msgs, err := s.PendingOutbox(ctx, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) == 0 {
				return
			}
			ids := make([]int64, len(msgs))
			for i, m := range msgs {
				ids[i] = m.ID
			}
			if err := s.DeleteOutbox(ctx, ids); err != nil {
				t.Fatal(err)
			}
		}
	}
	event := func(id string, seq int, state orderstate.State) store.Message {
		return store.Message{
			Subject: "coinsaga.status.1468180338417074177.9009." + id,
			MsgID:   fmt.Sprintf("%s:%d", id, seq),
			Header:  map[string]string{"Nats-Msg-Id": fmt.Sprintf("%s:%d", id, seq), "Coinsaga-State": string(state)},
			Data: fmt.Appendf(nil, `{"out_order_id":%q,"order_id":"sud-%s","mg_id":"1468180338417074177","room_id":"9009","from_uid":"001","state":%q,"seq":%d,"at":"2026-11-21T10:00:00.123456Z","provider":"mogs","bill_no":"bill-%s","amount":100,"balance":900}`,
				id, id, state, seq, id),
		}
	}
	steps := []struct {
		state  orderstate.State
		step   orderstate.Step
		detail string
	}{
		{"ordered", "debit", "sud order created"},
		{"ordered", "confirm", "baseline balance 1000"},
		{"debited", "confirm", "pay ok, balance 900"},
		{"completed", "done", "debit confirmed"},
	}
	for lo := from; lo < from+n; lo += chunk {
		hi := min(lo+chunk, from+n)
		reqs := make([]store.Accept, 0, hi-lo)
		for i := lo; i < hi; i++ {
			id := fmt.Sprintf("%013d", 1659497694000+int64(i))
			reqs = append(reqs, store.Accept{
				Order:   storetest.Order(id, base),
				History: store.HistoryEntry{State: "accepted", Step: "order", Detail: "accepted"},
				Outbox:  []store.Message{event(id, 1, "accepted")},
			})
		}
		if _, err := s.Accept(ctx, reqs); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, hi-lo)
		for i := lo; i < hi; i++ {
			wg.Go(func() {
				id := fmt.Sprintf("%013d", 1659497694000+int64(i))
				o, err := s.Get(ctx, id)
				if err != nil {
					errs <- err
					return
				}
				for k, st := range steps {
					to := o
					to.State, to.Step, to.Seq = st.state, st.step, o.Seq+1
					to.SudOrderID, to.BillNo = "sud-"+id, "bill-"+id
					if k >= 1 {
						to.HasBaseline, to.BaselineBalance, to.BaselineCostSum = true, 1000, 5000
					}
					if k >= 2 {
						to.HasPayBalance, to.PayBalance, to.DebitedAt = true, 900, base
					}
					if st.state == "completed" {
						to.NextRunAt = time.Time{}
					}
					o, err = s.Apply(ctx, store.Transition{
						From: o, To: to,
						History: []store.HistoryEntry{{At: base, State: st.state, Step: st.step, Detail: st.detail}},
						Outbox:  []store.Message{event(id, to.Seq, st.state)},
					})
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		relay()
	}
}

// TestSQLiteCheckpointsKeepTheWALBounded: the checkpointer copies
// committed pages into the database file while the store is open and
// busy, and the WAL starts over rather than growing with every write.
func TestSQLiteCheckpointsKeepTheWALBounded(t *testing.T) {
	s, path := openTemp(t)
	defer s.Close()
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	before := size(path)
	fillCompleted(t, s, 0, 6000)
	if got := size(path); got <= before {
		t.Errorf("database file still %d bytes after 6,000 orders: nothing was checkpointed", got)
	}
	// About 14 KiB of WAL per order: 6,000 orders would be 80 MiB of WAL
	// if it never started over.
	const bound = 24 << 20
	if wal := size(path + "-wal"); wal > bound {
		t.Errorf("WAL is %d MiB after 6,000 orders, want it bounded near 16 MiB", wal>>20)
	}
}

func TestSQLiteOwnership(t *testing.T) {
	// One process per database (the lock file): the one handle is both
	// workers, and the cases that need two live workers say why they skip.
	storetest.RunOwnership(t, func(t *testing.T, lt store.LeaseTimings) (store.Shared, store.Shared) {
		s, _ := openTemp(t, store.WithLeaseTimings(lt))
		return s, s
	})
}
