package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/internal/orderstate"
)

// orderFields are the orders columns after id, in the order orderArgs
// produces their values. Insert, update and select are built from this one
// list so that they cannot drift apart.
var orderFields = []string{
	"out_order_id", "mg_id", "room_id", "from_uid", "provider", "amount",
	"intent", "intent_subject", "body_hash",
	"state", "step", "seq", "attempt", "next_run_at",
	"sud_order_id", "bill_no", "pay_generation",
	"has_baseline", "baseline_balance", "baseline_save_amt", "baseline_cost_sum",
	"has_pay_balance", "pay_balance", "used_gen_amt", "debited_at",
	"sud_status", "ordered_at", "first_pay_at", "pay_unknown", "baseline_gen_balance",
	"error_code", "error",
	"created_at", "updated_at", "version",
}

func orderArgs(o Order) []any {
	return []any{
		o.OutOrderID, o.MgID, o.RoomID, o.FromUID, o.Provider, o.Amount,
		o.Intent, o.IntentSubject, o.BodyHash,
		o.State, o.Step, o.Seq, o.Attempt, msOrNull(o.NextRunAt),
		o.SudOrderID, o.BillNo, o.PayGeneration,
		o.HasBaseline, o.BaselineBalance, o.BaselineSaveAmt, o.BaselineCostSum,
		o.HasPayBalance, o.PayBalance, o.UsedGenAmt, msOrNull(o.DebitedAt),
		o.SudStatus, msOrNull(o.OrderedAt), msOrNull(o.FirstPayAt), o.PayUnknown, o.BaselineGenBalance,
		o.ErrorCode, o.Error,
		o.CreatedAt.UnixMilli(), o.UpdatedAt.UnixMilli(), o.Version,
	}
}

// Columns an applied transition never changes: the key, the birth date and
// the intent as received. A To built without the intent must not erase the
// only copy of the login fields that retries and compensation need.
var frozenFields = map[string]bool{
	"out_order_id": true, "created_at": true,
	"intent": true, "intent_subject": true, "body_hash": true,
}

var (
	selectOrder = "SELECT id, " + strings.Join(orderFields, ", ") + " FROM orders "

	insertOrder = "INSERT INTO orders (" + strings.Join(orderFields, ", ") + ") VALUES (?" +
		strings.Repeat(", ?", len(orderFields)-1) + ") ON CONFLICT (out_order_id) DO NOTHING"

	updateOrder = func() string {
		var set []string
		for _, f := range orderFields {
			if !frozenFields[f] {
				set = append(set, f+" = ?")
			}
		}
		return "UPDATE orders SET " + strings.Join(set, ", ") + " WHERE out_order_id = ? AND version = ?"
	}()

	selectFrozen = "SELECT created_at, intent, intent_subject, body_hash FROM orders WHERE out_order_id = ?"
)

// The writes of Accept and Apply are statements without RETURNING, so
// that a group commit runs no query unless something is amiss (a stale
// version, an order accepted twice): in mattn/go-sqlite3 a statement that
// returns rows costs some 25 us more than the same statement run for its
// effect (BenchmarkWriteStatements), and every write goes through the one
// committer.

func updateArgs(o Order) []any {
	all := orderArgs(o)
	args := make([]any, 0, len(all))
	for i, f := range orderFields {
		if !frozenFields[f] {
			args = append(args, all[i])
		}
	}
	return args
}

// orderRow is an orders row as SQLite holds it.
type orderRow struct {
	ID              int64         `db:"id"`
	OutOrderID      string        `db:"out_order_id"`
	MgID            string        `db:"mg_id"`
	RoomID          string        `db:"room_id"`
	FromUID         string        `db:"from_uid"`
	Provider        string        `db:"provider"`
	Amount          int64         `db:"amount"`
	Intent          []byte        `db:"intent"`
	IntentSubject   string        `db:"intent_subject"`
	BodyHash        string        `db:"body_hash"`
	State           string        `db:"state"`
	Step            string        `db:"step"`
	Seq             int           `db:"seq"`
	Attempt         int           `db:"attempt"`
	NextRunAt       sql.NullInt64 `db:"next_run_at"`
	SudOrderID      string        `db:"sud_order_id"`
	BillNo          string        `db:"bill_no"`
	PayGeneration   int           `db:"pay_generation"`
	HasBaseline     bool          `db:"has_baseline"`
	BaselineBalance int64         `db:"baseline_balance"`
	BaselineSaveAmt int64         `db:"baseline_save_amt"`
	BaselineCostSum int64         `db:"baseline_cost_sum"`
	HasPayBalance   bool          `db:"has_pay_balance"`
	PayBalance      int64         `db:"pay_balance"`
	UsedGenAmt      int64         `db:"used_gen_amt"`
	DebitedAt       sql.NullInt64 `db:"debited_at"`
	SudStatus       string        `db:"sud_status"`
	OrderedAt       sql.NullInt64 `db:"ordered_at"`
	FirstPayAt      sql.NullInt64 `db:"first_pay_at"`
	PayUnknown      bool          `db:"pay_unknown"`
	BaselineGenBal  int64         `db:"baseline_gen_balance"`
	ErrorCode       string        `db:"error_code"`
	Error           string        `db:"error"`
	CreatedAt       int64         `db:"created_at"`
	UpdatedAt       int64         `db:"updated_at"`
	Version         int64         `db:"version"`
}

func (r orderRow) order() Order {
	return Order{
		OutOrderID: r.OutOrderID, MgID: r.MgID, RoomID: r.RoomID, FromUID: r.FromUID,
		Provider: r.Provider, Amount: r.Amount,
		Intent: r.Intent, IntentSubject: r.IntentSubject, BodyHash: r.BodyHash,
		State: orderstate.State(r.State), Step: orderstate.Step(r.Step), Seq: r.Seq, Attempt: r.Attempt, NextRunAt: fromNullMs(r.NextRunAt),
		SudOrderID: r.SudOrderID, BillNo: r.BillNo, PayGeneration: r.PayGeneration,
		HasBaseline: r.HasBaseline, BaselineBalance: r.BaselineBalance,
		BaselineSaveAmt: r.BaselineSaveAmt, BaselineCostSum: r.BaselineCostSum,
		HasPayBalance: r.HasPayBalance, PayBalance: r.PayBalance, UsedGenAmt: r.UsedGenAmt,
		DebitedAt: fromNullMs(r.DebitedAt),
		SudStatus: r.SudStatus, OrderedAt: fromNullMs(r.OrderedAt), FirstPayAt: fromNullMs(r.FirstPayAt), PayUnknown: r.PayUnknown,
		BaselineGenBalance: r.BaselineGenBal,
		ErrorCode:          r.ErrorCode, Error: r.Error,
		CreatedAt: fromMs(r.CreatedAt), UpdatedAt: fromMs(r.UpdatedAt), Version: r.Version,
	}
}

// rowOf is o as the orders table holds it.
func rowOf(o Order) orderRow {
	return orderRow{
		OutOrderID: o.OutOrderID, MgID: o.MgID, RoomID: o.RoomID, FromUID: o.FromUID,
		Provider: o.Provider, Amount: o.Amount,
		Intent: o.Intent, IntentSubject: o.IntentSubject, BodyHash: o.BodyHash,
		State: string(o.State), Step: string(o.Step), Seq: o.Seq, Attempt: o.Attempt, NextRunAt: msOrNull(o.NextRunAt),
		SudOrderID: o.SudOrderID, BillNo: o.BillNo, PayGeneration: o.PayGeneration,
		HasBaseline: o.HasBaseline, BaselineBalance: o.BaselineBalance,
		BaselineSaveAmt: o.BaselineSaveAmt, BaselineCostSum: o.BaselineCostSum,
		HasPayBalance: o.HasPayBalance, PayBalance: o.PayBalance, UsedGenAmt: o.UsedGenAmt,
		DebitedAt: msOrNull(o.DebitedAt),
		SudStatus: o.SudStatus, OrderedAt: msOrNull(o.OrderedAt), FirstPayAt: msOrNull(o.FirstPayAt), PayUnknown: o.PayUnknown,
		BaselineGenBal: o.BaselineGenBalance,
		ErrorCode:      o.ErrorCode, Error: o.Error,
		CreatedAt: o.CreatedAt.UnixMilli(), UpdatedAt: o.UpdatedAt.UnixMilli(), Version: o.Version,
	}
}

// Times are stored as unix milliseconds. Orders returned by the store carry
// exactly what a later read returns: UTC, millisecond precision.
func msOrNull(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func fromMs(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func fromNullMs(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMs(n.Int64)
}

// terminalStates are the states PruneTerminal may delete: the terminal
// ones of the one list of states, which lives in internal/orderstate so
// that the store need not import events (it knows nothing of NATS
// messages).
var terminalStates = func() []string {
	var names []string
	for _, s := range orderstate.TerminalStates() {
		names = append(names, string(s))
	}
	return names
}()

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
		row := rowOf(o)
		row.CreatedAt, row.Intent, row.IntentSubject, row.BodyHash = frozen.CreatedAt, frozen.Intent, frozen.IntentSubject, frozen.BodyHash
		stored = row.order()
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

// PruneTerminal deletes up to limit terminal, unscheduled orders last
// updated before cutoff; their history goes with them (ON DELETE CASCADE).
// The unary + keeps the state check a filter, so that the search runs on
// orders_finished (old first) and not over every order of those states.
func (s *SQLite) PruneTerminal(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	q := `DELETE FROM orders WHERE id IN (
		SELECT id FROM orders
		WHERE +state IN ('` + strings.Join(terminalStates, "', '") + `')
		AND next_run_at IS NULL AND updated_at < ?
		LIMIT ?)`
	var n int64
	err := s.submit(ctx, func(ctx context.Context, tx *sqlx.Tx, _ time.Time) error {
		res, err := tx.ExecContext(ctx, q, cutoff.UnixMilli(), limit)
		if err != nil {
			return fmt.Errorf("prune terminal orders: %w", err)
		}
		// changes() counts the orders only, not the cascaded history.
		n, err = res.RowsAffected()
		if err != nil {
			return fmt.Errorf("prune terminal orders: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
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
