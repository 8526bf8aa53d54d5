package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// PublishIntent is how a game server submits a purchase: it decodes and
// validates data first and returns the *InvalidError or *ValidationError
// without publishing anything, so a bad intent fails at its source rather
// than in a dead-letter queue. A valid intent is published unchanged to
// s.Intent(mg_id, room_id) with Nats-Msg-Id set to its out_order_id, so a
// retry within the duplicate window is stored once (PubAck.Duplicate).
// c may be nil to skip the catalog checks.
func PublishIntent(ctx context.Context, js jetstream.JetStream, s Subjects, data []byte, c *Catalog) (*jetstream.PubAck, Intent, error) {
	in, err := DecodeIntent(data)
	if err != nil {
		return nil, Intent{}, err
	}
	if err := in.Validate(c); err != nil {
		return nil, in, err
	}
	subject := s.Intent(in.MgID, in.RoomID)
	ack, err := js.Publish(ctx, subject, data, jetstream.WithMsgID(in.OutOrderID))
	if err != nil {
		return nil, in, fmt.Errorf("publish intent %s to %s: %w", in.OutOrderID, subject, err)
	}
	return ack, in, nil
}

// PublishResult is what JetStream said of a published intent.
type PublishResult struct {
	OutOrderID string
	Subject    string // <prefix>.intents.<mg_id>.<room_id>
	Stream     string // the intents stream, e.g. COINSAGA_INTENTS
	Sequence   uint64 // its sequence in the stream
	// Duplicate: the stream already held an intent with this out_order_id
	// from within its duplicate window (2 minutes by default) and kept
	// that one; nothing new was stored. A retry after a lost ack ends so.
	Duplicate bool
}

// Publish is how a Go game server submits a purchase: it validates in
// against the default catalog (the worker's), encodes it as JSON and
// publishes it to s.Intent(in.MgID, in.RoomID) with Nats-Msg-Id set to
// in.OutOrderID, and returns once JetStream has stored it. An intent the
// worker would refuse is not published: the error is then an
// *InvalidError or a *ValidationError saying why. Any other error is
// NATS's; publishing the same intent again is safe, since a copy stored
// twice within the duplicate window is kept once, and a worker absorbs a
// later one. Follow the order with WaitTerminal or Watch.
func Publish(ctx context.Context, js jetstream.JetStream, s Subjects, in Intent) (PublishResult, error) {
	res := PublishResult{OutOrderID: in.OutOrderID}
	data, err := json.Marshal(in)
	if err != nil {
		// Only a Payload that is not JSON fails to encode.
		return res, &InvalidError{Reason: "payload is not valid JSON"}
	}
	ack, _, err := PublishIntent(ctx, js, s, data, DefaultCatalog())
	if err != nil {
		return res, err
	}
	res.Subject = s.Intent(in.MgID, in.RoomID)
	res.Stream, res.Sequence, res.Duplicate = ack.Stream, ack.Sequence, ack.Duplicate
	return res, nil
}

// MsgID is the Nats-Msg-Id of a status event, <out_order_id>:<seq>, so a
// relay that publishes the same event twice stores it once.
func (e StatusEvent) MsgID() string {
	return e.OutOrderID + ":" + strconv.Itoa(e.Seq)
}

// CheckSubject says whether an intent arrived where its body says it
// belongs: subject must be exactly s.Intent(in.MgID, in.RoomID). An intent
// published on one room's subject that names another room in its body is
// ambiguous (which room's game server sent it, which room's subscribers
// should hear of it?), so the worker refuses it with the *InvalidError this
// returns, whose reason names both. PublishIntent and Publish always build
// the subject from the body.
func (in Intent) CheckSubject(s Subjects, subject string) error {
	want := s.Intent(in.MgID, in.RoomID)
	if subject == want {
		return nil
	}
	base := strings.TrimSuffix(s.Intents(), ">")
	rest, ok := strings.CutPrefix(subject, base)
	mg, room, two := strings.Cut(rest, ".")
	if !ok || !two || strings.Contains(room, ".") {
		return &InvalidError{Reason: fmt.Sprintf("subject %s is not %s<mg_id>.<room_id>; the body names mg_id %s room_id %s, whose subject is %s",
			subject, base, in.MgID, in.RoomID, want)}
	}
	return &InvalidError{Reason: fmt.Sprintf("subject %s names mg_id %s room_id %s but the body names mg_id %s room_id %s; publish it on %s",
		subject, mg, room, in.MgID, in.RoomID, want)}
}
