package sqlcommon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
)

// ApplyMigration runs migration version (name, body) in tx unless
// schema_migrations records it, records it, and commits tx; an applied
// version rolls tx back. The caller begins tx (and takes any lock its
// database needs) and rolls it back on an error.
func ApplyMigration(ctx context.Context, tx *sqlx.Tx, version int, name, body string, now func() time.Time, log *slog.Logger) error {
	var n int
	if err := tx.GetContext(ctx, &n, tx.Rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version); err != nil {
		return fmt.Errorf("migration %s: check: %w", name, err)
	}
	if n > 0 {
		return tx.Rollback()
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return fmt.Errorf("migration %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
		version, name, now().UnixMilli()); err != nil {
		return fmt.Errorf("migration %s: record: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: commit: %w", name, err)
	}
	log.Info("store migration applied", "version", version, "name", name)
	return nil
}
