package pgtest_test

import (
	"database/sql"
	"os"
	"testing"

	"github.com/coinsaga/coinsaga/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestEachTestGetsItsOwnEmptyDatabase(t *testing.T) {
	t.Parallel()
	urls := []string{pgtest.DB(t), pgtest.DB(t)}
	if urls[0] == urls[1] {
		t.Fatalf("two calls returned the same database %s", urls[0])
	}
	t.Logf("databases %v", urls)
	for i, u := range urls {
		db, err := sql.Open("pgx", u)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(t.Context(), "CREATE TABLE mine (n INT)"); err != nil {
			t.Fatalf("database %d (%s): %v", i, u, err)
		}
		var tables int
		if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 1 {
			t.Errorf("database %d has %d tables after creating one: not empty at start", i, tables)
		}
	}
}

func TestTheServerRunsWithoutFsync(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("pgx", pgtest.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var fsync string
	if err := db.QueryRowContext(t.Context(), "SHOW fsync").Scan(&fsync); err != nil {
		t.Fatal(err)
	}
	if fsync != "off" && pgtestOwnServer() {
		t.Errorf("fsync = %s, want off on the throwaway server", fsync)
	}
}

func pgtestOwnServer() bool { return os.Getenv(pgtest.EnvURL) == "" }
