package postgres

// Reads: one order, the due orders of a step, the next due time and the stats.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/internal/orderstate"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// Get returns the order stored under outOrderID.
func (s *Store) Get(ctx context.Context, outOrderID string) (store.Order, error) {
	o, err := getOrder(ctx, s.db, outOrderID)
	if err != nil {
		return store.Order{}, fmt.Errorf("get order %s: %w", outOrderID, err)
	}
	return o, nil
}

func getOrder(ctx context.Context, q sqlx.QueryerContext, outOrderID string) (store.Order, error) {
	var r store.OrderRow
	err := sqlx.GetContext(ctx, q, &r, selectOrder+"WHERE out_order_id = $1", outOrderID)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Order{}, store.ErrNotFound
	}
	if err != nil {
		return store.Order{}, err
	}
	return r.Stored(), nil
}

// Due returns up to limit scheduled orders with NextRunAt <= now, soonest
// first, skipping those exclude reports; one indexed read per step,
// merged, as in the SQLite store (sqlcommon.DueBySteps).
func (s *Store) Due(ctx context.Context, now time.Time, limit int, steps []orderstate.Step, exclude func(outOrderID string) bool) ([]store.Order, error) {
	return sqlcommon.DueBySteps(limit, steps, func(o store.Order) time.Time { return o.NextRunAt }, func(step string) ([]store.Order, error) {
		return s.dueAt(ctx, now, limit, step, exclude)
	})
}

// dueAt pages through the keys of due orders (sqlcommon.DueIDs) and reads
// whole rows only for those it returns, as in the SQLite store. The time
// is a parameter, never the server's clock: the one injected clock
// decides, and the planner uses the index for a parameter.
func (s *Store) dueAt(ctx context.Context, now time.Time, limit int, step string, exclude func(outOrderID string) bool) ([]store.Order, error) {
	q := `SELECT id, out_order_id, next_run_at FROM orders
		WHERE next_run_at IS NOT NULL AND next_run_at <= $1 AND (next_run_at, id) > ($2, $3) `
	extra := []any{}
	if step != "" {
		extra = append(extra, step)
		q += fmt.Sprintf(`AND step = $%d `, 4+len(extra))
	}
	// A worker's Due is its own orders; orders without an owner come by
	// Claim.
	me := s.worker()
	if me != "" {
		extra = append(extra, me)
		q += fmt.Sprintf(`AND owner = $%d `, 4+len(extra))
	}
	q += `ORDER BY next_run_at, id LIMIT $4`
	ids, err := sqlcommon.DueIDs(limit, exclude, func(afterAt, afterID int64, n int) ([]sqlcommon.DueKey, error) {
		var keys []sqlcommon.DueKey
		err := s.db.SelectContext(ctx, &keys, q, append([]any{now.UnixMilli(), afterAt, afterID, n}, extra...)...)
		return keys, err
	})
	if err != nil {
		return nil, fmt.Errorf("due orders: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var rows []store.OrderRow
	// A row that moved on between the two reads (or was pruned) is left
	// out: what Due returns is due.
	if err := s.db.SelectContext(ctx, &rows, selectOrder+`WHERE id = ANY($1)
		AND next_run_at IS NOT NULL AND next_run_at <= $2 AND ($3 = '' OR owner = $3)
		ORDER BY next_run_at, id`, ids, now.UnixMilli(), me); err != nil {
		return nil, fmt.Errorf("due orders: %w", err)
	}
	return store.Orders(rows), nil
}

// NextDue returns the earliest NextRunAt of any scheduled order at one of
// steps (any step when steps is empty): one indexed MIN per step, of a
// worker's own orders only, as in Due.
func (s *Store) NextDue(ctx context.Context, steps []orderstate.Step) (time.Time, bool, error) {
	me := s.worker()
	return sqlcommon.NextDue(steps, func(step string) (sql.NullInt64, error) {
		q, args := "SELECT MIN(next_run_at) FROM orders WHERE next_run_at IS NOT NULL", []any{}
		if step != "" {
			q, args = "SELECT MIN(next_run_at) FROM orders WHERE step = $1 AND next_run_at IS NOT NULL", []any{step}
		}
		if me != "" {
			q, args = q+fmt.Sprintf(" AND owner = $%d", len(args)+1), append(args, me)
		}
		var at sql.NullInt64
		if err := s.db.GetContext(ctx, &at, q, args...); err != nil {
			return at, fmt.Errorf("next due order: %w", err)
		}
		return at, nil
	})
}

// Stats counts orders by state, scheduled orders by step and the outbox,
// all from one snapshot (a repeatable-read, read-only transaction).
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return store.Stats{}, fmt.Errorf("stats: %w", err)
	}
	defer tx.Rollback()
	c, err := sqlcommon.ReadCounts(ctx, tx)
	if err != nil {
		return store.Stats{}, err
	}
	return store.Stats(c), nil
}
