package postgres

// Reads: one order, the due orders of a step, the next due time and the stats.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/internal/orderstate"
	"github.com/coinsaga/coinsaga/store"
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
	var r orderRow
	err := sqlx.GetContext(ctx, q, &r, selectOrder+"WHERE out_order_id = $1", outOrderID)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Order{}, store.ErrNotFound
	}
	if err != nil {
		return store.Order{}, err
	}
	return r.order(), nil
}

// Due returns up to limit scheduled orders with NextRunAt <= now, soonest
// first, skipping those exclude reports; one indexed read per step,
// merged, as in the SQLite store.
func (s *Store) Due(ctx context.Context, now time.Time, limit int, steps []orderstate.Step, exclude func(outOrderID string) bool) ([]store.Order, error) {
	if limit <= 0 {
		return nil, nil
	}
	if len(steps) == 0 {
		return s.dueAt(ctx, now, limit, "", exclude)
	}
	var out []store.Order
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

// dueAt pages through the keys of due orders (keyset on next_run_at, id)
// and reads whole rows only for those it returns, as in the SQLite store.
// The time is a parameter, never the server's clock: the one injected
// clock decides, and the planner uses the index for a parameter.
func (s *Store) dueAt(ctx context.Context, now time.Time, limit int, step string, exclude func(outOrderID string) bool) ([]store.Order, error) {
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
pages:
	for {
		fetch := max(limit-len(ids), 32)
		args := append([]any{now.UnixMilli(), lastAt, lastID, fetch}, extra...)
		var keys []dueKey
		if err := s.db.SelectContext(ctx, &keys, q, args...); err != nil {
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
	var rows []orderRow
	// A row that moved on between the two reads (or was pruned) is left
	// out: what Due returns is due.
	if err := s.db.SelectContext(ctx, &rows, selectOrder+`WHERE id = ANY($1)
		AND next_run_at IS NOT NULL AND next_run_at <= $2 AND ($3 = '' OR owner = $3)
		ORDER BY next_run_at, id`, ids, now.UnixMilli(), me); err != nil {
		return nil, fmt.Errorf("due orders: %w", err)
	}
	out := make([]store.Order, len(rows))
	for i, r := range rows {
		out[i] = r.order()
	}
	return out, nil
}

// NextDue returns the earliest NextRunAt of any scheduled order at one of
// steps (any step when steps is empty): one indexed MIN per step.
func (s *Store) NextDue(ctx context.Context, steps []orderstate.Step) (time.Time, bool, error) {
	var (
		first int64
		found bool
	)
	read := func(q string, args ...any) error {
		var at sql.NullInt64
		if err := s.db.GetContext(ctx, &at, q, args...); err != nil {
			return fmt.Errorf("next due order: %w", err)
		}
		if at.Valid && (!found || at.Int64 < first) {
			first, found = at.Int64, true
		}
		return nil
	}
	// A worker's own orders only, as in Due.
	me := s.worker()
	if len(steps) == 0 {
		q, args := "SELECT MIN(next_run_at) FROM orders WHERE next_run_at IS NOT NULL", []any{}
		if me != "" {
			q, args = q+" AND owner = $1", append(args, me)
		}
		if err := read(q, args...); err != nil {
			return time.Time{}, false, err
		}
	}
	for _, step := range steps {
		q, args := "SELECT MIN(next_run_at) FROM orders WHERE step = $1 AND next_run_at IS NOT NULL", []any{string(step)}
		if me != "" {
			q, args = q+" AND owner = $2", append(args, me)
		}
		if err := read(q, args...); err != nil {
			return time.Time{}, false, err
		}
	}
	if !found {
		return time.Time{}, false, nil
	}
	return fromMs(first), true, nil
}

// Stats counts orders by state, scheduled orders by step and the outbox,
// all from one snapshot (a repeatable-read, read-only transaction).
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	st := store.Stats{ByState: map[string]int64{}, ScheduledByStep: map[string]int64{}}
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return store.Stats{}, fmt.Errorf("stats: %w", err)
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
		return store.Stats{}, fmt.Errorf("stats by state: %w", err)
	}
	if err := count("SELECT step, COUNT(*) FROM orders WHERE next_run_at IS NOT NULL GROUP BY step", st.ScheduledByStep); err != nil {
		return store.Stats{}, fmt.Errorf("stats by step: %w", err)
	}
	var oldest sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*), MIN(created_at) FROM outbox").Scan(&st.Outbox, &oldest); err != nil {
		return store.Stats{}, fmt.Errorf("stats outbox: %w", err)
	}
	st.OldestOutbox = fromNullMs(oldest)
	return st, nil
}
