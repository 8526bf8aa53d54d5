package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// WatchFilter selects the status events to watch; an empty id matches
// every value. By default only events published after Watch returns are
// delivered; at most one of DeliverAll, Since and LastPerOrder says to
// start earlier.
type WatchFilter struct {
	MgID       string
	RoomID     string
	OutOrderID string
	// DeliverAll starts from the oldest event the stream still holds (24
	// hours by default).
	DeliverAll bool
	// Since, when not zero, starts from the first event stored at or after
	// it.
	Since time.Time
	// LastPerOrder starts with the last event of each order the filter
	// matches, that is its current state, then follows new events. With
	// OutOrderID set it is the one event that says where that order is.
	LastPerOrder bool
}

// Watched is one status event as delivered: Raw is the message body
// exactly as published, Subject its subject, Seq its status-stream
// sequence.
type Watched struct {
	Event   StatusEvent
	Raw     []byte
	Subject string
	Seq     uint64
}

// Watcher follows status events on an ordered consumer: an ephemeral
// consumer that the client recreates after a gap or a reconnect, so events
// arrive in stream order, each once, without any acking. A Watcher is for
// one goroutine.
type Watcher struct {
	iter jetstream.MessagesContext
}

// Watch starts watching the status events that f selects.
func Watch(ctx context.Context, js jetstream.JetStream, s Subjects, f WatchFilter) (*Watcher, error) {
	for _, id := range [...]struct{ name, v string }{
		{"mg_id", f.MgID}, {"room_id", f.RoomID}, {"out_order_id", f.OutOrderID},
	} {
		if id.v != "" && !ValidID(id.v) {
			return nil, fmt.Errorf("watch: %s %.64q is not a valid id", id.name, id.v)
		}
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.StatusFilter(f.MgID, f.RoomID, f.OutOrderID)},
	}
	switch starts := btoi(f.DeliverAll) + btoi(!f.Since.IsZero()) + btoi(f.LastPerOrder); {
	case starts > 1:
		return nil, errors.New("watch: give at most one of DeliverAll, Since and LastPerOrder")
	case f.DeliverAll:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	case !f.Since.IsZero():
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &f.Since
	case f.LastPerOrder:
		cfg.DeliverPolicy = jetstream.DeliverLastPerSubjectPolicy
	default:
		// "New events" as a sequence, not DeliverNewPolicy: the ordered
		// consumer keeps the policy when it recreates itself before the
		// first event (after a reconnect, say), and "new" then would skip
		// what was published while it was away.
		st, err := js.Stream(ctx, s.StatusStream())
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", s.StatusStream(), err)
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, st.CachedInfo().State.LastSeq+1
	}
	cons, err := js.OrderedConsumer(ctx, s.StatusStream(), cfg)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", s.StatusStream(), err)
	}
	iter, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", s.StatusStream(), err)
	}
	return &Watcher{iter: iter}, nil
}

// Next blocks until the next event or until ctx is done. A body that is
// not a status event is returned in Raw together with an error, and the
// watch goes on: call Next again. After Stop, Next returns
// jetstream.ErrMsgIteratorClosed.
func (w *Watcher) Next(ctx context.Context) (Watched, error) {
	msg, err := w.iter.Next(jetstream.NextContext(ctx))
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return Watched{}, ctxErr
			}
		}
		return Watched{}, fmt.Errorf("watch next: %w", err)
	}
	w0 := Watched{Raw: msg.Data(), Subject: msg.Subject()}
	if meta, err := msg.Metadata(); err == nil {
		w0.Seq = meta.Sequence.Stream
	}
	if err := json.Unmarshal(w0.Raw, &w0.Event); err != nil {
		return w0, fmt.Errorf("status event %d on %s: %w", w0.Seq, w0.Subject, err)
	}
	return w0, nil
}

// Stop ends the watch and releases its consumer. It is safe to call more
// than once.
func (w *Watcher) Stop() { w.iter.Stop() }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// WaitTerminal waits until the order outOrderID is in a terminal state
// (State.Terminal) and returns the event that says so. It starts from the
// order's last stored event, so an order that ended before the call
// returns at once, and a replayed order's earlier failure does not count
// once a later event followed it. It reads the status stream for as long
// as ctx allows: bound ctx, because an order older than the stream's age
// limit (24 hours by default), or one never published, has no events to
// wait for. Bodies that are not status events are skipped.
func WaitTerminal(ctx context.Context, js jetstream.JetStream, s Subjects, outOrderID string) (StatusEvent, error) {
	if !ValidID(outOrderID) {
		return StatusEvent{}, fmt.Errorf("wait for order: out_order_id %.64q is not a valid id", outOrderID)
	}
	w, err := Watch(ctx, js, s, WatchFilter{OutOrderID: outOrderID, LastPerOrder: true})
	if err != nil {
		return StatusEvent{}, err
	}
	defer w.Stop()
	for {
		got, err := w.Next(ctx)
		if err != nil {
			if got.Subject != "" {
				continue // a message that is not a status event
			}
			return StatusEvent{}, fmt.Errorf("wait for order %s: %w", outOrderID, err)
		}
		if got.Event.OutOrderID == outOrderID && got.Event.State.Terminal() {
			return got.Event, nil
		}
	}
}
