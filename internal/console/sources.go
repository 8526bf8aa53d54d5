package console

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/store"
)

// Orders is what the console reads from the store: counts for the
// overview (indexed, no scan), one order and its history.
type Orders interface {
	Stats(ctx context.Context) (store.Stats, error)
	Get(ctx context.Context, outOrderID string) (store.Order, error)
	History(ctx context.Context, outOrderID string) ([]store.HistoryEntry, error)
}

// StatusSource follows status events for the live feed.
type StatusSource interface {
	Watch(ctx context.Context, f events.WatchFilter) (StatusStream, error)
}

// StatusStream is one watch: Next blocks for the next event.
type StatusStream interface {
	Next(ctx context.Context) (events.Watched, error)
	Stop()
}

// NATSStatus follows the status stream of subjects on js.
func NATSStatus(js jetstream.JetStream, subjects events.Subjects) StatusSource {
	return natsStatus{js: js, subjects: subjects}
}

type natsStatus struct {
	js       jetstream.JetStream
	subjects events.Subjects
}

func (n natsStatus) Watch(ctx context.Context, f events.WatchFilter) (StatusStream, error) {
	return events.Watch(ctx, n.js, n.subjects, f)
}

// DeadLetters is what the /dlq pages need; the implementation is shared
// with `coinsaga dlq` so that both follow the same rules.
type DeadLetters interface {
	// List returns the dead letters f selects, oldest first, without
	// bodies.
	List(ctx context.Context, f LetterFilter) ([]Letter, error)
	// Get returns one dead letter with its body; ErrNoLetter if gone.
	Get(ctx context.Context, seq uint64) (Letter, error)
	// Replay replays what f selects (dryRun: says what it would do),
	// calling each once per dead letter as it goes.
	Replay(ctx context.Context, f LetterFilter, dryRun bool, each func(Result)) error
	// Purge deletes what f selects (dryRun: changes nothing).
	Purge(ctx context.Context, f LetterFilter, dryRun bool, each func(Result)) error
}

// LetterFilter selects dead letters; the zero value selects all.
type LetterFilter struct {
	Reasons    []events.Reason
	MgID       string
	OutOrderID string
	Since      time.Time
	Seqs       []uint64
	Limit      int
}

// Letter is a dead letter as the stream stored it.
type Letter struct {
	events.DeadLetter
	StoredAt time.Time
	Header   map[string][]string
}

// At is when the order failed, or when the letter was stored if its
// Coinsaga-Failed-At header is missing.
func (l Letter) At() time.Time {
	if !l.FailedAt.IsZero() {
		return l.FailedAt
	}
	return l.StoredAt
}

// Outcome is what a replay or purge did with one dead letter.
type Outcome string

const (
	Replayed  Outcome = "replayed"
	Completed Outcome = "already completed" // removed; nothing charged
	Skipped   Outcome = "skipped"           // left in place, Message says why
	Failed    Outcome = "failed"            // left in place, Message says why
	Purged    Outcome = "purged"
)

// Result is one dead letter's outcome.
type Result struct {
	Seq        uint64
	OutOrderID string
	Outcome    Outcome
	Message    string
}
