package worker

import (
	"context"
	"sync"
	"sync/atomic"
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
//
// It reads past a cursor, the id of the last message it published, so the
// next batch goes out while the deletes of the one before are still
// waiting for a group commit: a status event waits for one publish round,
// not for a publish and a delete. A message whose publish failed sets the
// cursor back to just before it; those after it go out again, which
// JetStream's de-duplication (same Nats-Msg-Id) absorbs.
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

// relayOnce publishes up to relayBatch outbox messages past the cursor and
// hands those JetStream acknowledged to the deleter. It returns how many it
// read. Only the relay goroutine (or flushOutbox after it stopped) calls it.
func (w *Worker) relayOnce(ctx context.Context) (int, error) {
	msgs, err := w.cfg.Store.PendingOutbox(ctx, w.outbox.cursor, relayBatch)
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
	// The cursor moves past every message up to the first one that is not
	// acknowledged (failed, timed out, or never sent).
	cursor, gap := w.outbox.cursor, false
wait:
	for i, f := range futures {
		select {
		case <-f.Ok():
			acked = append(acked, msgs[i].ID)
			if !gap {
				cursor = msgs[i].ID
			}
			if w.metrics != nil && msgs[i].Header[events.HeaderReason] != "" {
				w.metrics.deadLetters.WithLabelValues(msgs[i].Header[events.HeaderReason]).Inc()
			}
		case e := <-f.Err():
			pubErr, gap = e, true
		case <-deadline.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	w.outbox.cursor = cursor
	w.outbox.forget(w, acked)
	if pubErr == nil {
		pubErr = err
	}
	return len(msgs), pubErr
}

// flushOutbox relays until the outbox is empty or the time is up: the last
// thing a draining worker does, so subscribers hear every final state.
// Messages published but not yet deleted when the time runs out go out
// again at the next start, and de-duplication drops them.
func (w *Worker) flushOutbox(limit time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	defer w.outbox.wait(ctx)
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

// relayState is the relay's cursor and its deleter. Deletes run one at a
// time in the background; ids acknowledged meanwhile wait and go in the
// next one, so a busy relay deletes in large batches.
type relayState struct {
	cursor int64 // relay goroutine only

	mu       sync.Mutex
	toDelete []int64
	deleting bool
	idle     chan struct{} // closed when no delete runs; nil before the first

	// dlqMaxMsgSize is the dead-letter stream's max_msg_size, learned when
	// the stream refused a dead letter as too large; 0 until then. The
	// consumer and the relay both read it.
	dlqMaxMsgSize atomic.Int64
}

// deadLetterLimit is the largest dead letter, headers and body, that NATS
// takes: the server's max_payload, or the dead-letter stream's
// max_msg_size once that is known to be smaller.
func (w *Worker) deadLetterLimit() int64 {
	limit := w.cfg.Conn.MaxPayload()
	if s := w.outbox.dlqMaxMsgSize.Load(); s > 0 && (limit <= 0 || s < limit) {
		limit = s
	}
	return limit
}

// learnDeadLetterLimit reads the dead-letter stream's max_msg_size, after
// the stream refused a dead letter as too large, and returns the new
// deadLetterLimit. On a failed read it stays as it was, and the next
// refusal asks again.
func (w *Worker) learnDeadLetterLimit(ctx context.Context) int64 {
	stream, err := w.js.Stream(ctx, w.cfg.Subjects.DLQStream())
	if err != nil {
		w.log.Warn("reading the dead-letter stream's max_msg_size", "err", err)
		return w.deadLetterLimit()
	}
	if s := stream.CachedInfo().Config.MaxMsgSize; s > 0 {
		w.outbox.dlqMaxMsgSize.Store(int64(s))
	}
	return w.deadLetterLimit()
}

// forget schedules ids for deletion.
func (r *relayState) forget(w *Worker, ids []int64) {
	if len(ids) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.toDelete = append(r.toDelete, ids...)
	if r.deleting {
		return
	}
	r.deleting = true
	r.idle = make(chan struct{})
	go r.deleteLoop(w, r.idle)
}

func (r *relayState) deleteLoop(w *Worker, idle chan struct{}) {
	defer close(idle)
	for {
		r.mu.Lock()
		ids := r.toDelete
		r.toDelete = nil
		if len(ids) == 0 {
			r.deleting = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(w.stepCtx, 30*time.Second)
		err := w.cfg.Store.DeleteOutbox(ctx, ids)
		cancel()
		if err != nil {
			// Keep the ids for the next delete, which the relay's next
			// published batch starts. Until then the rows stay: the cursor is
			// past them, and after a restart de-duplication drops them.
			w.log.Warn("deleting published outbox messages; trying again with the next batch", "count", len(ids), "err", err)
			r.mu.Lock()
			r.toDelete = append(ids, r.toDelete...)
			r.deleting = false
			r.mu.Unlock()
			return
		}
	}
}

// wait returns when no delete runs any more, or when ctx ends.
func (r *relayState) wait(ctx context.Context) {
	r.mu.Lock()
	idle := r.idle
	r.mu.Unlock()
	if idle == nil {
		return
	}
	select {
	case <-idle:
	case <-ctx.Done():
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
