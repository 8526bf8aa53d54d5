package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store"
)

type historyRow struct {
	At        int64  `db:"at"`
	State     string `db:"state"`
	Step      string `db:"step"`
	Attempt   int    `db:"attempt"`
	ErrorCode string `db:"error_code"`
	Error     string `db:"error"`
	Detail    string `db:"detail"`
}

// insertHistory appends the lines of one version of the order whose row
// id is orderID, numbered from 0, in one statement. A zero At is stamped
// with the commit's time.
func insertHistory(ctx context.Context, tx *sqlx.Tx, orderID, version int64, lines []store.HistoryEntry, now time.Time) error {
	if len(lines) == 0 {
		return nil
	}
	const cols = 10
	var (
		values []string
		args   = make([]any, 0, cols*len(lines))
	)
	for i, h := range lines {
		at := h.At
		if at.IsZero() {
			at = now
		}
		values = append(values, "("+placeholders(1+i*cols, cols)+")")
		args = append(args, orderID, version, i, at.UnixMilli(), text(h.State), text(h.Step), h.Attempt,
			text(h.ErrorCode), text(h.Error), text(h.Detail))
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO history
		(order_id, version, line, at, state, step, attempt, error_code, error, detail) VALUES `+
		strings.Join(values, ", "), args...); err != nil {
		return fmt.Errorf("insert history: %w", err)
	}
	return nil
}

// History returns the order's history, oldest first; ErrNotFound if there
// is no such order.
func (s *Store) History(ctx context.Context, outOrderID string) ([]store.HistoryEntry, error) {
	var rows []historyRow
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
	out := make([]store.HistoryEntry, len(rows))
	for i, r := range rows {
		out[i] = store.HistoryEntry{
			At: fromMs(r.At), State: r.State, Step: r.Step, Attempt: r.Attempt,
			ErrorCode: r.ErrorCode, Error: r.Error, Detail: r.Detail,
		}
	}
	return out, nil
}
