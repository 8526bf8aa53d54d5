package store

// Rows as the SQL stores hold them: this package's SQLite store and
// store/postgres map an Order, a history line and an outbox message to and
// from their rows through these types, so that the mapping is written
// once. They are for the drivers; callers of a Store never see a row.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/internal/orderstate"
	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// OrderValues are o's column values in the order of the orders columns
// (store/internal/sqlcommon.OrderColumns). text maps every text value to
// what the database can hold (nil keeps them as they are).
func OrderValues(o Order, text func(string) string) []any {
	if text == nil {
		text = func(s string) string { return s }
	}
	return []any{
		text(o.OutOrderID), text(o.MgID), text(o.RoomID), text(o.FromUID), text(o.Provider), o.Amount,
		o.Intent, text(o.IntentSubject), text(o.BodyHash),
		text(string(o.State)), text(string(o.Step)), o.Seq, o.Attempt, sqlcommon.MsOrNull(o.NextRunAt),
		text(o.SudOrderID), text(o.BillNo), o.PayGeneration,
		o.HasBaseline, o.BaselineBalance, o.BaselineSaveAmt, o.BaselineCostSum,
		o.HasPayBalance, o.PayBalance, o.UsedGenAmt, sqlcommon.MsOrNull(o.DebitedAt),
		text(o.SudStatus), sqlcommon.MsOrNull(o.OrderedAt), sqlcommon.MsOrNull(o.FirstPayAt), o.PayUnknown, o.BaselineGenBalance,
		text(o.ErrorCode), text(o.Error),
		o.CreatedAt.UnixMilli(), o.UpdatedAt.UnixMilli(), o.Version,
	}
}

// OrderRow is an orders row as a select of id and the orders columns
// scans it. The columns that hold a field of Order as it is fill the
// embedded Order by its db tags; the times, held as unix milliseconds
// (NULL for none), are the row's own fields, which shadow the order's, and
// Stored turns them back into times.
type OrderRow struct {
	Order
	ID         int64         `db:"id"`
	NextRunAt  sql.NullInt64 `db:"next_run_at"`
	DebitedAt  sql.NullInt64 `db:"debited_at"`
	OrderedAt  sql.NullInt64 `db:"ordered_at"`
	FirstPayAt sql.NullInt64 `db:"first_pay_at"`
	CreatedAt  int64         `db:"created_at"`
	UpdatedAt  int64         `db:"updated_at"`
}

// Stored is the order r holds.
func (r OrderRow) Stored() Order {
	o := r.Order
	o.NextRunAt, o.DebitedAt = sqlcommon.FromNullMs(r.NextRunAt), sqlcommon.FromNullMs(r.DebitedAt)
	o.OrderedAt, o.FirstPayAt = sqlcommon.FromNullMs(r.OrderedAt), sqlcommon.FromNullMs(r.FirstPayAt)
	o.CreatedAt, o.UpdatedAt = sqlcommon.FromMs(r.CreatedAt), sqlcommon.FromMs(r.UpdatedAt)
	return o
}

// AsStored is o as a read returns it once written: times in UTC with
// millisecond precision, and the text a writer's text function (see
// OrderValues) made of its names, state, step, bill and error fields.
func AsStored(o Order, text func(string) string) Order {
	ms := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return sqlcommon.FromMs(t.UnixMilli())
	}
	o.NextRunAt, o.DebitedAt, o.OrderedAt, o.FirstPayAt = ms(o.NextRunAt), ms(o.DebitedAt), ms(o.OrderedAt), ms(o.FirstPayAt)
	o.CreatedAt, o.UpdatedAt = ms(o.CreatedAt), ms(o.UpdatedAt)
	if text == nil {
		return o
	}
	o.State, o.Step = orderstate.State(text(string(o.State))), orderstate.Step(text(string(o.Step)))
	for _, p := range []*string{&o.MgID, &o.RoomID, &o.FromUID, &o.Provider,
		&o.SudOrderID, &o.BillNo, &o.SudStatus, &o.ErrorCode, &o.Error} {
		*p = text(*p)
	}
	return o
}

// Orders are the orders rows hold.
func Orders(rows []OrderRow) []Order {
	out := make([]Order, len(rows))
	for i, r := range rows {
		out[i] = r.Stored()
	}
	return out
}

// HistoryRow is a history line as a select of at, state, step, attempt,
// error_code, error and detail scans it.
type HistoryRow struct {
	At        int64  `db:"at"`
	State     string `db:"state"`
	Step      string `db:"step"`
	Attempt   int    `db:"attempt"`
	ErrorCode string `db:"error_code"`
	Error     string `db:"error"`
	Detail    string `db:"detail"`
}

// Entries are the history lines rows hold.
func Entries(rows []HistoryRow) []HistoryEntry {
	out := make([]HistoryEntry, len(rows))
	for i, r := range rows {
		out[i] = HistoryEntry{
			At: sqlcommon.FromMs(r.At), State: orderstate.State(r.State), Step: orderstate.Step(r.Step), Attempt: r.Attempt,
			ErrorCode: r.ErrorCode, Error: r.Error, Detail: r.Detail,
		}
	}
	return out
}

// OutboxRow is an outbox row as a select of id, subject, msg_id, header and
// data scans it.
type OutboxRow struct {
	ID      int64          `db:"id"`
	Subject string         `db:"subject"`
	MsgID   string         `db:"msg_id"`
	Header  sql.NullString `db:"header"`
	Data    []byte         `db:"data"`
}

// Messages decodes outbox rows.
func Messages(rows []OutboxRow) ([]Message, error) {
	out := make([]Message, len(rows))
	for i, r := range rows {
		m := Message{ID: r.ID, Subject: r.Subject, MsgID: r.MsgID, Data: r.Data}
		if r.Header.Valid {
			if err := json.Unmarshal([]byte(r.Header.String), &m.Header); err != nil {
				return nil, fmt.Errorf("message %d header: %w", r.ID, err)
			}
		}
		out[i] = m
	}
	return out, nil
}

// PendingOutbox is both SQL stores' PendingOutbox: up to limit outbox
// messages with an id above after, in id order, read through q in its
// dialect.
func PendingOutbox(ctx context.Context, q sqlx.ExtContext, after int64, limit int) ([]Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	var rows []OutboxRow
	if err := sqlx.SelectContext(ctx, q, &rows,
		q.Rebind(`SELECT id, subject, msg_id, header, data FROM outbox WHERE id > ? ORDER BY id LIMIT ?`), after, limit); err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	out, err := Messages(rows)
	if err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	return out, nil
}

// HeaderColumn is m's header as the outbox holds it: JSON, or NULL for
// none.
func HeaderColumn(m Message) (sql.NullString, error) {
	if len(m.Header) == 0 {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(m.Header)
	if err != nil {
		return sql.NullString{}, fmt.Errorf("outbox %s: encode header: %w", m.MsgID, err)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}
