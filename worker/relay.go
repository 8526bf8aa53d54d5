package worker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/store"
)

const (
	relayBatch = 512
	// relayAckWait bounds the wait for one batch's publish acks; what is
	// not acked by then stays in the outbox for the next pass.
	relayAckWait = 5 * time.Second
)

// relay publishes the outbox until ctx is cancelled.
func (w *Worker) relay(ctx context.Context) {
	idle := time.NewTimer(0)
	defer idle.Stop()
	for {
		n, err := w.relayOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("relaying the outbox", "err", err)
		}
		if n == relayBatch && err == nil {
			continue // more is waiting
		}
		idle.Reset(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			return
		case <-w.wakeRelay:
		case <-idle.C:
		}
	}
}

// relayOnce publishes up to relayBatch outbox messages and deletes those
// JetStream acknowledged. It returns how many it read.
func (w *Worker) relayOnce(ctx context.Context) (int, error) {
	msgs, err := w.cfg.Store.PendingOutbox(ctx, relayBatch)
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		futures[i], err = w.js.PublishMsgAsync(natsMsg(m))
		if err != nil {
			futures = futures[:i]
			break
		}
	}
	deadline := time.NewTimer(relayAckWait)
	defer deadline.Stop()
	acked := make([]int64, 0, len(futures))
	var pubErr error
wait:
	for i, f := range futures {
		select {
		case <-f.Ok():
			acked = append(acked, msgs[i].ID)
			if w.metrics != nil && msgs[i].Header[events.HeaderReason] != "" {
				w.metrics.deadLetters.WithLabelValues(msgs[i].Header[events.HeaderReason]).Inc()
			}
		case e := <-f.Err():
			pubErr = e
		case <-deadline.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	if len(acked) > 0 {
		if derr := w.cfg.Store.DeleteOutbox(context.WithoutCancel(ctx), acked); derr != nil {
			return len(msgs), derr
		}
	}
	if pubErr == nil {
		pubErr = err
	}
	return len(msgs), pubErr
}

// flushOutbox relays until the outbox is empty or the time is up: the last
// thing a draining worker does, so subscribers hear every final state.
func (w *Worker) flushOutbox(limit time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for ctx.Err() == nil {
		n, err := w.relayOnce(ctx)
		if n == 0 && err == nil {
			return
		}
		if err != nil {
			w.log.Warn("flushing the outbox at shutdown; the rest goes out at the next start", "err", err)
			return
		}
	}
}

func natsMsg(m store.Message) *nats.Msg {
	nm := nats.NewMsg(m.Subject)
	nm.Data = m.Data
	for k, v := range m.Header {
		nm.Header.Set(k, v)
	}
	nm.Header.Set(events.HeaderMsgID, m.MsgID)
	return nm
}
