package postgres

// Accept: new orders with their history and outbox, one group commit.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store"
)

// Accept records each new order with its history and outbox in one group
// commit, with the SQLite store's semantics: Version 1, UpdatedAt now,
// CreatedAt now when zero; an out_order_id already stored (by another
// handle too, or an earlier request of the same call) writes nothing and
// reports the stored order. When another handle is inserting the same
// out_order_id at that moment, the insert waits for it and then reports
// its order.
func (s *Store) Accept(ctx context.Context, reqs []store.Accept) ([]store.AcceptResult, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	me, err := s.writer()
	if err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	res := make([]store.AcceptResult, len(reqs))
	lost := make([]bool, len(reqs))
	ops := make([]op, len(reqs))
	for i := range reqs {
		a := reqs[i]
		if a.Order.OutOrderID == "" {
			return nil, fmt.Errorf("accept request %d: empty out_order_id", i)
		}
		ops[i] = op{key: a.Order.OutOrderID, owner: me, lost: func() { res[i], lost[i] = store.AcceptResult{}, true },
			run: func(ctx context.Context, tx *sqlx.Tx, now time.Time) ([]store.Message, error) {
				r, msgs, err := acceptTx(ctx, tx, a, me, now)
				if err != nil {
					return nil, fmt.Errorf("accept %s: %w", a.Order.OutOrderID, err)
				}
				res[i], lost[i] = r, false
				return msgs, nil
			}}
	}
	if err := s.submit(ctx, ops); err != nil {
		return nil, err
	}
	for i, l := range lost {
		if l {
			// One lease check covers the whole transaction, so none of
			// this call's orders was written.
			return nil, fmt.Errorf("accept %s: worker %s: %w", reqs[i].Order.OutOrderID, me, store.ErrLeaseLost)
		}
	}
	return res, nil
}

func acceptTx(ctx context.Context, tx *sqlx.Tx, a store.Accept, owner string, now time.Time) (store.AcceptResult, []store.Message, error) {
	o := a.Order
	o.Version = 1
	o.UpdatedAt = now
	if o.CreatedAt.IsZero() {
		o.CreatedAt = now
	}
	args := append(orderArgs(o), nullText(owner))
	q, hargs := withHistory(insertOrder, len(args), o.Version, []store.HistoryEntry{a.History}, now)
	var id int64
	err := tx.QueryRowContext(ctx, q, append(args, hargs...)...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		existing, err := getOrder(ctx, tx, o.OutOrderID)
		if err != nil {
			return store.AcceptResult{}, nil, fmt.Errorf("read existing: %w", err)
		}
		return store.AcceptResult{Existing: existing}, nil, nil
	}
	if err != nil {
		return store.AcceptResult{}, nil, fmt.Errorf("insert order: %w", err)
	}
	return store.AcceptResult{Created: true}, a.Outbox, nil
}
