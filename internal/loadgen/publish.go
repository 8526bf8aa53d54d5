package loadgen

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/progress"
)

// pacer spaces the publishes of a run: order i is due i/rate seconds after
// start, so a slow publish is caught up rather than slowing the whole run
// down. A rate of 0 publishes flat out.
type pacer struct {
	start time.Time
	rate  float64
}

func (p pacer) due(i int) time.Time {
	if p.rate <= 0 {
		return p.start
	}
	return p.start.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))
}

// wait returns when order i is due, or with ctx's error if ctx ends first.
func (p pacer) wait(ctx context.Context, i int) error {
	d := time.Until(p.due(i))
	if p.rate <= 0 || d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// publishAll publishes tr's orders at rate (0: flat out) and waits until
// every one reached its target state or the timeout passed.
func (r *run) publishAll(ctx context.Context, tr *tracker, rate float64, label string) error {
	bar := progress.New(r.cfg.Log, tr.n, label)
	tr.bar = bar
	defer bar.Done()
	// A failed async publish (usually an ack that timed out under load) is
	// retried synchronously with the same Nats-Msg-Id, which JetStream
	// dedupes if the first attempt was stored after all.
	var retryMu sync.Mutex
	var retry []*nats.Msg
	js, err := jetstream.New(r.t.Pub, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, _ error) {
			retryMu.Lock()
			retry = append(retry, m)
			retryMu.Unlock()
		}))
	if err != nil {
		return fmt.Errorf("bench jetstream: %w", err)
	}

	gen := r.gen(tr.prefix)
	pace := pacer{start: time.Now(), rate: rate}
	for i := 0; i < tr.n; i++ {
		if err := pace.wait(ctx, i); err != nil {
			return err
		}
		m := gen.msg(i)
		tr.published(i)
		if _, err := js.PublishMsgAsync(m); err != nil {
			retryMu.Lock()
			retry = append(retry, m)
			retryMu.Unlock()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(r.cfg.Timeout):
	}
	retryMu.Lock()
	again := retry
	retry = nil
	retryMu.Unlock()
	for _, m := range again {
		i, ok := tr.index(m.Header.Get(events.HeaderMsgID))
		if !ok {
			continue
		}
		tr.retried.Add(1)
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := js.PublishMsg(pctx, m)
		cancel()
		if err != nil {
			r.logf("publishing %s failed twice: %v", m.Header.Get(events.HeaderMsgID), err)
			tr.publishFailed(i)
		}
	}
	timeout := time.NewTimer(r.cfg.Timeout)
	defer timeout.Stop()
	select {
	case <-tr.done:
	case <-timeout.C:
		tr.timedOut.Store(true)
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
