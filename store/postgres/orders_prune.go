package postgres

// Retention: deleting terminal orders past their cutoff.

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// PruneTerminal deletes up to limit terminal, unscheduled orders last
// updated before cutoff, with their history (ON DELETE CASCADE). Rows
// another handle holds are skipped, not waited for: a prune on one worker
// never stalls another's step, and the next prune takes them.
func (s *Store) PruneTerminal(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	if s.closed() {
		return 0, store.ErrClosed
	}
	q := `DELETE FROM orders WHERE id IN (
		SELECT id FROM orders
		WHERE next_run_at IS NULL AND updated_at < $1
		AND state IN (` + sqlcommon.TerminalStatesIn + `)
		ORDER BY updated_at LIMIT $2
		FOR UPDATE SKIP LOCKED)`
	var n int64
	err := s.withRetry(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, q, cutoff.UnixMilli(), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune terminal orders: %w", err)
	}
	return int(n), nil
}
