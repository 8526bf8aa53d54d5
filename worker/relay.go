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
//
// A message too large for NATS would hold the cursor for ever, so none is
// let to: a dead letter is cut to fit (fitDeadLetter), and a status event
// that can never fit is dropped with an error log.
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
	if w.shared != nil {
		return w.relayShared(ctx)
	}
	msgs, err := w.cfg.Store.PendingOutbox(ctx, w.outbox.cursor, relayBatch)
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	acked, cursor, pubErr := w.publish(ctx, msgs, w.outbox.cursor)
	w.outbox.cursor = cursor
	w.outbox.forget(w, acked)
	return len(msgs), pubErr
}

// relayShared is relayOnce on a store shared by several workers: no
// cursor (ids are not handed out in commit order across sessions); the
// store claims the rows, this worker's and those without an owner, while
// they are published, and deletes the acknowledged ones itself.
func (w *Worker) relayShared(ctx context.Context) (int, error) {
	read := 0
	_, err := w.shared.st.RelayOutbox(ctx, relayBatch, func(ctx context.Context, msgs []store.Message) ([]int64, error) {
		read = len(msgs)
		acked, _, err := w.publish(ctx, msgs, 0)
		return acked, err
	})
	return read, err
}

// publish sends msgs and waits for their acks. It returns the ids done
// with (acknowledged, or dropped as too large to ever go out), the cursor
// moved from cursor past every message up to the first that was not, and
// the first error.
func (w *Worker) publish(ctx context.Context, msgs []store.Message, cursor int64) ([]int64, int64, error) {
	var err error
	futures := make([]jetstream.PubAckFuture, len(msgs))
	sent := make([]*nats.Msg, len(msgs))
	limit := w.deadLetterLimit()
	for i, m := range msgs {
		sent[i] = natsMsg(m)
		if isDeadLetter(m) {
			fitDeadLetter(sent[i], m.Data, limit)
		}
		futures[i], err = w.js.PublishMsgAsync(sent[i])
		if err != nil && tooLarge(err) && !isDeadLetter(m) {
			// Nothing can be cut from a status event; holding it would
			// hold every event after it, of every order, for ever.
			w.dropOutboxMessage(m, limit, err)
			futures[i], err = nil, nil
			continue
		}
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
	gap := false
wait:
	for i, f := range futures {
		if f == nil { // dropped: done with, like an acknowledged one
			acked = append(acked, msgs[i].ID)
			if !gap {
				cursor = msgs[i].ID
			}
			continue
		}
		select {
		case <-f.Ok():
			acked = append(acked, msgs[i].ID)
			if !gap {
				cursor = msgs[i].ID
			}
			if isDeadLetter(msgs[i]) {
				if w.metrics != nil {
					w.metrics.deadLetters.WithLabelValues(msgs[i].Header[events.HeaderReason]).Inc()
				}
				if sent[i].Header.Get(events.HeaderTruncated) != "" {
					w.log.Warn("dead letter truncated: the intent and its headers exceed what NATS takes in one message",
						"subject", msgs[i].Subject, "msg_id", msgs[i].MsgID, "intent_bytes", len(msgs[i].Data),
						"kept_bytes", len(sent[i].Data), "limit", limit)
				}
			}
		case e := <-f.Err():
			switch {
			case tooLarge(e) && isDeadLetter(msgs[i]):
				// The dead-letter stream takes less than the server: learn
				// how much, and the next pass cuts the letter to fit.
				w.learnDeadLetterLimit(ctx)
			case tooLarge(e):
				w.dropOutboxMessage(msgs[i], limit, e)
				acked = append(acked, msgs[i].ID)
				if !gap {
					cursor = msgs[i].ID
				}
				continue
			}
			pubErr, gap = e, true
		case <-deadline.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	if pubErr == nil {
		pubErr = err
	}
	return acked, cursor, pubErr
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

// dropOutboxMessage gives up on an outbox message that is not a dead
// letter and that NATS refused as too large: it can never go out, and
// while it waited every message after it would wait too. Status events are
// a few hundred bytes, so this takes a max_payload or max_msg_size set far
// too small; the order itself is unharmed in the store.
func (w *Worker) dropOutboxMessage(m store.Message, limit int64, err error) {
	w.log.Error("outbox message dropped: larger than NATS takes in one message; raise max_payload or the stream's max_msg_size",
		"subject", m.Subject, "msg_id", m.MsgID, "bytes", len(m.Data), "limit", limit, "err", err)
}

// isDeadLetter reports whether an outbox message is a dead letter, which
// may be cut to fit, rather than a status event, which may not.
func isDeadLetter(m store.Message) bool { return m.Header[events.HeaderReason] != "" }

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
