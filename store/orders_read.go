package store

// Reads: one order, the due orders of a step, the next due time and the stats.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/internal/orderstate"
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
	var r orderRow
	err := sqlx.GetContext(ctx, q, &r, selectOrder+"WHERE out_order_id = ?", outOrderID)
	if errors.Is(err, sql.ErrNoRows) {
		return Order{}, ErrNotFound
	}
	if err != nil {
		return Order{}, err
	}
	return r.order(), nil
}

// Due returns up to limit scheduled orders with NextRunAt <= now, soonest
// first (ties by insertion), skipping those exclude reports. It pages
// through the due index (keyset on next_run_at, id) rather than guessing
// how many exclude will drop, so any number of running orders cannot
// starve the ones behind them.
func (s *SQLite) Due(ctx context.Context, now time.Time, limit int, steps []orderstate.Step, exclude func(outOrderID string) bool) ([]Order, error) {
	if limit <= 0 {
		return nil, nil
	}
	if len(steps) == 0 {
		return s.dueAt(ctx, now, limit, "", exclude)
	}
	// One indexed read per step, merged: a single query over all of them
	// could walk the whole due index past the other steps' rows.
	var out []Order
	for _, step := range steps {
		got, err := s.dueAt(ctx, now, limit, string(step), exclude)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].NextRunAt.Before(out[b].NextRunAt) })
	if len(out) > limit {
		clear(out[limit:])
		out = out[:limit]
	}
	return out, nil
}

// dueAt is Due for one step, or for any step when step is "".
//
// It pages through keys first and reads whole rows only for the orders it
// returns: the running orders are the earliest due in the store (their
// rows say due until their steps commit), and a scheduler that reads due
// work hundreds of times a second would otherwise scan all their columns,
// intent included, only to drop them.
func (s *SQLite) dueAt(ctx context.Context, now time.Time, limit int, step string, exclude func(outOrderID string) bool) ([]Order, error) {
	type dueKey struct {
		ID         int64  `db:"id"`
		OutOrderID string `db:"out_order_id"`
		NextRunAt  int64  `db:"next_run_at"`
	}
	var (
		ids    []int64
		lastAt = int64(math.MinInt64)
		lastID int64
	)
	where := `WHERE next_run_at IS NOT NULL AND next_run_at <= ? AND (next_run_at, id) > (?, ?) `
	if step != "" {
		where += `AND step = ? `
	}
pages:
	for {
		// Each page starts after the last row seen, so excluded orders
		// are read once; a floor keeps pages from shrinking to a row.
		fetch := max(limit-len(ids), 32)
		args := []any{now.UnixMilli(), lastAt, lastID}
		if step != "" {
			args = append(args, step)
		}
		var keys []dueKey
		err := s.r.SelectContext(ctx, &keys, `SELECT id, out_order_id, next_run_at FROM orders `+where+`ORDER BY next_run_at, id LIMIT ?`, append(args, fetch)...)
		if err != nil {
			return nil, fmt.Errorf("due orders: %w", err)
		}
		for _, k := range keys {
			lastAt, lastID = k.NextRunAt, k.ID
			if exclude != nil && exclude(k.OutOrderID) {
				continue
			}
			ids = append(ids, k.ID)
			if len(ids) == limit {
				break pages
			}
		}
		if len(keys) < fetch {
			break
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("due orders: %w", err)
	}
	var rows []orderRow
	// A row that moved on between the two reads (or was pruned) is left
	// out: what Due returns is due.
	if err := s.r.SelectContext(ctx, &rows, selectOrder+`WHERE id IN (SELECT value FROM json_each(?))
		AND next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at, id`, string(list), now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("due orders: %w", err)
	}
	out := make([]Order, len(rows))
	for i, r := range rows {
		out[i] = r.order()
	}
	return out, nil
}

// NextDue returns the earliest NextRunAt of any scheduled order at one of
// steps (any step when steps is empty). One indexed MIN per step, as in Due.
func (s *SQLite) NextDue(ctx context.Context, steps []orderstate.Step) (time.Time, bool, error) {
	var (
		first int64
		found bool
	)
	read := func(q string, args ...any) error {
		var at sql.NullInt64
		if err := s.r.GetContext(ctx, &at, q, args...); err != nil {
			return fmt.Errorf("next due order: %w", err)
		}
		if at.Valid && (!found || at.Int64 < first) {
			first, found = at.Int64, true
		}
		return nil
	}
	if len(steps) == 0 {
		if err := read("SELECT MIN(next_run_at) FROM orders WHERE next_run_at IS NOT NULL"); err != nil {
			return time.Time{}, false, err
		}
	}
	for _, step := range steps {
		if err := read("SELECT MIN(next_run_at) FROM orders WHERE step = ? AND next_run_at IS NOT NULL", string(step)); err != nil {
			return time.Time{}, false, err
		}
	}
	if !found {
		return time.Time{}, false, nil
	}
	return fromMs(first), true, nil
}

// Stats counts orders by state, scheduled orders by step and the outbox,
// all from one read snapshot.
func (s *SQLite) Stats(ctx context.Context) (Stats, error) {
	st := Stats{ByState: map[string]int64{}, ScheduledByStep: map[string]int64{}}
	tx, err := s.r.BeginTxx(ctx, nil)
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	defer tx.Rollback()
	count := func(q string, into map[string]int64) error {
		rows, err := tx.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				return err
			}
			into[k] = n
		}
		return rows.Err()
	}
	if err := count("SELECT state, COUNT(*) FROM orders GROUP BY state", st.ByState); err != nil {
		return Stats{}, fmt.Errorf("stats by state: %w", err)
	}
	if err := count("SELECT step, COUNT(*) FROM orders WHERE next_run_at IS NOT NULL GROUP BY step", st.ScheduledByStep); err != nil {
		return Stats{}, fmt.Errorf("stats by step: %w", err)
	}
	var oldest sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*), MIN(created_at) FROM outbox").Scan(&st.Outbox, &oldest); err != nil {
		return Stats{}, fmt.Errorf("stats outbox: %w", err)
	}
	st.OldestOutbox = fromNullMs(oldest)
	return st, nil
}
