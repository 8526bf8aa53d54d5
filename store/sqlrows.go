package store

// Rows as the SQL stores hold them: this package's SQLite store and
// store/postgres map an Order, a history line and an outbox message to and
// from their rows through these types, so that the mapping is written
// once. They are for the drivers; callers of a Store never see a row.

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

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
// scans it.
type OrderRow struct {
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

// Order is the order r holds.
func (r OrderRow) Order() Order {
	return Order{
		OutOrderID: r.OutOrderID, MgID: r.MgID, RoomID: r.RoomID, FromUID: r.FromUID,
		Provider: r.Provider, Amount: r.Amount,
		Intent: r.Intent, IntentSubject: r.IntentSubject, BodyHash: r.BodyHash,
		State: orderstate.State(r.State), Step: orderstate.Step(r.Step), Seq: r.Seq, Attempt: r.Attempt, NextRunAt: sqlcommon.FromNullMs(r.NextRunAt),
		SudOrderID: r.SudOrderID, BillNo: r.BillNo, PayGeneration: r.PayGeneration,
		HasBaseline: r.HasBaseline, BaselineBalance: r.BaselineBalance,
		BaselineSaveAmt: r.BaselineSaveAmt, BaselineCostSum: r.BaselineCostSum,
		HasPayBalance: r.HasPayBalance, PayBalance: r.PayBalance, UsedGenAmt: r.UsedGenAmt,
		DebitedAt: sqlcommon.FromNullMs(r.DebitedAt),
		SudStatus: r.SudStatus, OrderedAt: sqlcommon.FromNullMs(r.OrderedAt), FirstPayAt: sqlcommon.FromNullMs(r.FirstPayAt), PayUnknown: r.PayUnknown,
		BaselineGenBalance: r.BaselineGenBal,
		ErrorCode:          r.ErrorCode, Error: r.Error,
		CreatedAt: sqlcommon.FromMs(r.CreatedAt), UpdatedAt: sqlcommon.FromMs(r.UpdatedAt), Version: r.Version,
	}
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
		out[i] = r.Order()
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
