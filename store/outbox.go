package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

func insertOutbox(ctx context.Context, tx *sqlx.Tx, msgs []Message, now time.Time) error {
	for _, m := range msgs {
		header, err := HeaderColumn(m)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO outbox (subject, msg_id, header, data, created_at) VALUES (?, ?, ?, ?, ?)`,
			m.Subject, m.MsgID, header, m.Data, now.UnixMilli()); err != nil {
			return fmt.Errorf("outbox %s: insert: %w", m.MsgID, err)
		}
	}
	return nil
}

// PendingOutbox returns up to limit messages above after in the order
// they were written, which is the order their changes committed: the
// single writer assigns ids in its transactions, one after the other.
func (s *SQLite) PendingOutbox(ctx context.Context, after int64, limit int) ([]Message, error) {
	return PendingOutbox(ctx, s.r, after, limit)
}

// DeleteOutbox removes published messages; ids already gone are ignored
// (a relay may retry a delete).
func (s *SQLite) DeleteOutbox(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	// One statement with the ids as a JSON array: the same SQL text for any
	// count, so it stays in the statement cache.
	list, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("delete outbox: %w", err)
	}
	return s.submit(ctx, func(ctx context.Context, tx *sqlx.Tx, _ time.Time) error {
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))`, string(list)); err != nil {
			return fmt.Errorf("delete %d outbox messages: %w", len(ids), err)
		}
		return nil
	})
}
