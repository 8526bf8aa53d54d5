package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/coinsaga/coinsaga/internal/pgtest"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/postgres"
	"github.com/coinsaga/coinsaga/store/storetest"
)

func TestWorkersOpeningOneNewDatabaseAtOnceMigrateItOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.DB(t)
	const workers = 6
	stores := make([]*postgres.Store, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(t.Context(), url) })
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Errorf("open %d: %v", i, errs[i])
			continue
		}
		defer s.Close()
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, versions int
	if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations").Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows != versions || rows == 0 {
		t.Errorf("schema_migrations has %d rows for %d versions, want each migration applied once", rows, versions)
	}
	// A later open finds nothing to do.
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	s.Close()
}

func TestTextPostgreSQLRefusesIsStoredReplacedNotRefused(t *testing.T) {
	t.Parallel()
	s := open(t, pgtest.DB(t))
	defer s.Close()
	ctx := t.Context()
	o := storetest.Order("o-1", sqlNow())
	if _, err := s.Accept(ctx, []store.Accept{{Order: o, History: store.HistoryEntry{State: "accepted"}}}); err != nil {
		t.Fatal(err)
	}
	from, err := s.Get(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	to := from
	to.ErrorCode, to.Error = "busy", "ret=1018 \x00 msg=\xff\xfe"
	got, err := s.Apply(ctx, store.Transition{From: from, To: to,
		History: []store.HistoryEntry{{State: "accepted", Error: to.Error, Detail: "nul \x00 here"}}})
	if err != nil {
		t.Fatalf("apply with a NUL byte and invalid UTF-8: %v", err)
	}
	const want = "ret=1018 \uFFFD msg=\uFFFD"
	if got.Error != want {
		t.Errorf("applied error = %q, want %q", got.Error, want)
	}
	read, err := s.Get(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", read) != fmt.Sprintf("%+v", got) {
		t.Errorf("read after apply:\n got  %+v\n want %+v", read, got)
	}
	h, err := s.History(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[1].Error != want || h[1].Detail != "nul \uFFFD here" {
		t.Errorf("history = %+v, want the line with the text replaced", h)
	}
}

func TestARequestPostgreSQLRefusesFailsAloneNotItsBatch(t *testing.T) {
	t.Parallel()
	// One committer, so that the writes queue and share transactions.
	s := open(t, pgtest.DB(t), postgres.WithCommitters(1))
	defer s.Close()
	ctx := t.Context()
	const good = 40
	var wg sync.WaitGroup
	errs := make([]error, good)
	var badErr error
	wg.Go(func() { badErr = postgres.SubmitFailing(ctx, s) })
	for i := range good {
		wg.Go(func() {
			_, errs[i] = s.Accept(ctx, []store.Accept{{Order: storetest.Order(fmt.Sprint("o-", i), sqlNow()),
				History: store.HistoryEntry{State: "accepted"}}})
		})
	}
	wg.Wait()
	var pe *pgconn.PgError
	if !errors.As(badErr, &pe) || pe.Code != "22012" {
		t.Errorf("the bad request: err = %v, want division_by_zero (22012)", badErr)
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("good requests failed with the bad one: %v", err)
	}
	for i := range good {
		if _, err := s.Get(ctx, fmt.Sprint("o-", i)); err != nil {
			t.Errorf("o-%d: %v", i, err)
		}
	}
	commits, writes := s.CommitCounts()
	t.Logf("%d writes in %d commits", writes, commits)
}

func TestDeadlocksAndSerializationFailuresAreRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want bool
	}{
		{"40P01", true},  // deadlock_detected
		{"40001", true},  // serialization_failure
		{"23505", false}, // unique_violation: an answer, not a conflict
		{"57P01", false}, // admin_shutdown
	}
	for _, tc := range tests {
		err := fmt.Errorf("commit: %w", &pgconn.PgError{Code: tc.code})
		if got := postgres.Retryable(err); got != tc.want {
			t.Errorf("retryable(%s) = %v, want %v", tc.code, got, tc.want)
		}
	}
	if postgres.Retryable(context.DeadlineExceeded) {
		t.Error("a deadline is retried")
	}
}

func TestOpenRefusesAnEmptyOrUnreachableURL(t *testing.T) {
	t.Parallel()
	if _, err := postgres.Open(t.Context(), ""); err == nil {
		t.Error("open with an empty url succeeded")
	}
	// A socket directory with no server in it: refused at open, not at
	// the first write.
	if _, err := postgres.Open(t.Context(), "postgres://postgres@/x?host="+t.TempDir()+"&connect_timeout=2"); err == nil {
		t.Error("open of a database nobody serves succeeded")
	}
}

func TestPostgresOwnership(t *testing.T) {
	storetest.RunOwnership(t, func(t *testing.T, lt store.LeaseTimings) (store.Shared, store.Shared) {
		url := pgtest.DB(t)
		return open(t, url, postgres.WithLeaseTimings(lt)), open(t, url, postgres.WithLeaseTimings(lt))
	})
}
