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
// with `coinsaga dlq` (internal/deadletter) so that both follow the same
// rules. Its calls return an error wrapping ErrNoStream while the stream
// does not exist.
type DeadLetters interface {
	// List returns up to f.Limit dead letters f selects past the sequence
	// after, oldest first, without bodies.
	List(ctx context.Context, f LetterFilter, after uint64) ([]Letter, error)
	// Count says how many dead letters f selects.
	Count(ctx context.Context, f LetterFilter) (int, error)
	// Get returns one dead letter with its masked body; ErrNoLetter if
	// it is gone.
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

// Letter is a dead letter as an operator sees it. The intent's exact
// bytes are not in it: Body is masked (events.MaskSecrets), and only Get
// fills it.
type Letter struct {
	Seq             uint64
	StoredAt        time.Time
	FailedAt        time.Time
	Reason          events.Reason
	Error           string
	State           string
	Attempts        int
	Subject         string
	OriginalSubject string
	OutOrderID      string
	MgID            string
	RoomID          string
	TruncatedFrom   int
	Size            int
	Header          map[string][]string
	Body            string
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
