package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// WatchFilter selects the status events to watch; an empty id matches
// every value. By default only events published after Watch returns are
// delivered; DeliverAll starts from the oldest event the stream still
// holds (24 hours by default).
type WatchFilter struct {
	MgID       string
	RoomID     string
	OutOrderID string
	DeliverAll bool
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
	policy := jetstream.DeliverNewPolicy
	if f.DeliverAll {
		policy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, s.StatusStream(), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.StatusFilter(f.MgID, f.RoomID, f.OutOrderID)},
		DeliverPolicy:  policy,
	})
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
