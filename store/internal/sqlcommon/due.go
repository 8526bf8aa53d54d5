package sqlcommon

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/internal/orderstate"
)

// DueBySteps is the merge of Due over steps: read returns up to limit due
// orders of one step ("" for any step, when steps is empty), soonest
// first. One indexed read per step, merged: a single query over all of
// them could walk the whole due index past the other steps' rows.
func DueBySteps[T any](limit int, steps []orderstate.Step, at func(T) time.Time, read func(step string) ([]T, error)) ([]T, error) {
	if limit <= 0 {
		return nil, nil
	}
	if len(steps) == 0 {
		return read("")
	}
	var out []T
	for _, step := range steps {
		got, err := read(string(step))
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	sort.SliceStable(out, func(a, b int) bool { return at(out[a]).Before(at(out[b])) })
	if len(out) > limit {
		clear(out[limit:])
		out = out[:limit]
	}
	return out, nil
}

// DueKey is the key of a due order as the paging read selects it
// (id, out_order_id, next_run_at).
type DueKey struct {
	ID         int64  `db:"id"`
	OutOrderID string `db:"out_order_id"`
	NextRunAt  int64  `db:"next_run_at"`
}

// DueIDs pages through the due index (keyset on next_run_at, id) and
// returns the row ids of up to limit due orders that exclude does not
// report, in index order. page returns up to n keys after (afterAt,
// afterID) in that order. Paging rather than guessing how many exclude
// will drop means any number of running orders cannot starve the ones
// behind them; each page starts after the last row seen, so excluded
// orders are read once, and a floor keeps pages from shrinking to a row.
//
// The callers read whole rows only for the ids returned: the running
// orders are the earliest due in the store (their rows say due until their
// steps commit), and a scheduler that reads due work hundreds of times a
// second would otherwise scan all their columns, intent included, only to
// drop them.
func DueIDs(limit int, exclude func(outOrderID string) bool, page func(afterAt, afterID int64, n int) ([]DueKey, error)) ([]int64, error) {
	var (
		ids    []int64
		lastAt = int64(math.MinInt64)
		lastID int64
	)
	for {
		fetch := max(limit-len(ids), 32)
		keys, err := page(lastAt, lastID, fetch)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			lastAt, lastID = k.NextRunAt, k.ID
			if exclude != nil && exclude(k.OutOrderID) {
				continue
			}
			ids = append(ids, k.ID)
			if len(ids) == limit {
				return ids, nil
			}
		}
		if len(keys) < fetch {
			return ids, nil
		}
	}
}

// NextDue is the earliest of the times read returns for each of steps
// (once with "" for any step when steps is empty), and whether any was
// not NULL: one indexed MIN per step, as in Due.
func NextDue(steps []orderstate.Step, read func(step string) (sql.NullInt64, error)) (time.Time, bool, error) {
	var (
		first int64
		found bool
	)
	each := []string{""}
	if len(steps) > 0 {
		each = each[:0]
		for _, s := range steps {
			each = append(each, string(s))
		}
	}
	for _, step := range each {
		at, err := read(step)
		if err != nil {
			return time.Time{}, false, err
		}
		if at.Valid && (!found || at.Int64 < first) {
			first, found = at.Int64, true
		}
	}
	if !found {
		return time.Time{}, false, nil
	}
	return FromMs(first), true, nil
}

// Counts are what Stats reads, in one snapshot (tx).
type Counts struct {
	ByState, ScheduledByStep map[string]int64
	Outbox                   int64
	OldestOutbox             time.Time
}

// ReadCounts counts orders by state, scheduled orders by step and the
// outbox, in tx (a transaction that reads one snapshot).
func ReadCounts(ctx context.Context, tx *sqlx.Tx) (Counts, error) {
	c := Counts{ByState: map[string]int64{}, ScheduledByStep: map[string]int64{}}
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
	if err := count("SELECT state, COUNT(*) FROM orders GROUP BY state", c.ByState); err != nil {
		return Counts{}, fmt.Errorf("stats by state: %w", err)
	}
	if err := count("SELECT step, COUNT(*) FROM orders WHERE next_run_at IS NOT NULL GROUP BY step", c.ScheduledByStep); err != nil {
		return Counts{}, fmt.Errorf("stats by step: %w", err)
	}
	var oldest sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*), MIN(created_at) FROM outbox").Scan(&c.Outbox, &oldest); err != nil {
		return Counts{}, fmt.Errorf("stats outbox: %w", err)
	}
	c.OldestOutbox = FromNullMs(oldest)
	return c, nil
}
