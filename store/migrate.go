package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// Migrations are numbered files, NNNN_what.sql, applied in number order,
// each in its own transaction with its row in schema_migrations, so a
// crash mid-migration leaves the schema at the previous version. A file
// once released is never edited: change the schema with a new file.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one numbered schema file.
type Migration struct {
	Version int
	Name    string // the file name, NNNN_what.sql
	SQL     string
}

// LoadMigrations reads the migrations in fsys's migrations directory,
// checks their names and returns them in version order. Every store keeps
// its own schema files under the same rules (see migrationFS).
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []Migration
	seen := map[int]string{}
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", base)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, base, v)
		}
		seen[v] = base
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", base, err)
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// migrate brings the schema up to date. It is safe to run on every open:
// applied versions are skipped.
func migrate(ctx context.Context, db *sqlx.DB, now func() time.Time, log *slog.Logger) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	return ApplyMigrations(ctx, db, migrationFS, nil, now, log)
}

// ApplyMigrations applies the migrations in fsys (LoadMigrations) that
// schema_migrations does not record yet, in version order, each in a
// transaction of its own that prepare, when not nil, begins with
// (sqlcommon.ApplyMigration). Both SQL stores migrate through it; only
// their schema files and what prepare does differ.
func ApplyMigrations(ctx context.Context, db *sqlx.DB, fsys fs.FS, prepare func(context.Context, *sqlx.Tx) error, now func() time.Time, log *slog.Logger) error {
	ms, err := LoadMigrations(fsys)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := sqlcommon.ApplyMigration(ctx, db, m.Version, m.Name, m.SQL, prepare, now, log); err != nil {
			return err
		}
	}
	return nil
}
