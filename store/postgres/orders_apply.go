package postgres

// Apply: one transition of a stored order, fenced by version (and owner).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// Apply writes t.To over t.From if the stored Version is still
// t.From.Version, with its history and outbox, in one group commit; it
// returns the order as stored. ErrStale if the order moved, ErrNotFound if
// it is gone; either way nothing of the transition is written.
func (s *Store) Apply(ctx context.Context, t store.Transition) (store.Order, error) {
	id := t.From.OutOrderID
	if id == "" {
		return store.Order{}, errors.New("apply: empty out_order_id")
	}
	if t.To.OutOrderID != "" && t.To.OutOrderID != id {
		return store.Order{}, fmt.Errorf("apply %s: transition would rename the order to %s", id, t.To.OutOrderID)
	}
	me, err := s.writer()
	if err != nil {
		return store.Order{}, fmt.Errorf("apply %s: %w", id, err)
	}
	var (
		result  store.Order
		outcome error
	)
	run := func(ctx context.Context, tx *sqlx.Tx, now time.Time) ([]store.Message, error) {
		result, outcome = store.Order{}, nil
		o := t.To
		o.OutOrderID = id
		o.Version = t.From.Version + 1
		o.UpdatedAt = now
		var f struct {
			ID            int64  `db:"id"`
			CreatedAt     int64  `db:"created_at"`
			Intent        []byte `db:"intent"`
			IntentSubject string `db:"intent_subject"`
			BodyHash      string `db:"body_hash"`
		}
		args := append(updateArgs(o), id, t.From.Version)
		update := updateOrder
		if me != "" {
			args, update = append(args, me), updateOwned
		}
		q, hargs := withHistory(update, len(args), o.Version, t.History, now)
		err := tx.QueryRowxContext(ctx, q, append(args, hargs...)...).StructScan(&f)
		if errors.Is(err, sql.ErrNoRows) {
			outcome, err = whyRefused(ctx, tx, id, t.From.Version, me)
			if err != nil {
				return nil, fmt.Errorf("apply %s: %w", id, err)
			}
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("apply %s: update: %w", id, err)
		}
		o.CreatedAt, o.Intent, o.IntentSubject, o.BodyHash = sqlcommon.FromMs(f.CreatedAt), f.Intent, f.IntentSubject, f.BodyHash
		result = stored(o)
		return t.Outbox, nil
	}
	lost := func() { result, outcome = store.Order{}, store.ErrLeaseLost }
	if err := s.submit(ctx, []op{{key: id, run: run, owner: me, lost: lost}}); err != nil {
		return store.Order{}, err
	}
	if outcome != nil {
		return store.Order{}, fmt.Errorf("apply %s at version %d: %w", id, t.From.Version, outcome)
	}
	return result, nil
}

// whyRefused tells why the update of order id at version matched no row:
// it is gone (ErrNotFound), the worker's lease is not live (ErrLeaseLost),
// the order is not the worker's (ErrNotOwner) or it moved (ErrStale). The
// lease comes first: a worker that lost it must stop everything, not only
// this order.
func whyRefused(ctx context.Context, tx *sqlx.Tx, id string, version int64, me string) (error, error) {
	var r struct {
		Version int64          `db:"version"`
		Owner   sql.NullString `db:"owner"`
		Live    bool           `db:"live"`
	}
	err := tx.GetContext(ctx, &r, `SELECT version, owner,
		EXISTS (SELECT 1 FROM workers WHERE id = $2 AND expires_at > clock_timestamp()) AS live
		FROM orders WHERE out_order_id = $1`, id, me)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound, nil
	case err != nil:
		return nil, err
	case me != "" && !r.Live:
		return store.ErrLeaseLost, nil
	case me != "" && r.Owner.String != me:
		return store.ErrNotOwner, nil
	default:
		return store.ErrStale, nil
	}
}
