package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
)

// ErrStoreLost: the store is new (missing or empty) but JetStream holds
// work that only an earlier store can finish: intents the worker consumer
// acknowledged (their orders lived in that store) or status events a
// worker wrote. Starting empty would strand those orders, debited bills
// among them, with nobody to confirm or refund them.
var ErrStoreLost = errors.New("the store is missing or empty, but JetStream holds an earlier store's work")

// PriorWork is what JetStream remembers of orders a store recorded.
type PriorWork struct {
	// IntentsTaken is the stream sequence up to which the shared worker
	// consumer has delivered intents (each recorded in a store first).
	IntentsTaken uint64
	// StatusEvents is the last sequence of the status stream: every event
	// in it was written by a worker for an order in its store.
	StatusEvents uint64
}

// Any reports whether an earlier store did any work.
func (p PriorWork) Any() bool { return p.IntentsTaken > 0 || p.StatusEvents > 0 }

// ReadPriorWork asks JetStream what earlier stores did under s's prefix.
// Missing streams or consumer mean no work.
func ReadPriorWork(ctx context.Context, nc *nats.Conn, s events.Subjects) (PriorWork, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return PriorWork{}, err
	}
	var p PriorWork
	cons, err := js.Consumer(ctx, s.IntentsStream(), events.ConsumerName)
	switch {
	case err == nil:
		info := cons.CachedInfo()
		p.IntentsTaken = max(info.Delivered.Stream, info.AckFloor.Stream)
	case !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, jetstream.ErrConsumerNotFound):
		return p, fmt.Errorf("read consumer %s: %w", events.ConsumerName, err)
	}
	st, err := js.Stream(ctx, s.StatusStream())
	switch {
	case err == nil:
		p.StatusEvents = st.CachedInfo().State.LastSeq
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return p, fmt.Errorf("read stream %s: %w", s.StatusStream(), err)
	}
	return p, nil
}

// CheckNewStore refuses to start a new, empty store where JetStream shows
// that an earlier store did work under the same prefix: the usual causes
// are a deleted or truncated database file, a volume that was not
// mounted, or a restore that went wrong. A deliberate fresh start skips
// this check (serve --init-store).
func CheckNewStore(ctx context.Context, nc *nats.Conn, s events.Subjects, storePath string) error {
	p, err := ReadPriorWork(ctx, nc, s)
	if err != nil {
		return fmt.Errorf("checking for an earlier store's work: %w", err)
	}
	if !p.Any() {
		return nil
	}
	return fmt.Errorf("%w: %s has no orders, yet consumer %s has taken intents up to sequence %d and stream %s holds %d status events; restore the database file (or mount its volume), or start with --init-store to begin with an empty store on purpose (orders in the lost store are then left unfinished)",
		ErrStoreLost, storePath, events.ConsumerName, p.IntentsTaken, s.StatusStream(), p.StatusEvents)
}
