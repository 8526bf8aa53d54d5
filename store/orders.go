package store

// Order rows: the orders columns, the statements built from them and the
// mapping between an Order and its row.

import (
	"strings"

	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// The statements are built from the one list of orders columns
// (sqlcommon.OrderColumns) so that insert, update and select cannot drift
// apart; store.OrderValues gives their values.
var orderFields = sqlcommon.OrderColumns

func orderArgs(o Order) []any { return OrderValues(o, nil) }

// frozenFields are the columns an applied transition never changes.
var frozenFields = sqlcommon.Frozen

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

func updateArgs(o Order) []any { return sqlcommon.UpdateValues(orderArgs(o)) }
