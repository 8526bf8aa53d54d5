package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store"
)

// Outbox ids in commit order.
//
// store.Store promises that outbox ids grow in commit order: once a reader
// saw message N, no message below N can appear, so the relay keeps a
// cursor (worker/relay.go reads PendingOutbox(after, limit)). A plain
// PostgreSQL sequence breaks that as soon as two transactions write at
// once: A takes id 5, B takes id 6 and commits, the relay publishes 6 and
// moves its cursor past 5, then A commits 5, which no read above 6 ever
// returns. The message is lost.
//
// So every transaction that writes outbox rows first takes outboxLock, a
// transaction-scoped advisory lock that PostgreSQL releases only after the
// commit is visible, and draws its ids while holding it: ids are then
// handed out one committing transaction after the other, and a reader that
// sees id N sees every id below N that will ever commit. The alternatives
// weighed:
//
//   - Returning only ids below the oldest id still in flight needs every
//     writer to publish "I hold ids from X" somewhere readers see before
//     it commits, which is this lock with more moving parts.
//   - Ordering by transaction id against pg_snapshot_xmin is safe only
//     with a cursor on (xid, id), which the Store interface does not have.
//   - Claiming rows with FOR UPDATE SKIP LOCKED needs no cursor and no
//     lock: that is RelayOutbox (shared.go). The lock stays while a relay
//     reads PendingOutbox with a cursor.
//
// The cost is that outbox-writing commits of all handles on one database
// pass one at a time through the last statement and the commit. The lock
// is taken after the batch's order rows (runBatch inserts the outbox
// last), so its holder waits for nothing but its own commit, and a group
// commit shares one pass between all the writes of its batch.
func insertOutbox(ctx context.Context, tx *sqlx.Tx, msgs []ownedMessage, now time.Time) error {
	if len(msgs) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", outboxLock); err != nil {
		return fmt.Errorf("outbox: lock: %w", err)
	}
	// One multi-row INSERT per chunk assigns the ids in VALUES order, so
	// the messages of a batch keep the order they were given in; chunks
	// stay under PostgreSQL's 65,535 parameters a statement.
	for len(msgs) > 0 {
		n := min(len(msgs), outboxChunk)
		if err := insertOutboxRows(ctx, tx, msgs[:n], now); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

const outboxChunk = 1000

// ownedMessage is an outbox row with the worker whose relay publishes it
// ("" for none).
type ownedMessage struct {
	store.Message
	owner string
}

func insertOutboxRows(ctx context.Context, tx *sqlx.Tx, msgs []ownedMessage, now time.Time) error {
	const cols = 6
	var (
		values []string
		args   = make([]any, 0, cols*len(msgs))
	)
	for i, m := range msgs {
		header, err := store.HeaderColumn(m.Message)
		if err != nil {
			return err
		}
		values = append(values, "("+placeholders(1+i*cols, cols)+")")
		args = append(args, text(m.Subject), text(m.MsgID), header, m.Data, now.UnixMilli(), nullText(m.owner))
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (subject, msg_id, header, data, created_at, owner) VALUES `+
		strings.Join(values, ", "), args...); err != nil {
		return fmt.Errorf("outbox: insert %d messages: %w", len(msgs), err)
	}
	return nil
}

// PendingOutbox returns up to limit messages above after, in id order,
// which is commit order (see insertOutbox).
func (s *Store) PendingOutbox(ctx context.Context, after int64, limit int) ([]store.Message, error) {
	return store.PendingOutbox(ctx, s.db, after, limit)
}

// DeleteOutbox removes published messages; ids already gone are ignored
// (a relay may retry a delete).
func (s *Store) DeleteOutbox(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if s.closed() {
		return store.ErrClosed
	}
	if err := s.withRetry(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids)
		return err
	}); err != nil {
		return fmt.Errorf("delete %d outbox messages: %w", len(ids), err)
	}
	return nil
}
