package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// BenchmarkWriteStatements measures one order update, 40 to a transaction
// as a busy committer batches them, in the ways a group commit could run
// it. It is why Apply and Accept write without RETURNING: in
// mattn/go-sqlite3 a statement that returns a row goes through the query
// path, which costs some 25 us more than running it for its effect.
//
//	go test -run '^$' -bench WriteStatements ./store
func BenchmarkWriteStatements(b *testing.B) {
	ctx := context.Background()
	db, rows := statementsDB(b, 10_000)
	next := func(i int) (Order, int64) {
		o := rows[i%len(rows)]
		from := o.Version
		o.Version++
		o.Seq++
		o.NextRunAt = o.NextRunAt.Add(time.Millisecond)
		rows[i%len(rows)] = o
		return o, from
	}
	variants := []struct {
		name  string
		write func(tx *sqlx.Tx, i int) error
	}{
		{"update returning the columns fixed at accept", func(tx *sqlx.Tx, i int) error {
			o, from := next(i)
			var f frozenRow
			var id int64
			return tx.QueryRowxContext(ctx, updateOrder+" RETURNING id, created_at, intent, intent_subject, body_hash",
				append(updateArgs(o), o.OutOrderID, from)...).Scan(&id, &f.CreatedAt, &f.Intent, &f.IntentSubject, &f.BodyHash)
		}},
		{"update", func(tx *sqlx.Tx, i int) error {
			o, from := next(i)
			_, err := tx.ExecContext(ctx, updateOrder, append(updateArgs(o), o.OutOrderID, from)...)
			return err
		}},
		{"update and a history line found by out_order_id", func(tx *sqlx.Tx, i int) error {
			o, from := next(i)
			if _, err := tx.ExecContext(ctx, updateOrder, append(updateArgs(o), o.OutOrderID, from)...); err != nil {
				return err
			}
			return insertHistoryOf(ctx, tx, o.OutOrderID, o.Version, 0, HistoryEntry{State: "ordered", Step: "order", Detail: "SUD order 1"}, time.Now())
		}},
	}
	const perTx = 40
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				tx, err := db.Beginx()
				if err != nil {
					b.Fatal(err)
				}
				for range perTx {
					if err := v.write(tx, i); err != nil {
						b.Fatal(err)
					}
					i++
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perTx), "ns/write")
		})
	}
}

// statementsDB stores n orders the size of real ones and returns the
// database, opened as the committer opens it, and the orders as stored.
func statementsDB(b *testing.B, n int) (*sqlx.DB, []Order) {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "coinsaga.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for i := 0; i < n; i += 100 {
		reqs := make([]Accept, 0, 100)
		for j := i; j < i+100; j++ {
			o := Order{OutOrderID: fmt.Sprint("o-", j), MgID: "1468180338417074177", RoomID: "9009", FromUID: "u1",
				Provider: "mogs", Amount: 10, Intent: []byte(strings.Repeat("x", 700)),
				IntentSubject: "coinsaga.intents.1468180338417074177.9009", BodyHash: strings.Repeat("h", 64),
				State: "accepted", Step: "order", NextRunAt: now}
			reqs = append(reqs, Accept{Order: o, History: HistoryEntry{State: "accepted", Step: "order", Detail: "accepted"}})
		}
		if _, err := s.Accept(ctx, reqs); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	db, err := openPool(ctx, writerDSN(path, "NORMAL"), 1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	var stored []OrderRow
	if err := db.Select(&stored, selectOrder+"ORDER BY id"); err != nil {
		b.Fatal(err)
	}
	return db, Orders(stored)
}
