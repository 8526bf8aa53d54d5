package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

const insertHistoryColumns = `INSERT INTO history
	(order_id, version, line, at, state, step, attempt, error_code, error, detail) `

// insertHistory appends line number line of the version of the order
// whose row id is orderID. A zero At is stamped with the commit's time.
func insertHistory(ctx context.Context, tx *sqlx.Tx, orderID, version int64, line int, h HistoryEntry, now time.Time) error {
	args := append([]any{orderID}, historyValues(version, line, h, now)...)
	if _, err := tx.ExecContext(ctx, insertHistoryColumns+`VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...); err != nil {
		return fmt.Errorf("insert history: %w", err)
	}
	return nil
}

// insertHistoryOf is insertHistory for the order stored under outOrderID,
// whose row id the statement looks up itself (see the write statements
// in orders.go).
func insertHistoryOf(ctx context.Context, tx *sqlx.Tx, outOrderID string, version int64, line int, h HistoryEntry, now time.Time) error {
	args := append(historyValues(version, line, h, now), outOrderID)
	if _, err := tx.ExecContext(ctx, insertHistoryColumns+
		`SELECT id, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM orders WHERE out_order_id = ?`, args...); err != nil {
		return fmt.Errorf("insert history: %w", err)
	}
	return nil
}

func historyValues(version int64, line int, h HistoryEntry, now time.Time) []any {
	at := h.At
	if at.IsZero() {
		at = now
	}
	return []any{version, line, at.UnixMilli(), string(h.State), string(h.Step), h.Attempt, h.ErrorCode, h.Error, h.Detail}
}

// History returns the order's history, oldest first; ErrNotFound if there
// is no such order.
func (s *SQLite) History(ctx context.Context, outOrderID string) ([]HistoryEntry, error) {
	var rows []HistoryRow
	err := s.r.SelectContext(ctx, &rows, `SELECT h.at, h.state, h.step, h.attempt, h.error_code, h.error, h.detail
		FROM history h JOIN orders o ON o.id = h.order_id
		WHERE o.out_order_id = ? ORDER BY h.version, h.line`, outOrderID)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", outOrderID, err)
	}
	if len(rows) == 0 {
		// Every stored order has at least its accept line, so no lines
		// means no order; the check tells it apart from a read error.
		if _, err := s.Get(ctx, outOrderID); err != nil {
			return nil, fmt.Errorf("history of %s: %w", outOrderID, err)
		}
		return []HistoryEntry{}, nil
	}
	return Entries(rows), nil
}
