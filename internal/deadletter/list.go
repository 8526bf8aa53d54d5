package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// idleWait bounds the wait for the next dead letter while reading the
// stream. Reading stops on its own at the last message; this only ends a
// read whose last message was deleted under it.
const idleWait = 2 * time.Second

// List returns the dead letters that f selects, oldest first, as the
// stream stood when called: dead letters that arrive meanwhile (say, a
// replayed order failing again) wait for the next call rather than make
// a replay loop. Options: Bodies, After, OnMissing.
func (q *Queue) List(ctx context.Context, f Filter, opts ...Option) ([]Letter, error) {
	o := newOptions(opts)
	letters, err := q.list(ctx, f, o)
	if err != nil || !o.bodies {
		return letters, err
	}
	for i := range letters {
		letters[i] = letters[i].Masked()
	}
	return letters, nil
}

// Count returns how many dead letters f selects, its Limit aside: the
// size of the whole listing a page of List is part of. Options: After,
// OnMissing.
func (q *Queue) Count(ctx context.Context, f Filter, opts ...Option) (int, error) {
	o := newOptions(opts)
	if !f.Narrows() && o.after == 0 {
		info, err := q.stream.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("dead-letter stream: %w", err)
		}
		return int(info.State.Msgs), nil
	}
	o.bodies = false
	f.Limit = 0
	letters, err := q.list(ctx, f, o)
	return len(letters), err
}

// Get returns the dead letter seq with its body masked, or an error
// wrapping ErrNotFound. Its Raw is the exact body.
func (q *Queue) Get(ctx context.Context, seq uint64) (Letter, error) {
	m, err := q.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Letter{}, fmt.Errorf("dead letter %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return Letter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return fromMsg(m).Masked(), nil
}

// list selects without masking: Replay needs the raw bodies only.
func (q *Queue) list(ctx context.Context, f Filter, o options) ([]Letter, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	if len(f.Seqs) > 0 {
		return q.bySeq(ctx, f, o)
	}
	info, err := q.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 || o.after >= last {
		return nil, nil
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{f.subject(q.subjects)},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		HeadersOnly:       !o.bodies,
		InactiveThreshold: 30 * time.Second,
	}
	switch {
	case o.after > 0:
		start := o.after + 1
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	case !f.Since.IsZero():
		// A dead letter is stored after its order failed, so nothing
		// stored before Since can have failed after it.
		start := f.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := q.js.OrderedConsumer(ctx, q.subjects.DLQStream(), cfg)
	if err != nil {
		return nil, fmt.Errorf("reading dead letters: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return nil, fmt.Errorf("reading dead letters: %w", err)
	}
	defer it.Stop()
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
		return nil, nil
	}
	var out []Letter
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := it.Next(jetstream.NextMaxWait(idleWait))
		if errors.Is(err, nats.ErrTimeout) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading dead letters: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("reading dead letters: %w", err)
		}
		seq := meta.Sequence.Stream
		if seq > last {
			return out, nil
		}
		l := fromMsg(&jetstream.RawStreamMsg{Subject: m.Subject(), Sequence: seq,
			Header: m.Headers(), Data: m.Data(), Time: meta.Timestamp})
		if !o.bodies {
			// Headers only: the server says how large the body is.
			l.Size, _ = strconv.Atoi(m.Headers().Get(nats.MsgSize))
		}
		if f.Match(l) {
			out = append(out, l)
			if f.Limit > 0 && len(out) >= f.Limit {
				return out, nil
			}
		}
		if meta.NumPending == 0 || seq == last {
			return out, nil
		}
	}
}

// bySeq fetches the dead letters named by f.Seqs, then applies the other
// fields of f to them.
func (q *Queue) bySeq(ctx context.Context, f Filter, o options) ([]Letter, error) {
	var out []Letter
	for _, seq := range f.seqs() {
		if seq <= o.after {
			continue
		}
		m, err := q.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			if o.missing != nil {
				o.missing(seq)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		l := fromMsg(m)
		if !o.bodies {
			l.raw = nil // as a headers-only read would have it
		}
		if f.Match(l) {
			out = append(out, l)
			if f.Limit > 0 && len(out) >= f.Limit {
				break
			}
		}
	}
	return out, nil
}
