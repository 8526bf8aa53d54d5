package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coinsaga/coinsaga/store"
)

// withHistory wraps write, a statement with nargs parameters that writes
// one order row and returns its id first (INSERT or UPDATE ... RETURNING
// id, ...), so that the same statement appends lines as that order's
// history at version, numbered from 0: one round trip for the order and
// its history instead of two. When write touches no row (a duplicate, a
// stale version), no line is written and the statement returns no row. A
// zero At is stamped with the commit's time.
func withHistory(write string, nargs int, version int64, lines []store.HistoryEntry, now time.Time) (string, []any) {
	if len(lines) == 0 {
		return write, nil
	}
	const cols = 9
	var (
		values []string
		args   = make([]any, 0, cols*len(lines))
	)
	for i, h := range lines {
		at := h.At
		if at.IsZero() {
			at = now
		}
		// VALUES in a SELECT takes no type from the target table: cast.
		n := nargs + 1 + i*cols
		values = append(values, fmt.Sprintf("($%d::bigint, $%d::bigint, $%d::bigint, $%d::text, $%d::text, $%d::bigint, $%d::text, $%d::text, $%d::text)",
			n, n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8))
		args = append(args, version, i, at.UnixMilli(), text(string(h.State)), text(string(h.Step)), h.Attempt,
			text(h.ErrorCode), text(h.Error), text(h.Detail))
	}
	return `WITH w AS (` + write + `), h AS (
		INSERT INTO history (order_id, version, line, at, state, step, attempt, error_code, error, detail)
		SELECT w.id, v.* FROM w, (VALUES ` + strings.Join(values, ", ") + `)
			AS v (version, line, at, state, step, attempt, error_code, error, detail))
		SELECT * FROM w`, args
}

// History returns the order's history, oldest first; ErrNotFound if there
// is no such order.
func (s *Store) History(ctx context.Context, outOrderID string) ([]store.HistoryEntry, error) {
	var rows []store.HistoryRow
	err := s.db.SelectContext(ctx, &rows, `SELECT h.at, h.state, h.step, h.attempt, h.error_code, h.error, h.detail
		FROM history h JOIN orders o ON o.id = h.order_id
		WHERE o.out_order_id = $1 ORDER BY h.version, h.line`, outOrderID)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", outOrderID, err)
	}
	if len(rows) == 0 {
		// Every stored order has at least its accept line, so no lines
		// means no order; the check tells it apart from a read error.
		if _, err := s.Get(ctx, outOrderID); err != nil {
			return nil, fmt.Errorf("history of %s: %w", outOrderID, err)
		}
		return []store.HistoryEntry{}, nil
	}
	return store.Entries(rows), nil
}
