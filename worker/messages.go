package worker

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/store"
)

// statusMessage builds the outbox message announcing o's current state as
// event number o.Seq.
func statusMessage(s events.Subjects, o store.Order, at time.Time) store.Message {
	ev := events.StatusEvent{
		OutOrderID: o.OutOrderID, OrderID: o.SudOrderID, MgID: o.MgID, RoomID: o.RoomID,
		FromUID: o.FromUID, State: o.State, Seq: o.Seq, At: at.UTC(),
		Provider: o.Provider, BillNo: o.BillNo, Amount: o.Amount,
	}
	switch {
	case o.State == events.StateDebited || o.State == events.StateCompleted:
		if o.HasPayBalance {
			b := o.PayBalance
			ev.Balance = &b
		}
	case o.State.Terminal():
		// The failure states, every terminal one but completed, say why.
		ev.Error = &events.EventError{Code: o.ErrorCode, Message: o.Error}
	}
	data, err := json.Marshal(ev)
	if err != nil {
		panic("worker: status event does not marshal: " + err.Error()) // plain struct: cannot happen
	}
	return store.Message{Subject: s.Status(o.MgID, o.RoomID, o.OutOrderID), MsgID: ev.MsgID(), Data: data}
}

// deadLetter builds the outbox message that hands o to an operator. The
// body is the original intent, byte for byte, so that a replay republishes
// exactly what the game server sent; the relay cuts it only if NATS cannot
// take it whole (see fitDeadLetter).
func deadLetter(s events.Subjects, o store.Order, reason events.Reason, at time.Time) store.Message {
	return store.Message{
		Subject: s.DeadLetter(o.MgID, o.RoomID, o.OutOrderID),
		// One dead letter per status event at most, so the event's seq
		// names it uniquely across replays.
		MsgID: o.OutOrderID + ":dlq:" + strconv.Itoa(o.Seq),
		Header: map[string]string{
			events.HeaderReason:          string(reason),
			events.HeaderError:           headerSafe(o.ErrorCode + ": " + o.Error),
			events.HeaderState:           string(o.State),
			events.HeaderAttempts:        strconv.Itoa(o.Attempt + 1),
			events.HeaderFailedAt:        at.UTC().Format(time.RFC3339Nano),
			events.HeaderOriginalSubject: o.IntentSubject,
		},
		Data: o.Intent,
	}
}

// headerSafe keeps a header value on one line and of modest size.
func headerSafe(s string) string {
	const max = 1024
	b := []byte(s)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	if len(b) > max {
		b = append(b[:max-3], "..."...)
	}
	return string(b)
}

// deadLetterMargin is left free below the limit when a dead letter's body
// is cut, so that a header a few bytes longer than measured still fits.
const deadLetterMargin = 256

// fitDeadLetter sets m's body to body, unless headers and body together
// exceed limit bytes (what NATS takes in one message; 0 means no limit):
// then the body is as many of body's first bytes as fit, and
// HeaderTruncated gives body's size, so that no replay mistakes the cut
// body for the intent. It reports whether it cut. m's headers must be
// complete: they count against the limit.
func fitDeadLetter(m *nats.Msg, body []byte, limit int64) bool {
	m.Header.Del(events.HeaderTruncated)
	m.Data = body
	if limit <= 0 || payloadSize(m) <= limit {
		return false
	}
	m.Header.Set(events.HeaderTruncated, strconv.Itoa(len(body)))
	m.Data = nil
	// With headers alone near the limit, the body goes entirely; the
	// headers still say what the intent was and why it failed.
	keep := min(max(limit-payloadSize(m)-deadLetterMargin, 0), int64(len(body)))
	m.Data = body[:keep]
	return true
}

// payloadSize is what the server measures against its max_payload and a
// stream against its max_msg_size: the encoded headers and the body.
func payloadSize(m *nats.Msg) int64 {
	return int64(m.Size() - len(m.Subject) - len(m.Reply))
}

// tooLarge reports whether a publish failed because the message is larger
// than the client's server (max_payload) or the stream (max_msg_size)
// takes: sending it again unchanged can never succeed.
func tooLarge(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum)
}
