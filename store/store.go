// Package store persists orders, their history and the outbox of messages
// to publish. It is the single source of truth for the saga: a crash loses
// nothing because every step's outcome, the next time to run and the status
// event or dead letter that reports it commit in one transaction.
//
// Store is the seam for other databases; the SQLite implementation (sqlx +
// mattn/go-sqlite3) is the default. The package never touches the network
// and knows nothing of providers or NATS: outbox messages are opaque.
//
// Durability of the SQLite store: by default (WAL, synchronous=NORMAL) a
// returned write survives the process crashing or being killed, but a power
// loss or kernel panic may drop the last commits (never corrupt the file).
// WithSynchronousFull fsyncs every group commit and survives power loss too,
// for about one fsync of latency per batch. See SQLite.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/coinsaga/coinsaga/internal/orderstate"
)

// Errors callers decide on.
var (
	// ErrNotFound: no order with that out_order_id.
	ErrNotFound = errors.New("store: order not found")
	// ErrStale: the order changed since it was read (its Version moved);
	// the transition was not applied. Re-read and decide again.
	ErrStale = errors.New("store: order changed since it was read")
	// ErrLocked: another process holds the database (one writer at a time).
	ErrLocked = errors.New("store: database is held by another coinsaga process")
	// ErrDamaged: the database file exists but is not a sound SQLite
	// database (its integrity check failed, or it is not one at all).
	ErrDamaged = errors.New("store: database is damaged")
)

// Order is one purchase order: the intent it came from and the saga's
// progress. State is the public state (see events.State); Step is the next
// thing the saga does, which also says where a replay resumes. The db
// tags name the orders columns that hold a field as it is, for the SQL
// drivers (OrderRow); the times are held as milliseconds instead.
type Order struct {
	OutOrderID string `json:"out_order_id" db:"out_order_id"`
	MgID       string `json:"mg_id" db:"mg_id"`
	RoomID     string `json:"room_id" db:"room_id"`
	FromUID    string `json:"from_uid" db:"from_uid"`
	Provider   string `json:"provider" db:"provider"`
	Amount     int64  `json:"amount" db:"amount"`

	// Intent is the original intent bytes, exactly as received. It holds
	// the player's login secrets: never log it, never return it from an API.
	Intent []byte `json:"-" db:"intent"`
	// IntentSubject is the subject the intent arrived on (for dead letters).
	IntentSubject string `json:"-" db:"intent_subject"`
	// BodyHash identifies the intent's content, to tell a duplicate (same
	// hash) from a conflict (same out_order_id, different hash).
	BodyHash string `json:"-" db:"body_hash"`

	State   orderstate.State `json:"state" db:"state"`
	Step    orderstate.Step  `json:"step" db:"step"`
	Seq     int              `json:"seq" db:"seq"`         // seq of the last status event written
	Attempt int              `json:"attempt" db:"attempt"` // attempts made at Step so far
	// NextRunAt is when Step is due; zero when nothing is scheduled
	// (terminal orders).
	NextRunAt time.Time `json:"next_run_at" db:"-"`

	SudOrderID    string `json:"sud_order_id,omitempty" db:"sud_order_id"`
	BillNo        string `json:"bill_no,omitempty" db:"bill_no"`
	PayGeneration int    `json:"pay_generation" db:"pay_generation"`

	// The balance read just before the pay, kept so that a retried pay
	// after a crash confirms against the balance before the debit.
	HasBaseline     bool  `json:"has_baseline" db:"has_baseline"`
	BaselineBalance int64 `json:"baseline_balance" db:"baseline_balance"`
	BaselineSaveAmt int64 `json:"baseline_save_amt" db:"baseline_save_amt"`
	BaselineCostSum int64 `json:"baseline_cost_sum" db:"baseline_cost_sum"`
	// BaselineGenBalance is the gifted part of the baseline balance.
	BaselineGenBalance int64 `json:"baseline_gen_balance" db:"baseline_gen_balance"`

	// The pay reply.
	HasPayBalance bool      `json:"has_pay_balance" db:"has_pay_balance"`
	PayBalance    int64     `json:"pay_balance" db:"pay_balance"`
	UsedGenAmt    int64     `json:"used_gen_amt" db:"used_gen_amt"`
	DebitedAt     time.Time `json:"debited_at" db:"-"`

	// SudStatus is SUD's last reported state of the paid action
	// (CREATED, EXECUTING, EXECUTE_SUCCESS, EXECUTE_FAIL); empty until
	// asked. OrderedAt is when SUD took the order; its execute timeout
	// counts from then.
	SudStatus string    `json:"sud_status,omitempty" db:"sud_status"`
	OrderedAt time.Time `json:"ordered_at" db:"-"`
	// FirstPayAt is when the current bill_no was first sent: the bill
	// lives 48 hours from then, and a cancel answered "not found" proves
	// nothing once it may have expired.
	FirstPayAt time.Time `json:"first_pay_at" db:"-"`
	// PayUnknown: an attempt of the current pay ended without an answer
	// (timeout, lost reply, busy), so it may have charged; a decline that
	// follows is checked with a cancel before the order ends.
	PayUnknown bool `json:"pay_unknown,omitempty" db:"pay_unknown"`

	ErrorCode string `json:"error_code,omitempty" db:"error_code"`
	Error     string `json:"error,omitempty" db:"error"`

	CreatedAt time.Time `json:"created_at" db:"-"`
	UpdatedAt time.Time `json:"updated_at" db:"-"`
	// Version grows by one with every applied transition; Transition
	// applies only if it still matches (optimistic concurrency).
	Version int64 `json:"version" db:"version"`
}

// HistoryEntry is one line of an order's append-only history.
type HistoryEntry struct {
	At        time.Time        `json:"at"`
	State     orderstate.State `json:"state"`
	Step      orderstate.Step  `json:"step"`
	Attempt   int              `json:"attempt"`
	ErrorCode string           `json:"error_code,omitempty"`
	Error     string           `json:"error,omitempty"`
	Detail    string           `json:"detail,omitempty"` // free text: "pay ok, balance 900", "replayed"
}

// Message is an outbox row: something to publish to NATS once the change
// it reports has committed. The relay deletes it only after the publish is
// acknowledged, so it may be published more than once; MsgID (the
// Nats-Msg-Id header) lets JetStream drop the duplicates.
type Message struct {
	ID      int64             `json:"id"` // assigned by the store
	Subject string            `json:"subject"`
	MsgID   string            `json:"msg_id"`
	Header  map[string]string `json:"header,omitempty"`
	Data    []byte            `json:"data"`
}

// Accept is a request to record a new order.
type Accept struct {
	Order   Order // State, Step, Seq, NextRunAt set by the caller
	History HistoryEntry
	Outbox  []Message // the "accepted" (or "rejected") status event, a dead letter
}

// AcceptResult says what Accept found.
type AcceptResult struct {
	// Created is true when the order is new. When false, Existing is the
	// order already stored under that out_order_id and nothing was written.
	Created  bool
	Existing Order
}

// Transition is the outcome of one or more consecutive steps of one order:
// the whole new order row (From.Version must still be current), a history
// line per step and the messages that report them, all applied in one
// transaction or not at all.
type Transition struct {
	From    Order // as read (its fields fixed at accept as stored, or empty); its Version is checked
	To      Order // the new row; the store sets Version and UpdatedAt
	History []HistoryEntry
	Outbox  []Message
}

// Store is the saga's persistence. Implementations are safe for concurrent
// use and may batch concurrent calls into one transaction (group commit);
// each call still returns only after its own change is durable.
type Store interface {
	// Accept records orders that do not exist yet, each with its history
	// and outbox, and reports per request whether it was created or what
	// already exists. Results are in request order.
	Accept(ctx context.Context, reqs []Accept) ([]AcceptResult, error)
	// Apply applies a transition; ErrStale if the order moved since From.
	Apply(ctx context.Context, t Transition) (Order, error)
	// Get returns one order; ErrNotFound if absent.
	Get(ctx context.Context, outOrderID string) (Order, error)
	// History returns an order's history, oldest first.
	History(ctx context.Context, outOrderID string) ([]HistoryEntry, error)
	// Due returns up to limit non-terminal orders with NextRunAt <= now,
	// soonest first, at one of steps (any step when steps is empty),
	// skipping the ids in exclude (already running).
	Due(ctx context.Context, now time.Time, limit int, steps []orderstate.Step, exclude func(outOrderID string) bool) ([]Order, error)
	// NextDue returns the earliest NextRunAt of any scheduled order at one
	// of steps (any step when steps is empty), and false when none is
	// scheduled.
	NextDue(ctx context.Context, steps []orderstate.Step) (time.Time, bool, error)
	// PendingOutbox returns up to limit outbox messages with an ID above
	// after, oldest first. IDs grow in commit order: once a reader saw
	// message N, no message below N can still appear, so a relay may keep
	// a cursor and delete what it published later.
	PendingOutbox(ctx context.Context, after int64, limit int) ([]Message, error)
	// DeleteOutbox removes published messages.
	DeleteOutbox(ctx context.Context, ids []int64) error
	// Stats counts orders by state, scheduled orders by step, and the outbox.
	Stats(ctx context.Context) (Stats, error)
	// PruneTerminal deletes up to limit terminal orders (and their history)
	// last updated before cutoff, and returns how many it deleted.
	PruneTerminal(ctx context.Context, cutoff time.Time, limit int) (int, error)
	// Ping checks the database answers.
	Ping(ctx context.Context) error
	Close() error
}

// Stats is a snapshot for metrics.
type Stats struct {
	ByState         map[string]int64
	ScheduledByStep map[string]int64
	Outbox          int64
	OldestOutbox    time.Time // zero when the outbox is empty
}
