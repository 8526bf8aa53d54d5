package sqlcommon

import (
	"context"
	"runtime"
)

// Group commit: callers hand their writes to a committer goroutine, which
// takes one request, then every request already waiting (up to a batch),
// and runs them in one transaction: one fsync or WAL append for the lot,
// which is what makes many concurrent sagas cheap. The drivers differ in
// what a request carries (W) and in how a batch commits.

// Request is one caller's write W waiting for its transaction.
type Request[W any] struct {
	Ctx  context.Context
	Work W
	done chan error // buffered: a committer never blocks on a caller that left
}

// NewRequest is a request for w on behalf of a caller with ctx.
func NewRequest[W any](ctx context.Context, w W) *Request[W] {
	return &Request[W]{Ctx: ctx, Work: w, done: make(chan error, 1)}
}

// Done reports the outcome of r's transaction to its caller.
func (r *Request[W]) Done(err error) { r.done <- err }

// Answer is where the caller receives what Done reported.
func (r *Request[W]) Answer() <-chan error { return r.done }

// Queue carries requests from callers to the committers. The channel is
// unbuffered so a request is either taken into a batch and answered, or
// still with its sender when the queue closes.
type Queue[W any] struct {
	reqs   chan *Request[W]
	quit   <-chan struct{}
	max    int
	closed error
}

// NewQueue returns a queue whose batches hold up to max requests; once
// quit is closed, committers stop and callers get closed.
func NewQueue[W any](max int, quit <-chan struct{}, closed error) *Queue[W] {
	return &Queue[W]{reqs: make(chan *Request[W]), quit: quit, max: max, closed: closed}
}

// Submit hands w to a committer and waits for its transaction to end. If
// ctx ends first, the caller gets ctx.Err() while the write may still
// commit.
func (q *Queue[W]) Submit(ctx context.Context, w W) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := NewRequest(ctx, w)
	select {
	case q.reqs <- r:
	case <-q.quit:
		return q.closed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run is a committer: until quit, it takes a batch and calls commit with
// it; commit must answer (Done) every request of the batch.
func (q *Queue[W]) Run(commit func(batch []*Request[W])) {
	batch := make([]*Request[W], 0, q.max)
	for {
		select {
		case <-q.quit:
			return
		case r := <-q.reqs:
			batch = append(batch[:0], r)
		}
		q.gather(&batch)
		commit(batch)
		clear(batch)
	}
}

// Live answers the requests of batch whose caller already gave up with
// their ctx error and returns the others. Nothing is written for a caller
// that left, which narrows the "may still commit" window to requests
// cancelled mid-transaction.
func Live[W any](batch []*Request[W]) []*Request[W] {
	live := make([]*Request[W], 0, len(batch))
	for _, r := range batch {
		if err := r.Ctx.Err(); err != nil {
			r.Done(err)
			continue
		}
		live = append(live, r)
	}
	return live
}

// gatherYields bounds how many times gather lets other goroutines run
// before it commits what it has.
const gatherYields = 4

// gather adds the requests already waiting to batch. When it found some,
// it yields the processor and looks again: on a busy worker the sagas
// whose writes are about to arrive are runnable right now, and letting
// them run first turns many one-write commits into one. On an idle worker
// nothing else is runnable, the yield returns at once, and a lone write
// commits without delay.
func (q *Queue[W]) gather(batch *[]*Request[W]) {
	for yields := 0; ; yields++ {
		took := 0
	fill:
		for len(*batch) < q.max {
			select {
			case r := <-q.reqs:
				*batch = append(*batch, r)
				took++
			default:
				break fill
			}
		}
		if len(*batch) >= q.max || yields == gatherYields || (took == 0 && yields > 0) {
			return
		}
		runtime.Gosched()
	}
}
