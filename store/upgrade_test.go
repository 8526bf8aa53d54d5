package store_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/storetest"
)

// schemaOf is the SQL of every table and index, by name.
func schemaOf(t *testing.T, db *sqlx.DB) map[string]string {
	t.Helper()
	var rows []struct {
		Name string `db:"name"`
		SQL  string `db:"sql"`
	}
	if err := db.Select(&rows, `SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name <> 'schema_migrations'`); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.Name] = r.SQL
	}
	return out
}

func TestSQLiteDatabaseAtTheOldSchemaUpgradesOnOpen(t *testing.T) {
	t.Parallel()
	const before = 2 // the last migration before the ownership seam
	ms, err := store.LoadMigrations(os.DirFS("."))
	if err != nil {
		t.Fatal(err)
	}

	// The schema as the release before this one left it: its migrations
	// alone, applied to an empty file.
	oldDB := sqlx.MustOpen("sqlite3", filepath.Join(t.TempDir(), "old.db"))
	defer oldDB.Close()
	for _, m := range ms {
		if m.Version <= before {
			oldDB.MustExec(m.SQL)
		}
	}
	want := schemaOf(t, oldDB)

	// A database with an order in it, taken back to that schema.
	s, path := openTemp(t)
	o := storetest.Order("o-old", time.Now().Add(-time.Second))
	if _, err := s.Accept(t.Context(), []store.Accept{{Order: o, History: store.HistoryEntry{State: "accepted"}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db := sqlx.MustOpen("sqlite3", path)
	db.MustExec(`DROP TABLE workers`)
	db.MustExec(`DELETE FROM schema_migrations WHERE version > ?`, before)
	got := schemaOf(t, db)
	db.Close()
	if len(got) != len(want) {
		t.Fatalf("the downgraded database has %d tables and indexes, the old schema %d", len(got), len(want))
	}
	for name, sql := range want {
		if got[name] != sql {
			t.Fatalf("the downgraded database's %s is\n%s\nwant the old schema's\n%s", name, got[name], sql)
		}
	}

	// Opening it upgrades it; the old order is there and the new worker's.
	s, err = store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("open the old database: %v", err)
	}
	defer s.Close()
	l, err := s.Register(t.Context(), "host")
	if err != nil {
		t.Fatalf("register on the upgraded database: %v", err)
	}
	due, err := s.Due(t.Context(), time.Now(), 10, nil, nil)
	if err != nil || len(due) != 1 || due[0].OutOrderID != "o-old" {
		t.Fatalf("due after the upgrade: %v, %v; want o-old", due, err)
	}
	if owner, err := s.Owner(t.Context(), "o-old"); err != nil || owner != l.Worker {
		t.Errorf("owner of the old order: %q, %v; want %q", owner, err, l.Worker)
	}
}

func TestTheLocalFenceClosesTheMarginBeforeTheTTL(t *testing.T) {
	t.Parallel()
	sent := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := store.Lease{Worker: "w", Sent: sent, TTL: store.LeaseTTL}
	tests := []struct {
		name  string
		lease store.Lease
		at    time.Time
		want  bool
	}{
		{"right after the renew was sent", l, sent, true},
		{"just before TTL minus the margin", l, sent.Add(store.LeaseTTL - store.LeaseFenceMargin - time.Millisecond), true},
		{"at TTL minus the margin", l, sent.Add(store.LeaseTTL - store.LeaseFenceMargin), false},
		{"after the TTL", l, sent.Add(store.LeaseTTL), false},
		{"without a lease", store.Lease{}, sent, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.lease.MayStart(tc.at); got != tc.want {
				t.Errorf("MayStart(%v after sent) = %v, want %v", tc.at.Sub(sent), got, tc.want)
			}
		})
	}
	// Renew three times within a TTL, and the grace covers the provider
	// timeout twice over (docs/architecture.md, "Ownership").
	if store.LeaseTTL < 3*store.LeaseRenewEvery {
		t.Errorf("TTL %v allows fewer than three renews every %v", store.LeaseTTL, store.LeaseRenewEvery)
	}
}

func TestSQLiteRegisterRenewAndReleaseWithOneOwner(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, store.WithLeaseTimings(store.LeaseTimings{TTL: time.Minute}))
	defer s.Close()
	ctx := t.Context()
	if _, err := s.Renew(ctx); err == nil {
		t.Error("renew before any register succeeded")
	}
	l, err := s.Register(ctx, "host-1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Renew(ctx)
	if err != nil || r.Worker != l.Worker || r.Sent.Before(l.Sent) || r.TTL != time.Minute {
		t.Errorf("renew: %+v, %v; want the same worker, later sent, the TTL set", r, err)
	}
	ws, err := s.Workers(ctx)
	if err != nil || len(ws) != 1 || ws[0].Worker != l.Worker || ws[0].Host != "host-1" {
		t.Errorf("workers: %+v, %v; want the one registered", ws, err)
	}
	if res, err := s.Rescue(ctx); err != nil || len(res.Workers) != 0 {
		t.Errorf("rescue: %+v, %v; want nothing (one owner)", res, err)
	}
	if got, err := s.Claim(ctx, time.Now(), 10, nil); err != nil || len(got) != 0 {
		t.Errorf("claim: %d orders, %v; want none (one owner: Due has them)", len(got), err)
	}
	// A second register (a restarted worker) replaces the row.
	l2, err := s.Register(ctx, "host-2")
	if err != nil || l2.Worker == l.Worker {
		t.Fatalf("second register: %+v, %v; want a new worker id", l2, err)
	}
	if ws, _ := s.Workers(ctx); len(ws) != 1 || ws[0].Worker != l2.Worker {
		t.Errorf("workers after a second register: %+v, want only %s", ws, l2.Worker)
	}
	if _, err := s.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Accept(ctx, []store.Accept{{Order: storetest.Order("o", time.Now())}}); err == nil {
		t.Error("accept after release succeeded")
	}
}
