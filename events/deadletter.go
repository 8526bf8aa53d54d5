package events

import (
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is a dead-letter message as an operator sees it. Data is the
// original intent bytes, unchanged, which a replay republishes to
// OriginalSubject, unless TruncatedFrom is set: then the intent was too
// large to go out whole and Data is only its first bytes. MgID and
// OutOrderID come from the subject and are empty for the _invalid subject,
// where no order exists.
type DeadLetter struct {
	StreamSeq       uint64
	Subject         string
	Reason          Reason
	Error           string
	State           string
	Attempts        int
	FailedAt        time.Time
	OriginalSubject string
	Data            []byte
	OutOrderID      string
	MgID            string
	RoomID          string
	// TruncatedFrom is the original intent's size in bytes when Data holds
	// only its first bytes (HeaderTruncated), and 0 when Data is whole.
	TruncatedFrom int
}

// DeadLetterFromMsg reads a message of the dead-letter stream. Headers
// that are missing or malformed leave their field at the zero value rather
// than failing: an operator must be able to see and replay a dead letter
// even when a header was damaged.
func DeadLetterFromMsg(m *jetstream.RawStreamMsg) DeadLetter {
	d := DeadLetter{StreamSeq: m.Sequence, Subject: m.Subject, Data: m.Data}
	if h := m.Header; h != nil {
		d.Reason = Reason(h.Get(HeaderReason))
		d.Error = h.Get(HeaderError)
		d.State = h.Get(HeaderState)
		d.Attempts, _ = strconv.Atoi(h.Get(HeaderAttempts))
		if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderFailedAt)); err == nil {
			d.FailedAt = t
		}
		d.OriginalSubject = h.Get(HeaderOriginalSubject)
		d.TruncatedFrom = truncatedFrom(h.Get(HeaderTruncated), len(m.Data))
	}
	d.MgID, d.RoomID, d.OutOrderID = deadLetterIDs(m.Subject)
	return d
}

// deadLetterIDs reads <prefix>.dlq.<mg_id>.<room_id>.<out_order_id> from
// the end, because the prefix may itself hold dots.
func deadLetterIDs(subject string) (mgID, roomID, outOrderID string) {
	tokens := strings.Split(subject, ".")
	n := len(tokens)
	if n < 5 || tokens[n-4] != "dlq" {
		return "", "", ""
	}
	mg, room, order := tokens[n-3], tokens[n-2], tokens[n-1]
	if !ValidID(mg) || !ValidID(room) || !ValidID(order) {
		return "", "", ""
	}
	return mg, room, order
}

// truncatedFrom reads HeaderTruncated. A damaged value still marks the
// body as cut, since a replay must never take it for the whole intent:
// then the size is unknown and given as one more than the body holds.
func truncatedFrom(v string, have int) int {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > have {
		return n
	}
	return have + 1
}

// DeadLetterHeaders builds the headers of a dead letter from d's Reason,
// Error, State, Attempts, FailedAt, OriginalSubject and TruncatedFrom, so
// that the worker writes exactly what DeadLetterFromMsg reads. FailedAt is
// written in UTC with nanoseconds (RFC 3339). Line breaks in Error become
// spaces, as a header value cannot hold them.
func DeadLetterHeaders(d DeadLetter) nats.Header {
	h := nats.Header{}
	h.Set(HeaderReason, string(d.Reason))
	h.Set(HeaderError, headerSafe(d.Error))
	h.Set(HeaderAttempts, strconv.Itoa(d.Attempts))
	h.Set(HeaderOriginalSubject, d.OriginalSubject)
	if d.State != "" {
		h.Set(HeaderState, d.State)
	}
	if !d.FailedAt.IsZero() {
		h.Set(HeaderFailedAt, d.FailedAt.UTC().Format(time.RFC3339Nano))
	}
	if d.TruncatedFrom > 0 {
		h.Set(HeaderTruncated, strconv.Itoa(d.TruncatedFrom))
	}
	return h
}

func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}
