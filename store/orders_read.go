package store

// Reads: one order, the due orders of a step, the next due time and the stats.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/internal/orderstate"
	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// Get returns the order stored under outOrderID.
func (s *SQLite) Get(ctx context.Context, outOrderID string) (Order, error) {
	o, err := getOrder(ctx, s.r, outOrderID)
	if err != nil {
		return Order{}, fmt.Errorf("get order %s: %w", outOrderID, err)
	}
	return o, nil
}

func getOrder(ctx context.Context, q sqlx.QueryerContext, outOrderID string) (Order, error) {
	var r OrderRow
	err := sqlx.GetContext(ctx, q, &r, selectOrder+"WHERE out_order_id = ?", outOrderID)
	if errors.Is(err, sql.ErrNoRows) {
		return Order{}, ErrNotFound
	}
	if err != nil {
		return Order{}, err
	}
	return r.Stored(), nil
}

// Due returns up to limit scheduled orders with NextRunAt <= now, soonest
// first (ties by insertion), skipping those exclude reports; one indexed
// read per step, merged (sqlcommon.DueBySteps).
func (s *SQLite) Due(ctx context.Context, now time.Time, limit int, steps []orderstate.Step, exclude func(outOrderID string) bool) ([]Order, error) {
	return sqlcommon.DueBySteps(limit, steps, func(o Order) time.Time { return o.NextRunAt }, func(step string) ([]Order, error) {
		return s.dueAt(ctx, now, limit, step, exclude)
	})
}

// dueAt is Due for one step, or for any step when step is "": the keys
// first, through the due index (sqlcommon.DueIDs), then whole rows only
// for the orders it returns.
func (s *SQLite) dueAt(ctx context.Context, now time.Time, limit int, step string, exclude func(outOrderID string) bool) ([]Order, error) {
	q := `SELECT id, out_order_id, next_run_at FROM orders
		WHERE next_run_at IS NOT NULL AND next_run_at <= ? AND (next_run_at, id) > (?, ?) `
	if step != "" {
		q += `AND step = ? `
	}
	q += `ORDER BY next_run_at, id LIMIT ?`
	ids, err := sqlcommon.DueIDs(limit, exclude, func(afterAt, afterID int64, n int) ([]sqlcommon.DueKey, error) {
		args := []any{now.UnixMilli(), afterAt, afterID}
		if step != "" {
			args = append(args, step)
		}
		var keys []sqlcommon.DueKey
		err := s.r.SelectContext(ctx, &keys, q, append(args, n)...)
		return keys, err
	})
	if err != nil {
		return nil, fmt.Errorf("due orders: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("due orders: %w", err)
	}
	var rows []OrderRow
	// A row that moved on between the two reads (or was pruned) is left
	// out: what Due returns is due.
	if err := s.r.SelectContext(ctx, &rows, selectOrder+`WHERE id IN (SELECT value FROM json_each(?))
		AND next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at, id`, string(list), now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("due orders: %w", err)
	}
	return Orders(rows), nil
}

// NextDue returns the earliest NextRunAt of any scheduled order at one of
// steps (any step when steps is empty). One indexed MIN per step, as in Due.
func (s *SQLite) NextDue(ctx context.Context, steps []orderstate.Step) (time.Time, bool, error) {
	return sqlcommon.NextDue(steps, func(step string) (sql.NullInt64, error) {
		q, args := "SELECT MIN(next_run_at) FROM orders WHERE next_run_at IS NOT NULL", []any{}
		if step != "" {
			q, args = "SELECT MIN(next_run_at) FROM orders WHERE step = ? AND next_run_at IS NOT NULL", []any{step}
		}
		var at sql.NullInt64
		if err := s.r.GetContext(ctx, &at, q, args...); err != nil {
			return at, fmt.Errorf("next due order: %w", err)
		}
		return at, nil
	})
}

// Stats counts orders by state, scheduled orders by step and the outbox,
// all from one read snapshot.
func (s *SQLite) Stats(ctx context.Context) (Stats, error) {
	tx, err := s.r.BeginTxx(ctx, nil)
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	defer tx.Rollback()
	c, err := sqlcommon.ReadCounts(ctx, tx)
	if err != nil {
		return Stats{}, err
	}
	return Stats(c), nil
}
