package store

// Apply: one transition of a stored order, checked against its version.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// Apply writes t.To over t.From if the stored Version is still
// t.From.Version, with its history line and outbox messages, in one group
// commit. It returns the order as stored: Version From.Version+1, UpdatedAt
// now, times at millisecond precision, and the fields fixed at accept
// (CreatedAt, Intent, IntentSubject, BodyHash) as they were, whatever To
// says. ErrStale if the order moved; ErrNotFound if it no longer exists
// (pruned). Either way nothing of the transition is written.
func (s *SQLite) Apply(ctx context.Context, t Transition) (Order, error) {
	if s.leaseGone() {
		return Order{}, fmt.Errorf("apply %s: %w", t.From.OutOrderID, ErrLeaseLost)
	}
	run, result, err := applyRun(t)
	if err != nil {
		return Order{}, err
	}
	if err := s.submit(ctx, run); err != nil {
		return Order{}, err
	}
	return result()
}

func applyRun(t Transition) (runFunc, func() (Order, error), error) {
	id := t.From.OutOrderID
	if id == "" {
		return nil, nil, errors.New("apply: empty out_order_id")
	}
	if t.To.OutOrderID != "" && t.To.OutOrderID != id {
		return nil, nil, fmt.Errorf("apply %s: transition would rename the order to %s", id, t.To.OutOrderID)
	}
	var (
		stored  Order
		outcome error
	)
	run := func(ctx context.Context, tx *sqlx.Tx, now time.Time) error {
		stored, outcome = Order{}, nil
		o := t.To
		o.OutOrderID = id
		o.Version = t.From.Version + 1
		o.UpdatedAt = now
		args := append(updateArgs(o), id, t.From.Version)
		res, err := tx.ExecContext(ctx, updateOrder, args...)
		if err != nil {
			return fmt.Errorf("apply %s: update: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("apply %s: update: %w", id, err)
		} else if n == 0 {
			// Nothing matched: this request writes nothing more, the
			// others in the batch go on.
			outcome = ErrStale
			var one int
			if err := tx.GetContext(ctx, &one, "SELECT 1 FROM orders WHERE out_order_id = ?", id); errors.Is(err, sql.ErrNoRows) {
				outcome = ErrNotFound
			} else if err != nil {
				return fmt.Errorf("apply %s: %w", id, err)
			}
			return nil
		}
		for line, h := range t.History {
			if err := insertHistoryOf(ctx, tx, id, o.Version, line, h, now); err != nil {
				return fmt.Errorf("apply %s: %w", id, err)
			}
		}
		if err := insertOutbox(ctx, tx, t.Outbox, now); err != nil {
			return fmt.Errorf("apply %s: %w", id, err)
		}
		frozen, err := frozenOf(ctx, tx, t.From)
		if err != nil {
			return fmt.Errorf("apply %s: %w", id, err)
		}
		o.CreatedAt, o.Intent, o.IntentSubject, o.BodyHash = sqlcommon.FromMs(frozen.CreatedAt), frozen.Intent, frozen.IntentSubject, frozen.BodyHash
		stored = AsStored(o, nil)
		return nil
	}
	result := func() (Order, error) {
		if outcome != nil {
			return Order{}, fmt.Errorf("apply %s at version %d: %w", id, t.From.Version, outcome)
		}
		return stored, nil
	}
	return run, result, nil
}

// frozenRow holds the columns Apply never writes (frozenFields).
type frozenRow struct {
	CreatedAt     int64  `db:"created_at"`
	Intent        []byte `db:"intent"`
	IntentSubject string `db:"intent_subject"`
	BodyHash      string `db:"body_hash"`
}

// frozenOf returns the columns fixed at accept of the order from, just
// updated at from.Version. They never change after the insert, so a from
// as read (from Get, Due or an earlier Apply, or the order given to
// Accept) carries them already and the version the update matched vouches
// for them; only a from without them is read back.
func frozenOf(ctx context.Context, tx *sqlx.Tx, from Order) (frozenRow, error) {
	if from.Intent != nil && from.IntentSubject != "" && from.BodyHash != "" && !from.CreatedAt.IsZero() {
		return frozenRow{CreatedAt: from.CreatedAt.UnixMilli(), Intent: from.Intent,
			IntentSubject: from.IntentSubject, BodyHash: from.BodyHash}, nil
	}
	var f frozenRow
	if err := tx.GetContext(ctx, &f, selectFrozen, from.OutOrderID); err != nil {
		return frozenRow{}, fmt.Errorf("read fields fixed at accept: %w", err)
	}
	return f, nil
}
