package postgres_test

import (
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/pgtest"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/postgres"
	"github.com/coinsaga/coinsaga/store/storetest"
)

// schemaOf lists every column and index of the public schema, one line
// each, sorted.
func schemaOf(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `
		SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || COALESCE(column_default, '')
			FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
		UNION ALL
		SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func TestPostgresDatabaseAtTheOldSchemaUpgradesOnOpen(t *testing.T) {
	t.Parallel()
	const before = 1 // the last migration before the ownership seam
	ms, err := store.LoadMigrations(os.DirFS("."))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	// The schema as the release before this one left it.
	oldDB, err := sql.Open("pgx", pgtest.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer oldDB.Close()
	for _, m := range ms {
		if m.Version <= before {
			if _, err := oldDB.ExecContext(ctx, m.SQL); err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
		}
	}
	want := schemaOf(t, oldDB)

	// A database with an order in it, taken back to that schema.
	url := pgtest.DB(t)
	s := open(t, url)
	o := storetest.Order("o-old", time.Now().Add(-time.Second))
	if _, err := s.Accept(ctx, []store.Accept{{Order: o, History: store.HistoryEntry{State: "accepted"}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`DROP TABLE workers`,
		`ALTER TABLE orders DROP COLUMN owner`, // its indexes go with it
		`ALTER TABLE outbox DROP COLUMN owner`,
		`DELETE FROM schema_migrations WHERE version > 1`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if got := schemaOf(t, db); got != want {
		t.Fatalf("the downgraded database's schema:\n%s\nwant the old one:\n%s", got, want)
	}

	// Opening it upgrades it; the old order has no owner, so the first
	// worker claims it.
	s = open(t, url)
	defer s.Close()
	l, err := s.Register(ctx, "host")
	if err != nil {
		t.Fatalf("register on the upgraded database: %v", err)
	}
	got, err := s.Claim(ctx, time.Now(), 10, nil)
	if err != nil || len(got) != 1 || got[0].OutOrderID != "o-old" {
		t.Fatalf("claim after the upgrade: %v, %v; want o-old", got, err)
	}
	if owner, err := s.Owner(ctx, "o-old"); err != nil || owner != l.Worker {
		t.Errorf("owner of the old order: %q, %v; want %q", owner, err, l.Worker)
	}
}

func TestClaimsAndAWorkersDueReadTheirIndexes(t *testing.T) {
	t.Parallel()
	url := pgtest.DB(t)
	s := open(t, url)
	s.Close()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// An empty table makes any plan cheap: forbid the sequential scan, so
	// that the plan shows whether an index can serve the query at all
	// (with a parameter for the time, not clock_timestamp()).
	if _, err := conn.ExecContext(t.Context(), "SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, query, index string
		args               []any
	}{
		{"claim candidates", postgres.ClaimCandidates + "ORDER BY next_run_at, id LIMIT $2", "orders_orphans", []any{int64(1), 10}},
		{"a worker's due orders", `SELECT id FROM orders WHERE next_run_at IS NOT NULL AND next_run_at <= $1 AND owner = $2
			ORDER BY next_run_at, id LIMIT 10`, "orders_owner_due", []any{int64(1), "w"}},
		{"a worker's due orders at a step", `SELECT id FROM orders WHERE next_run_at IS NOT NULL AND next_run_at <= $1
			AND step = $2 AND owner = $3 ORDER BY next_run_at, id LIMIT 10`, "orders_owner_step", []any{int64(1), "pay", "w"}},
	}
	for _, tc := range tests {
		rows, err := conn.QueryContext(t.Context(), "EXPLAIN "+tc.query, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var plan []string
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, l)
		}
		rows.Close()
		if p := strings.Join(plan, "\n"); !strings.Contains(p, tc.index) {
			t.Errorf("%s: plan does not use %s:\n%s", tc.name, tc.index, p)
		}
	}
}
