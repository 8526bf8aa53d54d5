package postgres

// Order rows: the orders columns, the statements built from them and the
// mapping between a store.Order and its row.

import (
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

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
