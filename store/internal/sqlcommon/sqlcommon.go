// Package sqlcommon holds what the two SQL stores (SQLite in store,
// PostgreSQL in store/postgres) share and that needs none of store's
// types: the orders columns, times as stored, the keyset paging of due
// orders, the stats reads, the group-commit queue and the migration step.
// What differs between them (SQL dialect, locking, ids, ownership) stays
// in each driver; the mapping between store.Order and its row lives in
// store (sqlrows.go), which both drivers import.
package sqlcommon

import (
	"database/sql"
	"strings"
	"time"

	"github.com/coinsaga/coinsaga/internal/orderstate"
)

// OrderColumns are the orders columns after id, in the order
// store.OrderValues produces their values. Insert, update and select are
// built from this one list in both stores so that they cannot drift apart.
var OrderColumns = []string{
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

// Frozen are the columns an applied transition never changes: the key,
// the birth date and the intent as received. A To built without the
// intent must not erase the only copy of the login fields that retries
// and compensation need.
var Frozen = map[string]bool{
	"out_order_id": true, "created_at": true,
	"intent": true, "intent_subject": true, "body_hash": true,
}

// UpdateValues keeps of values (one per OrderColumns) those an update
// writes: every column but the Frozen ones, in column order.
func UpdateValues(values []any) []any {
	out := make([]any, 0, len(values))
	for i, c := range OrderColumns {
		if !Frozen[c] {
			out = append(out, values[i])
		}
	}
	return out
}

// Times are stored as unix milliseconds. Orders returned by the stores
// carry exactly what a later read returns: UTC, millisecond precision.

// MsOrNull is t in milliseconds, NULL for the zero time.
func MsOrNull(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// FromMs is the time of a stored millisecond count, in UTC.
func FromMs(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// FromNullMs is FromMs, the zero time for NULL.
func FromNullMs(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return FromMs(n.Int64)
}

// TerminalStates are the states PruneTerminal may delete: the terminal
// ones of the one list of states, which lives in internal/orderstate so
// that the store need not import events (it knows nothing of NATS
// messages).
var TerminalStates = func() []string {
	var names []string
	for _, s := range orderstate.TerminalStates() {
		names = append(names, string(s))
	}
	return names
}()

// TerminalStatesIn is TerminalStates as the list of an SQL IN.
var TerminalStatesIn = "'" + strings.Join(TerminalStates, "', '") + "'"
