package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/store"
)

const (
	// acceptBatch bounds the intents recorded in one store call.
	acceptBatch = 256
	// retryDelivery is how long JetStream waits before redelivering an
	// intent we could not record (store or NATS trouble). Never a bare Nak:
	// an immediate redelivery would only fail again.
	retryDelivery = 2 * time.Second
)

// consumer is the running intent consumer.
type consumer struct {
	cc   jetstream.ConsumeContext
	done chan struct{}
}

// stop stops pulling and waits until the intents already pulled are
// recorded and acked (or left to redelivery).
func (c *consumer) stop() {
	c.cc.Drain()
	<-c.cc.Closed()
	<-c.done
}

// consume starts the shared durable pull consumer. Messages are handed to
// one accept loop that records them in batches.
func (w *Worker) consume(ctx context.Context) (*consumer, error) {
	s := w.cfg.Subjects
	cons, err := w.js.CreateOrUpdateConsumer(ctx, s.IntentsStream(), jetstream.ConsumerConfig{
		Durable:       events.ConsumerName,
		FilterSubject: s.Intents(),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 20000,
	})
	if err != nil {
		return nil, fmt.Errorf("worker: consumer %s: %w", events.ConsumerName, err)
	}
	msgs := make(chan jetstream.Msg, 2*acceptBatch)
	cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m }, jetstream.PullMaxMessages(acceptBatch))
	if err != nil {
		return nil, fmt.Errorf("worker: consume: %w", err)
	}
	c := &consumer{cc: cc, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		w.acceptLoop(msgs, cc.Closed())
	}()
	return c, nil
}

// acceptLoop takes whatever intents have arrived, up to acceptBatch, and
// records them together: one transaction for many orders.
func (w *Worker) acceptLoop(msgs <-chan jetstream.Msg, closed <-chan struct{}) {
	batch := make([]jetstream.Msg, 0, acceptBatch)
	for {
		select {
		case m := <-msgs:
			batch = append(batch, m)
		case <-closed:
			// Consume delivers nothing after Closed; take what is buffered.
			for {
				select {
				case m := <-msgs:
					batch = append(batch, m)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				w.acceptBatch(batch)
			}
			return
		}
	fill:
		for len(batch) < acceptBatch {
			select {
			case m := <-msgs:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		w.acceptBatch(batch)
		batch = batch[:0]
	}
}

// pending is one intent on its way to becoming an order.
type pending struct {
	msg    jetstream.Msg
	intent events.Intent
	hash   string
	req    store.Accept
	replay bool
}

// acceptBatch decodes and validates a batch of intents, records the orders
// in one store call, and acks each message once its outcome is durable.
func (w *Worker) acceptBatch(msgs []jetstream.Msg) {
	if !w.owning() {
		// Our lease may have lapsed: another worker may own these intents.
		for _, m := range msgs {
			nakWithDelay(m)
		}
		return
	}
	ctx, cancel := context.WithTimeout(w.stepCtx, 30*time.Second)
	defer cancel()
	now := w.now()
	var batch []pending
	for _, m := range msgs {
		p, ok := w.decode(ctx, m, now)
		if ok {
			batch = append(batch, p)
		}
	}
	if len(batch) == 0 {
		return
	}
	reqs := make([]store.Accept, len(batch))
	for i := range batch {
		reqs[i] = batch[i].req
	}
	// Taken before the write: a row known current then is current after
	// it, since no one else runs a brand-new order (see Worker.current).
	acceptedAt := w.now()
	e := w.leaseEpoch() // before the write: the lease the orders may be owned under
	results, err := w.cfg.Store.Accept(ctx, reqs)
	if err != nil && errors.Is(err, store.ErrLeaseLost) {
		// Nothing was written; another worker may take them meanwhile.
		w.noteLeaseLost(err)
		for _, p := range batch {
			nakWithDelay(p.msg)
		}
		return
	}
	if err != nil {
		w.storeWriteFailed(fmt.Sprintf("%d intents, redelivered in %s", len(batch), retryDelivery), err)
		for _, p := range batch {
			nakWithDelay(p.msg)
		}
		return
	}
	w.storeWriteOK()
	wake(w.wakeRelay)
	// New orders are due now; the scheduler starts them with the version
	// the store gave them.
	defer wake(w.wakeSched)
	for i, r := range results {
		p := batch[i]
		if r.Created {
			if !p.req.Order.NextRunAt.IsZero() { // rejected orders never run
				w.decoded.put(p.intent.OutOrderID, p.hash, p.intent)
				created := p.req.Order
				created.Version = 1 // what Accept stored
				w.fresh.putAt(created, acceptedAt, e)
			}
			if w.metrics != nil {
				w.metrics.intentReceived(string(p.req.Order.State))
			}
			ack(p.msg)
			continue
		}
		if err := w.existing(ctx, p, r.Existing); err != nil {
			w.log.Error("handling a repeated intent; it will be redelivered", "out_order_id", p.intent.OutOrderID, "err", err)
			nakWithDelay(p.msg)
			continue
		}
		ack(p.msg)
	}
}

// decode turns a message into an accept request, or disposes of it: an
// intent that cannot become an order (it does not decode, or its subject
// names another game or room than its body) goes to the dead-letter
// stream (reason invalid) and is acked once the dead letter is stored.
func (w *Worker) decode(ctx context.Context, m jetstream.Msg, now time.Time) (pending, bool) {
	in, err := events.DecodeIntent(m.Data())
	if err == nil {
		// The subject's mg_id and room_id must be the body's: no order is
		// made of an intent whose room is in doubt.
		err = in.CheckSubject(w.cfg.Subjects, m.Subject())
	}
	if err != nil {
		if w.deadLetterNow(ctx, m, "", w.cfg.Subjects.DeadLetterInvalid(), events.ReasonInvalid, err.Error()) == nil {
			ack(m)
		} else {
			nakWithDelay(m)
		}
		return pending{}, false
	}
	p := pending{msg: m, intent: in, hash: in.Hash(), replay: m.Headers().Get(events.HeaderReplay) != ""}
	o := store.Order{
		OutOrderID: in.OutOrderID, MgID: in.MgID, RoomID: in.RoomID, FromUID: in.FromUID,
		Provider: in.Payment.Provider, Amount: in.Payment.Amount,
		Intent: m.Data(), IntentSubject: m.Subject(), BodyHash: p.hash,
		Seq: 1, CreatedAt: now, UpdatedAt: now,
	}
	out := decideAccept(o, in.Validate(w.cfg.Catalog), now)
	o = out.next
	hist := store.HistoryEntry{At: now, State: o.State, Step: "accept", Attempt: 1,
		ErrorCode: o.ErrorCode, Error: o.Error, Detail: out.detail}
	outbox := []store.Message{statusMessage(w.cfg.Subjects, o, now)}
	if out.dead != "" {
		outbox = append(outbox, deadLetter(w.cfg.Subjects, o, out.dead, now))
	}
	p.req = store.Accept{Order: o, History: hist, Outbox: outbox}
	return p, true
}

// existing carries out what decideRepeat decides for an intent whose
// out_order_id is already an order: a duplicate is absorbed, a replay
// resumes a stopped order, and a different body under the same id is a
// conflict.
func (w *Worker) existing(ctx context.Context, p pending, o store.Order) error {
	log := w.log.With("out_order_id", o.OutOrderID)
	now := w.now()
	kind, out := decideRepeat(o, p.hash == o.BodyHash, p.replay,
		func() error { return p.intent.Validate(w.cfg.Catalog) }, now)
	switch kind {
	case repeatConflict:
		log.Warn("intent conflicts with an existing order; original untouched", "state", o.State)
		if w.metrics != nil {
			w.metrics.intentReceived("conflict")
		}
		subject := w.cfg.Subjects.DeadLetter(p.intent.MgID, p.intent.RoomID, p.intent.OutOrderID)
		return w.deadLetterNow(ctx, p.msg, o.OutOrderID, subject, out.dead, out.detail)
	case repeatAbsorbed:
		if !p.replay {
			log.Debug(out.detail, "state", o.State)
			if w.metrics != nil {
				w.metrics.intentReceived("duplicate")
			}
		} else {
			log.Info(out.detail, "state", o.State)
		}
		return nil
	}
	if w.isRunning(o.OutOrderID) {
		return nil
	}
	resumed := out.next
	var outbox []store.Message
	if out.dead != "" {
		outbox = append(outbox, statusMessage(w.cfg.Subjects, resumed, now), deadLetter(w.cfg.Subjects, resumed, out.dead, now))
	}
	stored, err := w.cfg.Store.Apply(ctx, store.Transition{From: o, To: resumed, Outbox: outbox,
		History: []store.HistoryEntry{{At: now, State: resumed.State, Step: "replay", Attempt: 1, Detail: out.detail}}})
	if errors.Is(err, store.ErrStale) {
		return nil // someone else moved it; that change wins
	}
	if err != nil {
		return fmt.Errorf("resume %s: %w", o.OutOrderID, err)
	}
	log.Info("replay resumes order", "state", o.State, "step", o.Step)
	if len(outbox) > 0 {
		wake(w.wakeRelay)
	}
	if stored.Step == StepConfirm && !stored.NextRunAt.IsZero() {
		// Polls wait in memory, not in the store's due index.
		w.wait(stored, nil, log)
		wake(w.wakeSched)
		return nil
	}
	if !stored.NextRunAt.IsZero() && !w.tryStart(stored, w.now()) {
		w.fresh.markStore() // no slot now: the scheduler finds it due
		wake(w.wakeSched)
	}
	return nil
}

// deadLetterNow publishes a dead letter for an intent that has no order to
// carry it through the outbox, and waits for JetStream to store it before
// the caller acks the intent. The Nats-Msg-Id is derived from the intent's stream
// sequence, so a redelivery cannot make two dead letters.
//
// An intent too large to go out whole with the dead-letter headers goes
// out cut to fit (fitDeadLetter). A failed publish is logged here; the
// caller leaves the intent to redelivery, so the dead letter is never lost.
func (w *Worker) deadLetterNow(ctx context.Context, m jetstream.Msg, outOrderID, subject string, reason events.Reason, why string) error {
	meta, err := m.Metadata()
	if err != nil {
		w.log.Warn("dead-lettering an intent failed; it will be redelivered", "reason", reason, "subject", m.Subject(), "err", err)
		return fmt.Errorf("dead letter: metadata: %w", err)
	}
	log := w.log.With("reason", reason, "subject", m.Subject(), "stream_seq", meta.Sequence.Stream)
	if outOrderID != "" {
		log = log.With("out_order_id", outOrderID)
	}
	dl := nats.NewMsg(subject)
	dl.Header.Set(events.HeaderMsgID, string(reason)+":"+strconv.FormatUint(meta.Sequence.Stream, 10))
	dl.Header.Set(events.HeaderReason, string(reason))
	dl.Header.Set(events.HeaderError, headerSafe(why))
	dl.Header.Set(events.HeaderAttempts, strconv.FormatUint(meta.NumDelivered, 10))
	dl.Header.Set(events.HeaderFailedAt, w.now().UTC().Format(time.RFC3339Nano))
	dl.Header.Set(events.HeaderOriginalSubject, m.Subject())
	limit := w.deadLetterLimit()
	cut := fitDeadLetter(dl, m.Data(), limit)
	_, err = w.js.PublishMsg(ctx, dl)
	if tooLarge(err) {
		// NATS takes less than we measured against: the dead-letter
		// stream has a smaller max_msg_size, or a reconnect found a server
		// with a smaller max_payload. Cut to the limit read now, once.
		limit = w.learnDeadLetterLimit(ctx)
		cut = fitDeadLetter(dl, m.Data(), limit)
		_, err = w.js.PublishMsg(ctx, dl)
	}
	if err != nil {
		log.Warn("dead-lettering an intent failed; it will be redelivered", "error", why, "err", err)
		return fmt.Errorf("dead letter: %w", err)
	}
	if cut {
		log.Warn("dead letter truncated: the intent and its headers exceed what NATS takes in one message",
			"intent_bytes", len(m.Data()), "kept_bytes", len(dl.Data), "limit", limit)
	}
	if w.metrics != nil {
		w.metrics.deadLetters.WithLabelValues(string(reason)).Inc()
		if reason == events.ReasonInvalid {
			w.metrics.intentReceived("invalid")
		}
	}
	log.Warn("intent dead-lettered", "error", why)
	return nil
}

// ack acknowledges a message. A lost ack only means a redelivery, which the
// duplicate check absorbs.
func ack(m jetstream.Msg) { _ = m.Ack() }

func nakWithDelay(m jetstream.Msg) { _ = m.NakWithDelay(retryDelivery) }
