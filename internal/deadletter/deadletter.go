// Package deadletter is what an operator does with dead letters: the
// intents that need a person, kept in the stream <PREFIX>_DLQ until they
// are replayed or purged. It selects them (Filter, List, Count), shows one
// with the player's secrets masked (Get), replays them under the replay
// policy (Replay) and deletes them (Purge), for the coinsaga CLI and the
// operator console alike. It also words them for an operator (WriteTable,
// WriteJSONLines, WriteLetter, Printer), so that whoever prints a dead
// letter prints it the same way. The masking rule itself is
// events.MaskSecrets; how a dead letter is written is the worker's.
package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
)

var (
	// ErrNoStream says the dead-letter stream does not exist: no worker
	// has run on this NATS yet, or the subject prefix differs.
	ErrNoStream = errors.New("no dead-letter stream")
	// ErrNotFound says a dead letter is not in the stream: already
	// replayed or purged, or it never existed.
	ErrNotFound = errors.New("dead letter not found")
	// ErrUnfiltered is Purge refusing a filter that selects every dead
	// letter without the All option.
	ErrUnfiltered = errors.New("refusing to purge every dead letter without All")
	// ErrInterrupted is Replay or Purge stopped by its context before the
	// last selected letter; the letters not reached are untouched.
	ErrInterrupted = errors.New("interrupted")
)

// Letter is one dead letter as an operator sees it. Body is the intent
// with the player's secrets masked, filled only by Get and by List with
// Bodies; the exact bytes, secrets included, are left out of every
// field, so that encoding a Letter cannot leak them (see Raw).
type Letter struct {
	Seq      uint64    `json:"seq"`
	StoredAt time.Time `json:"stored_at"`
	// FailedAt is when the order failed (Coinsaga-Failed-At); zero when
	// the header is missing or damaged. At falls back to StoredAt.
	FailedAt time.Time     `json:"failed_at,omitzero"`
	Reason   events.Reason `json:"reason"`
	// Code is the error code that opens Error ("retries_exhausted" of
	// "retries_exhausted: busy"), or "" when Error opens with none.
	Code            string      `json:"code,omitempty"`
	Error           string      `json:"error,omitempty"`
	State           string      `json:"state,omitempty"`
	Attempts        int         `json:"attempts"`
	Subject         string      `json:"subject"`
	OriginalSubject string      `json:"original_subject,omitempty"`
	OutOrderID      string      `json:"out_order_id,omitempty"`
	MgID            string      `json:"mg_id,omitempty"`
	RoomID          string      `json:"room_id,omitempty"`
	TruncatedFrom   int         `json:"truncated_from,omitempty"` // the intent's size when the body is only its first bytes
	Size            int         `json:"size"`                     // the body's size in bytes, as stored
	Header          nats.Header `json:"headers,omitempty"`
	Body            string      `json:"body,omitempty"` // masked by events.MaskSecrets

	raw []byte
}

// At is when the order failed, or when the dead letter was stored if its
// Coinsaga-Failed-At header is missing or damaged.
func (l Letter) At() time.Time {
	if !l.FailedAt.IsZero() {
		return l.FailedAt
	}
	return l.StoredAt
}

// Raw is the exact body, secrets included: for an operator who asked for
// it in so many words (coinsaga dlq show --raw), never for display. It is
// nil for a letter listed without bodies.
func (l Letter) Raw() []byte { return l.raw }

// FromDeadLetter makes a Letter of a dead letter read with
// events.DeadLetterFromMsg, stored at stored with headers h. Its Body is
// left empty; mask it with Masked.
func FromDeadLetter(d events.DeadLetter, stored time.Time, h nats.Header) Letter {
	return Letter{Seq: d.StreamSeq, StoredAt: stored, FailedAt: d.FailedAt, Reason: d.Reason, Code: errorCode(d.Error),
		Error: d.Error, State: d.State, Attempts: d.Attempts, Subject: d.Subject, OriginalSubject: d.OriginalSubject,
		OutOrderID: d.OutOrderID, MgID: d.MgID, RoomID: d.RoomID, TruncatedFrom: d.TruncatedFrom,
		Size: len(d.Data), Header: h, raw: d.Data}
}

// Masked returns l with Body set to its raw body, secrets masked.
func (l Letter) Masked() Letter {
	l.Body = string(events.MaskSecrets(l.raw))
	return l
}

func fromMsg(m *jetstream.RawStreamMsg) Letter {
	return FromDeadLetter(events.DeadLetterFromMsg(m), m.Time, m.Header)
}

// errorCode reads the code the worker puts before ": " in Coinsaga-Error
// (docs/contract.md, section 5); free text opens with no code.
func errorCode(s string) string {
	code, _, ok := strings.Cut(s, ": ")
	if !ok || code == "" {
		return ""
	}
	for _, r := range code {
		if (r < 'a' || r > 'z') && r != '_' {
			return ""
		}
	}
	return code
}

// Queue is the dead-letter stream of one subject prefix. It is safe for
// concurrent use; each call reads the stream afresh.
type Queue struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream
	subjects events.Subjects
}

// Open finds the dead-letter stream of subjects on nc. It returns an
// error wrapping ErrNoStream when there is none.
func Open(ctx context.Context, nc *nats.Conn, subjects events.Subjects) (*Queue, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	stream, err := js.Stream(ctx, subjects.DLQStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w %s", ErrNoStream, subjects.DLQStream())
	}
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", subjects.DLQStream(), err)
	}
	return &Queue{nc: nc, js: js, stream: stream, subjects: subjects}, nil
}

// Subjects are the subjects and streams the queue works on.
func (q *Queue) Subjects() events.Subjects { return q.subjects }

// Entry is a Letter for a listing: what an operator scans a queue by,
// without the headers and the body, which holds the player's secrets.
// `coinsaga dlq list --json` prints one per line.
type Entry struct {
	Seq             uint64        `json:"seq"`
	Subject         string        `json:"subject"`
	Reason          events.Reason `json:"reason"`
	State           string        `json:"state,omitempty"`
	Error           string        `json:"error,omitempty"`
	Attempts        int           `json:"attempts"`
	FailedAt        *time.Time    `json:"failed_at,omitempty"`
	StoredAt        time.Time     `json:"stored_at"`
	OriginalSubject string        `json:"original_subject,omitempty"`
	MgID            string        `json:"mg_id,omitempty"`
	RoomID          string        `json:"room_id,omitempty"`
	OutOrderID      string        `json:"out_order_id,omitempty"`
}

// Entry returns l's listing entry, times in UTC.
func (l Letter) Entry() Entry {
	e := Entry{Seq: l.Seq, Subject: l.Subject, Reason: l.Reason, State: l.State, Error: l.Error,
		Attempts: l.Attempts, StoredAt: l.StoredAt.UTC(), OriginalSubject: l.OriginalSubject,
		MgID: l.MgID, RoomID: l.RoomID, OutOrderID: l.OutOrderID}
	if !l.FailedAt.IsZero() {
		t := l.FailedAt.UTC()
		e.FailedAt = &t
	}
	return e
}
