package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
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

// StatusStream is one watch: Next blocks for the next event. An event
// whose Raw is one line of JSON may come with Event left zero: the live
// feed sends Raw as it is and reads from it only what a filter needs.
type StatusStream interface {
	Next(ctx context.Context) (events.Watched, error)
	Stop()
}

// poller is a StatusStream that hands over the events it has already
// received without waiting, so that the live feed can take them in one
// go each time it writes instead of being woken for every event. ok is
// false when none is waiting; an error with an empty Raw says the watch
// ended.
type poller interface {
	Poll() (ev events.Watched, ok bool, err error)
}

// NATSStatus follows the status stream of subjects on js.
func NATSStatus(js jetstream.JetStream, subjects events.Subjects) StatusSource {
	return natsStatus{js: js, subjects: subjects}
}

type natsStatus struct {
	js       jetstream.JetStream
	subjects events.Subjects
}

// Watch follows new events with a plain NATS subscription on the status
// subjects: the relay publishes every event there, and the server hands
// it to a subscriber as it passes, at a fraction of what a JetStream
// consumer costs per message (no consumer to create and signal, no
// message to load back from the stream, no pull requests, no flow control
// or heartbeats). Only a watch that starts earlier than now (an order's
// last event, DeliverAll, Since) reads the stream with an ordered
// consumer (events.Watch).
//
// What the subscription gives up, a live feed can do without: an event
// published while the connection is down is not seen (JetStream keeps it;
// `coinsaga watch` and the order page show it), an event the relay
// publishes twice (a retried publish the stream dropped as a duplicate)
// is shown twice, and Watched.Seq is 0.
func (n natsStatus) Watch(ctx context.Context, f events.WatchFilter) (StatusStream, error) {
	if f.DeliverAll || !f.Since.IsZero() || f.LastPerOrder {
		return events.Watch(ctx, n.js, n.subjects, f)
	}
	return subscribeStatus(ctx, n.js.Conn(), n.subjects, f)
}

// liveBuffer is how many events a subscription holds for the feed
// between two of its writes (100 ms): at 1,000 orders/s an order's four
// to six events fill a tenth of it. Past it the subscription drops events
// (the feed says how many).
const liveBuffer = 8192

// statusSub is a watch of new status events on a core NATS subscription.
type statusSub struct {
	sub  *nats.Subscription
	msgs chan *nats.Msg
}

func subscribeStatus(ctx context.Context, nc *nats.Conn, s events.Subjects, f events.WatchFilter) (*statusSub, error) {
	for _, id := range [...]struct{ name, v string }{
		{"mg_id", f.MgID}, {"room_id", f.RoomID}, {"out_order_id", f.OutOrderID},
	} {
		if id.v != "" && !events.ValidID(id.v) {
			return nil, fmt.Errorf("watch: %s %.64q is not a valid id", id.name, id.v)
		}
	}
	subject := s.StatusFilter(f.MgID, f.RoomID, f.OutOrderID)
	msgs := make(chan *nats.Msg, liveBuffer)
	sub, err := nc.ChanSubscribe(subject, msgs)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", subject, err)
	}
	// Once the server answers the flush it holds the subscription: every
	// event published from then on reaches it (the feed's "ready"). The
	// flush needs a deadline.
	flushCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := nc.FlushWithContext(flushCtx); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("watch %s: %w", subject, err)
	}
	return &statusSub{sub: sub, msgs: msgs}, nil
}

// errSubClosed: the subscription is gone (its connection closed).
var errSubClosed = errors.New("watch: status subscription closed")

// Next blocks for the next event until ctx ends.
func (w *statusSub) Next(ctx context.Context) (events.Watched, error) {
	for {
		select {
		case m := <-w.msgs:
			return watched(m)
		case <-ctx.Done():
			return events.Watched{}, ctx.Err()
		case <-time.After(time.Second):
			if !w.sub.IsValid() {
				return events.Watched{}, errSubClosed
			}
		}
	}
}

// Poll hands over an event already received, without waiting.
func (w *statusSub) Poll() (events.Watched, bool, error) {
	select {
	case m := <-w.msgs:
		ev, err := watched(m)
		return ev, true, err
	default:
		if !w.sub.IsValid() {
			return events.Watched{}, false, errSubClosed
		}
		return events.Watched{}, false, nil
	}
}

// Dropped says how many events the subscription dropped because its
// buffer was full.
func (w *statusSub) Dropped() int {
	n, _ := w.sub.Dropped()
	return n
}

// Stop ends the subscription; it is safe to call more than once.
func (w *statusSub) Stop() { _ = w.sub.Unsubscribe() }

// watched is m as the feed needs it: the body is checked to be JSON but
// not decoded, unless it spans lines (which one SSE data field cannot
// carry as it is).
func watched(m *nats.Msg) (events.Watched, error) {
	ev := events.Watched{Raw: m.Data, Subject: m.Subject}
	if !json.Valid(m.Data) {
		return ev, fmt.Errorf("status event on %s: not JSON", m.Subject)
	}
	if bytes.ContainsAny(m.Data, "\r\n") {
		if err := json.Unmarshal(m.Data, &ev.Event); err != nil {
			return ev, fmt.Errorf("status event on %s: %w", m.Subject, err)
		}
	}
	return ev, nil
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
