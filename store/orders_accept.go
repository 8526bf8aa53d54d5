package store

// Accept: new orders with their history and outbox, one group commit.

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Accept records each new order with its history and outbox in one group
// commit. A new order gets Version 1 and UpdatedAt now (CreatedAt too
// when the caller left it zero). An out_order_id already stored, also by an
// earlier request of the same call or batch, writes nothing and reports
// the stored order.
func (s *SQLite) Accept(ctx context.Context, reqs []Accept) ([]AcceptResult, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	if s.leaseGone() {
		return nil, fmt.Errorf("accept: %w", ErrLeaseLost)
	}
	run, result, err := acceptRun(reqs)
	if err != nil {
		return nil, err
	}
	if err := s.submit(ctx, run); err != nil {
		return nil, err
	}
	return result(), nil
}

// runFunc is one write request's work inside a group commit transaction.
type runFunc func(ctx context.Context, tx *sqlx.Tx, now time.Time) error

// acceptRun validates reqs and returns the work for the committer and the
// reader of its outcome, to be called once the transaction committed.
func acceptRun(reqs []Accept) (runFunc, func() []AcceptResult, error) {
	for i := range reqs {
		if reqs[i].Order.OutOrderID == "" {
			return nil, nil, fmt.Errorf("accept request %d: empty out_order_id", i)
		}
	}
	var res []AcceptResult
	run := func(ctx context.Context, tx *sqlx.Tx, now time.Time) error {
		res = make([]AcceptResult, len(reqs))
		for i, a := range reqs {
			r, err := acceptTx(ctx, tx, a, now)
			if err != nil {
				return fmt.Errorf("accept %s: %w", a.Order.OutOrderID, err)
			}
			res[i] = r
		}
		return nil
	}
	return run, func() []AcceptResult { return res }, nil
}

func acceptTx(ctx context.Context, tx *sqlx.Tx, a Accept, now time.Time) (AcceptResult, error) {
	o := a.Order
	o.Version = 1
	o.UpdatedAt = now
	if o.CreatedAt.IsZero() {
		o.CreatedAt = now
	}
	res, err := tx.ExecContext(ctx, insertOrder, orderArgs(o)...)
	if err != nil {
		return AcceptResult{}, fmt.Errorf("insert order: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return AcceptResult{}, fmt.Errorf("insert order: %w", err)
	} else if n == 0 {
		existing, err := getOrder(ctx, tx, o.OutOrderID)
		if err != nil {
			return AcceptResult{}, fmt.Errorf("read existing: %w", err)
		}
		return AcceptResult{Existing: existing}, nil
	}
	id, err := res.LastInsertId()
	if err != nil {
		return AcceptResult{}, fmt.Errorf("insert order: %w", err)
	}
	if err := insertHistory(ctx, tx, id, o.Version, 0, a.History, now); err != nil {
		return AcceptResult{}, err
	}
	if err := insertOutbox(ctx, tx, a.Outbox, now); err != nil {
		return AcceptResult{}, err
	}
	return AcceptResult{Created: true}, nil
}
