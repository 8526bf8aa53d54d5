package store

// Retention: deleting terminal orders past their cutoff.

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// PruneTerminal deletes up to limit terminal, unscheduled orders last
// updated before cutoff; their history goes with them (ON DELETE CASCADE).
// The unary + keeps the state check a filter, so that the search runs on
// orders_finished (old first) and not over every order of those states.
func (s *SQLite) PruneTerminal(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	q := `DELETE FROM orders WHERE id IN (
		SELECT id FROM orders
		WHERE +state IN (` + sqlcommon.TerminalStatesIn + `)
		AND next_run_at IS NULL AND updated_at < ?
		LIMIT ?)`
	var n int64
	err := s.submit(ctx, func(ctx context.Context, tx *sqlx.Tx, _ time.Time) error {
		res, err := tx.ExecContext(ctx, q, cutoff.UnixMilli(), limit)
		if err != nil {
			return fmt.Errorf("prune terminal orders: %w", err)
		}
		// changes() counts the orders only, not the cascaded history.
		n, err = res.RowsAffected()
		if err != nil {
			return fmt.Errorf("prune terminal orders: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}
