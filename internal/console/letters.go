package console

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/deadletter"
)

// NATSDeadLetters is the dead-letter service of `coinsaga dlq`
// (internal/deadletter) on the stream of subjects: the console replays
// and purges by the very same rules.
func NATSDeadLetters(nc *nats.Conn, subjects events.Subjects) DeadLetters {
	return &queue{nc: nc, subjects: subjects}
}

// queue opens the deadletter.Queue on first use: serve builds the console
// before its worker has created the streams.
type queue struct {
	nc       *nats.Conn
	subjects events.Subjects

	mu sync.Mutex
	q  *deadletter.Queue
}

func (d *queue) open(ctx context.Context) (*deadletter.Queue, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.q != nil {
		return d.q, nil
	}
	q, err := deadletter.Open(ctx, d.nc, d.subjects)
	if errors.Is(err, deadletter.ErrNoStream) {
		return nil, fmt.Errorf("%w: %w", ErrNoStream, err)
	}
	if err != nil {
		return nil, err
	}
	d.q = q
	return q, nil
}

func filterOf(f LetterFilter) deadletter.Filter {
	return deadletter.Filter{Reasons: f.Reasons, MgID: f.MgID, OutOrderID: f.OutOrderID, Since: f.Since, Seqs: f.Seqs, Limit: f.Limit}
}

func letterOf(l deadletter.Letter) Letter {
	return Letter{Seq: l.Seq, StoredAt: l.StoredAt, FailedAt: l.FailedAt, Reason: l.Reason, Error: l.Error, State: l.State,
		Attempts: l.Attempts, Subject: l.Subject, OriginalSubject: l.OriginalSubject, OutOrderID: l.OutOrderID,
		MgID: l.MgID, RoomID: l.RoomID, TruncatedFrom: l.TruncatedFrom, Size: l.Size, Header: l.Header, Body: l.Body}
}

func (d *queue) List(ctx context.Context, f LetterFilter, after uint64) ([]Letter, error) {
	q, err := d.open(ctx)
	if err != nil {
		return nil, err
	}
	ls, err := q.List(ctx, filterOf(f), deadletter.After(after))
	out := make([]Letter, 0, len(ls))
	for _, l := range ls {
		out = append(out, letterOf(l))
	}
	return out, err
}

func (d *queue) Count(ctx context.Context, f LetterFilter) (int, error) {
	q, err := d.open(ctx)
	if err != nil {
		return 0, err
	}
	return q.Count(ctx, filterOf(f))
}

func (d *queue) Get(ctx context.Context, seq uint64) (Letter, error) {
	q, err := d.open(ctx)
	if err != nil {
		return Letter{}, err
	}
	l, err := q.Get(ctx, seq)
	if errors.Is(err, deadletter.ErrNotFound) {
		return Letter{}, ErrNoLetter
	}
	if err != nil {
		return Letter{}, err
	}
	return letterOf(l), nil
}

func (d *queue) Replay(ctx context.Context, f LetterFilter, dryRun bool, each func(Result)) error {
	q, err := d.open(ctx)
	if err != nil {
		return err
	}
	_, err = q.Replay(ctx, filterOf(f), d.options(dryRun, each)...)
	return err
}

func (d *queue) Purge(ctx context.Context, f LetterFilter, dryRun bool, each func(Result)) error {
	q, err := d.open(ctx)
	if err != nil {
		return err
	}
	_, err = q.Purge(ctx, filterOf(f), d.options(dryRun, each)...)
	return err
}

// options reports each letter's outcome to each, and a selected letter
// that is gone (replayed or purged meanwhile) as skipped.
func (d *queue) options(dryRun bool, each func(Result)) []deadletter.Option {
	opts := []deadletter.Option{
		deadletter.OnProgress(func(p deadletter.Progress) {
			if p.Done > 0 {
				each(resultOf(p.Result))
			}
		}),
		deadletter.OnMissing(func(seq uint64) {
			each(Result{Seq: seq, Outcome: Skipped, Message: "no such dead letter: replayed or purged already"})
		}),
	}
	if dryRun {
		opts = append(opts, deadletter.DryRun())
	}
	return opts
}

func resultOf(r deadletter.Result) Result {
	out := Result{Seq: r.Letter.Seq, OutOrderID: r.Letter.OutOrderID, Message: r.Message()}
	switch {
	case r.Outcome == deadletter.Replayed:
		out.Outcome = Replayed
	case r.Outcome == deadletter.AlreadyCompleted:
		out.Outcome = Completed
	case r.Outcome == deadletter.Purged:
		out.Outcome = Purged
	case r.Outcome.Skipped():
		out.Outcome = Skipped
	default:
		out.Outcome = Failed
	}
	if r.StateErr != nil {
		out.Message += " (no worker told the order's state: " + r.StateErr.Error() + "; a worker never charges a completed order again)"
	}
	return out
}
