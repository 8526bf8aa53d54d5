package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
)

// ensureStreams creates or checks the streams, and waits out a JetStream
// that cannot answer yet. A worker started while a cluster elects a
// stream leader (a node was just killed, the whole cluster is restarting)
// sees timeouts and "no responders" for a few seconds; giving up then
// would leave an orchestrator restarting it in a loop, so it retries with
// backoff until ctx ends. What retrying cannot mend (another deployment's
// stream under the same name, too little storage, JetStream disabled) is
// returned at once.
func (w *Worker) ensureStreams(ctx context.Context) ([]events.StreamDifference, error) {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(250*time.Millisecond),
		backoff.WithMaxInterval(5*time.Second),
		backoff.WithMaxElapsedTime(0),
	)
	for attempt := 1; ; attempt++ {
		diffs, err := events.EnsureStreams(ctx, w.js, w.cfg.Subjects, w.cfg.Streams)
		if err == nil || ctx.Err() != nil || !streamErrorPasses(err) {
			return diffs, err
		}
		// No responders is what a node whose JetStream is still starting
		// answers, and what a server without JetStream always will.
		if jsOn, _ := w.cfg.Conn.ConnectedServerJetStream(); errors.Is(err, nats.ErrNoResponders) && w.cfg.Conn.IsConnected() && !jsOn {
			return nil, fmt.Errorf("%w: the NATS server at %s has no JetStream; start it with JetStream enabled (nats-server -js)", err, w.cfg.Conn.ConnectedUrlRedacted())
		}
		delay := b.NextBackOff()
		w.log.Warn("JetStream does not answer yet; trying again", "attempt", attempt, "retry_in", delay.Round(time.Millisecond), "err", err)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("%w (stopped waiting for JetStream: %w)", err, context.Cause(ctx))
		case <-timer.C:
		}
	}
}

// streamErrorPasses tells a JetStream that is busy or between leaders from
// one that refuses for good.
func streamErrorPasses(err error) bool {
	switch {
	case errors.Is(err, events.ErrStreamCollision),
		errors.Is(err, events.ErrStreamStorage),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount),
		errors.Is(err, context.Canceled):
		return false
	}
	return true
}
