package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store"
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
	return store.ApplyMigrations(ctx, db, migrationFS, prepareMigration, now, log)
}

// prepareMigration serializes the migrations of every handle on one
// database and makes sure the table that records them exists.
func prepareMigration(ctx context.Context, tx *sqlx.Tx) error {
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLock); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at BIGINT  NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	return nil
}
