package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/progress"
	"github.com/coinsaga/coinsaga/worker"
)

// measureBaselines measures both ceilings and the measured run's ratios
// to them.
func (r *run) measureBaselines(ctx context.Context, res *Result) error {
	r.logf("measuring the provider-call ceiling: %d orders' calls, %d at a time", r.cfg.Orders, r.cfg.Concurrency)
	if err := r.setFaults(ctx, r.cfg.LatencyMS, 0); err != nil {
		return fmt.Errorf("sandbox faults: %w", err)
	}
	cpuBefore := cpuTime()
	pc, err := r.providerCeiling(ctx)
	if err != nil {
		return err
	}
	res.ProviderCeiling = round3(pc)
	if r.t.InProcess && res.CPUmsPerOrder > 0 {
		// The sandbox runs in this process too: this is both sides of
		// every call, as in the measured run.
		ceilingCPU := float64((cpuTime() - cpuBefore).Microseconds()) / 1000 / float64(r.cfg.Orders)
		res.ProviderCeilingCPUms = round3(ceilingCPU)
		res.RatioProviderCPU = round3(ceilingCPU / res.CPUmsPerOrder)
	}
	r.logf("measuring the JetStream ceiling: %d intent-sized messages published, consumed and acked", r.cfg.Orders)
	jc, err := r.jetstreamCeiling(ctx)
	if err != nil {
		return err
	}
	res.JetStreamCeiling = round3(jc)
	if pc > 0 {
		res.RatioProvider = round3(res.OrdersPerSec / pc)
	}
	if jc > 0 {
		res.RatioJetStream = round3(res.OrdersPerSec / jc)
	}
	return nil
}

// providerCeiling makes the calls of a successful order, the worker's own
// (worker.OrderCalls), for Orders orders straight against the providers,
// Concurrency at a time: no queue, no store. It returns orders/s.
func (r *run) providerCeiling(ctx context.Context) (float64, error) {
	if r.t.SUD == nil {
		return 0, errors.New("provider ceiling: no providers to call")
	}
	n := r.cfg.Orders
	gen := r.gen("c" + r.cfg.Run)
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	bar := progress.New(r.cfg.Log, n, "provider ceiling")
	defer bar.Done()
	started := time.Now()
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil || firstErr.Load() != nil {
					return
				}
				// Decoded from the bytes, as the worker receives it.
				in, err := events.DecodeIntent(gen.msg(i).Data)
				if err == nil {
					err = worker.OrderCalls(ctx, r.t.SUD, r.t.Wallets, &in)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				bar.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(started)
	if p := firstErr.Load(); p != nil {
		return 0, fmt.Errorf("provider ceiling: %w", *p)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}

// jetstreamCeiling publishes Orders intent-sized messages to a scratch
// stream configured like the intents stream, consumes and acks each, and
// returns messages/s from the first publish to the last ack.
func (r *run) jetstreamCeiling(ctx context.Context) (float64, error) {
	s, run := r.cfg.Subjects, r.cfg.Run
	prefix := strings.TrimSuffix(s.Intents(), ".intents.>")
	name := strings.TrimSuffix(s.IntentsStream(), "_INTENTS") + "_BENCH_" + strings.ToUpper(run)
	subject := prefix + ".benchscratch." + run
	js, err := jetstream.New(r.t.Pub, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return 0, fmt.Errorf("jetstream ceiling: %w", err)
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{subject}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Duplicates: events.DefaultDuplicateWindow, Discard: jetstream.DiscardOld,
	})
	if err != nil {
		return 0, fmt.Errorf("jetstream ceiling: scratch stream: %w", err)
	}
	defer func() { _ = js.DeleteStream(context.WithoutCancel(ctx), name) }()
	sjs, err := jetstream.New(r.t.Sub)
	if err != nil {
		return 0, fmt.Errorf("jetstream ceiling: %w", err)
	}
	cons, err := sjs.CreateOrUpdateConsumer(ctx, name, jetstream.ConsumerConfig{
		Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: 20000,
	})
	if err != nil {
		return 0, fmt.Errorf("jetstream ceiling: consumer: %w", err)
	}
	n := r.cfg.Orders
	gen := r.gen("j" + run)
	var acked atomic.Int64
	done := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if acked.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(256))
	if err != nil {
		return 0, fmt.Errorf("jetstream ceiling: consume: %w", err)
	}
	defer cc.Stop()
	bar := progress.New(r.cfg.Log, n, "jetstream ceiling")
	defer bar.Done()
	started := time.Now()
	for i := 0; i < n; i++ {
		m := gen.msg(i)
		m.Subject = subject
		if err := publishWaiting(ctx, js, m); err != nil {
			return 0, fmt.Errorf("jetstream ceiling: publish: %w", err)
		}
	}
	timeout := time.NewTimer(r.cfg.Timeout)
	defer timeout.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-timeout.C:
		return 0, fmt.Errorf("jetstream ceiling: %d of %d messages acked within %s", acked.Load(), n, r.cfg.Timeout)
	}
	elapsed := time.Since(started)
	bar.Add(n)
	return float64(n) / elapsed.Seconds(), nil
}

// publishWaiting publishes m asynchronously; when the acks outstanding
// reach the limit for longer than the stall wait (a loaded machine), it
// waits for them to come in and tries again instead of failing the run.
func publishWaiting(ctx context.Context, js jetstream.JetStream, m *nats.Msg) error {
	for {
		_, err := js.PublishMsgAsync(m)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return err
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
