package store

// Order rows: the orders columns, the statements built from them and the
// mapping between an Order and its row.

import (
	"database/sql"
	"strings"
	"time"

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
