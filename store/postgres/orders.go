package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/internal/orderstate"
	"github.com/coinsaga/coinsaga/store"
)

// orderFields are the orders columns after id, in the order orderArgs
// produces their values; insert, update and select are built from it. The
// list is the SQLite store's: the conformance suite's round trip of every
// field keeps the two in step.
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

func orderArgs(o store.Order) []any {
	return []any{
		text(o.OutOrderID), text(o.MgID), text(o.RoomID), text(o.FromUID), text(o.Provider), o.Amount,
		o.Intent, text(o.IntentSubject), text(o.BodyHash),
		text(string(o.State)), text(string(o.Step)), o.Seq, o.Attempt, msOrNull(o.NextRunAt),
		text(o.SudOrderID), text(o.BillNo), o.PayGeneration,
		o.HasBaseline, o.BaselineBalance, o.BaselineSaveAmt, o.BaselineCostSum,
		o.HasPayBalance, o.PayBalance, o.UsedGenAmt, msOrNull(o.DebitedAt),
		text(o.SudStatus), msOrNull(o.OrderedAt), msOrNull(o.FirstPayAt), o.PayUnknown, o.BaselineGenBalance,
		text(o.ErrorCode), text(o.Error),
		o.CreatedAt.UnixMilli(), o.UpdatedAt.UnixMilli(), o.Version,
	}
}

// text is s as a PostgreSQL TEXT value can hold it. PostgreSQL refuses a
// NUL byte or invalid UTF-8 in text, where SQLite keeps them; an error
// message from a provider may hold either, and refusing the write would
// strand the order. Anything else passes unchanged.
func text(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Columns an applied transition never changes (as in the SQLite store).
var frozenFields = map[string]bool{
	"out_order_id": true, "created_at": true,
	"intent": true, "intent_subject": true, "body_hash": true,
}

// placeholders returns "$from, $from+1, ..." for n values.
func placeholders(from, n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = fmt.Sprintf("$%d", from+i)
	}
	return strings.Join(p, ", ")
}

var (
	selectOrder = "SELECT id, " + strings.Join(orderFields, ", ") + " FROM orders "

	// ON CONFLICT DO NOTHING cannot fail on a duplicate, which would abort
	// the whole batch; RETURNING then returns no row, and the caller reads
	// the existing order.
	// The owner goes last: the worker whose lease the transaction checked
	// (commit.go), or NULL.
	insertOrder = "INSERT INTO orders (" + strings.Join(orderFields, ", ") + ", owner) VALUES (" +
		placeholders(1, len(orderFields)+1) + ") ON CONFLICT (out_order_id) DO NOTHING RETURNING id"

	// The update is fenced by version: no row back means stale (or gone)
	// and nothing was written. It returns what the caller needs to build
	// the stored order without a second read. A handle without a worker
	// leaves the order without an owner, for any worker to claim (a
	// replay tool hands an order back so).
	updateOrder = updateStatement(false)

	// updateOwned is the update of a registered worker, fenced by version,
	// owner and a live lease: a worker whose lease expired, or whose order
	// was rescued or released, writes nothing.
	updateOwned = updateStatement(true)
)

// updateStatement builds the update of an order's columns that Apply may
// change; its last parameters are out_order_id, version and, when owned,
// the worker.
func updateStatement(owned bool) string {
	var set []string
	n := 0
	for _, f := range orderFields {
		if !frozenFields[f] {
			n++
			set = append(set, fmt.Sprintf("%s = $%d", f, n))
		}
	}
	where := fmt.Sprintf(" WHERE out_order_id = $%d AND version = $%d", n+1, n+2)
	if owned {
		// A stopped order (no next run: nothing runs it anywhere) is
		// anyone's to resume, and the worker that resumes it (a replay)
		// becomes its owner: its first owner may be long gone, and a
		// rescue hands over only scheduled orders. The version bump fences
		// any copy its old owner still holds.
		where += fmt.Sprintf(" AND (owner = $%d OR next_run_at IS NULL) AND EXISTS (SELECT 1 FROM workers WHERE id = $%d AND expires_at > clock_timestamp())", n+3, n+3)
		set = append(set, fmt.Sprintf("owner = $%d", n+3))
	} else {
		set = append(set, "owner = NULL")
	}
	return "UPDATE orders SET " + strings.Join(set, ", ") + where +
		" RETURNING id, created_at, intent, intent_subject, body_hash"
}

func updateArgs(o store.Order) []any {
	all := orderArgs(o)
	args := make([]any, 0, len(all))
	for i, f := range orderFields {
		if !frozenFields[f] {
			args = append(args, all[i])
		}
	}
	return args
}

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

func (r orderRow) order() store.Order {
	return store.Order{
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

// stored is o as a read returns it once written: millisecond times in
// UTC, and text as PostgreSQL holds it.
func stored(o store.Order) store.Order {
	ms := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return fromMs(t.UnixMilli())
	}
	o.NextRunAt, o.DebitedAt, o.OrderedAt, o.FirstPayAt = ms(o.NextRunAt), ms(o.DebitedAt), ms(o.OrderedAt), ms(o.FirstPayAt)
	o.CreatedAt, o.UpdatedAt = ms(o.CreatedAt), ms(o.UpdatedAt)
	o.State, o.Step = orderstate.State(text(string(o.State))), orderstate.Step(text(string(o.Step)))
	for _, p := range []*string{&o.MgID, &o.RoomID, &o.FromUID, &o.Provider,
		&o.SudOrderID, &o.BillNo, &o.SudStatus, &o.ErrorCode, &o.Error} {
		*p = text(*p)
	}
	return o
}

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
// ones of the one list in internal/orderstate.
var terminalStates = func() []string {
	var names []string
	for _, s := range orderstate.TerminalStates() {
		names = append(names, string(s))
	}
	return names
}()

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
		o.CreatedAt, o.Intent, o.IntentSubject, o.BodyHash = fromMs(f.CreatedAt), f.Intent, f.IntentSubject, f.BodyHash
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

// PruneTerminal deletes up to limit terminal, unscheduled orders last
// updated before cutoff, with their history (ON DELETE CASCADE). Rows
// another handle holds are skipped, not waited for: a prune on one worker
// never stalls another's step, and the next prune takes them.
func (s *Store) PruneTerminal(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	if s.closed() {
		return 0, store.ErrClosed
	}
	q := `DELETE FROM orders WHERE id IN (
		SELECT id FROM orders
		WHERE next_run_at IS NULL AND updated_at < $1
		AND state IN ('` + strings.Join(terminalStates, "', '") + `')
		ORDER BY updated_at LIMIT $2
		FOR UPDATE SKIP LOCKED)`
	var n int64
	err := s.withRetry(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, q, cutoff.UnixMilli(), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune terminal orders: %w", err)
	}
	return int(n), nil
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
