package postgres

// Order rows: the orders columns, the statements built from them and the
// mapping between a store.Order and its row.

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// orderFields are the orders columns after id, the SQLite store's list
// (sqlcommon.OrderColumns); insert, update and select are built from it.
var orderFields = sqlcommon.OrderColumns

func orderArgs(o store.Order) []any { return store.OrderValues(o, text) }

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

// frozenFields are the columns an applied transition never changes.
var frozenFields = sqlcommon.Frozen

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

func updateArgs(o store.Order) []any { return sqlcommon.UpdateValues(orderArgs(o)) }

// stored is o as a read returns it once written: millisecond times in
// UTC, and text as PostgreSQL holds it.
func stored(o store.Order) store.Order { return store.AsStored(o, text) }
