package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// Advisory lock keys, per database (PostgreSQL scopes them to the
// database the session is connected to).
const (
	// migrateLock serialises migrations of workers that open one database
	// at the same moment: CREATE TABLE IF NOT EXISTS is not safe against
	// itself run concurrently, and each migration must run once.
	migrateLock int64 = 0x636f696e_0001 // "coin" 1
	// outboxLock orders outbox ids by commit (outbox.go).
	outboxLock int64 = 0x636f696e_0002
)

// migrate brings the schema up to date with migrations/*.sql, under the
// same rules as the SQLite store's (store.LoadMigrations): numbered files,
// each applied once in its own transaction with its schema_migrations row.
func migrate(ctx context.Context, db *sqlx.DB, now func() time.Time, log *slog.Logger) error {
	ms, err := store.LoadMigrations(migrationFS)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := applyMigration(ctx, db, m, now, log); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sqlx.DB, m store.Migration, now func() time.Time, log *slog.Logger) (err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: begin: %w", m.Name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLock); err != nil {
		return fmt.Errorf("migration %s: lock: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at BIGINT  NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	return sqlcommon.ApplyMigration(ctx, tx, m.Version, m.Name, m.SQL, now, log)
}
