package store

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/jmoiron/sqlx"
)

// writeReq is one caller's write, run inside a shared transaction. run
// returns an error only for a failure that must abort the transaction (a
// SQL error); outcomes of the request itself (ErrStale, an existing order)
// are recorded by run in its closure and read by the caller once done
// reports the commit.
type writeReq struct {
	ctx  context.Context
	run  runFunc
	done chan error // buffered: the committer never blocks on a caller that left
}

// submit hands run to the committer and waits for its transaction to end.
// If ctx ends first, the caller gets ctx.Err() while the write may still
// commit.
func (s *SQLite) submit(ctx context.Context, run runFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeReq{ctx: ctx, run: run, done: make(chan error, 1)}
	select {
	case s.reqs <- r:
	case <-s.quit:
		return ErrClosed
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

// commitLoop is the only writer. It takes one request, then every request
// already waiting (up to max), and commits them together: one fsync (or WAL
// append) for the lot, which is what makes many concurrent sagas cheap.
// The channel is unbuffered so a request is either taken into a batch and
// answered, or still with its sender when Close stops the loop.
func (s *SQLite) commitLoop() {
	defer close(s.done)
	batch := make([]*writeReq, 0, s.max)
	for {
		select {
		case <-s.quit:
			return
		case r := <-s.reqs:
			batch = append(batch[:0], r)
		}
		s.gather(&batch)
		s.commit(batch)
		clear(batch)
	}
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
func (s *SQLite) gather(batch *[]*writeReq) {
	for yields := 0; ; yields++ {
		took := 0
	fill:
		for len(*batch) < s.max {
			select {
			case r := <-s.reqs:
				*batch = append(*batch, r)
				took++
			default:
				break fill
			}
		}
		if len(*batch) >= s.max || yields == gatherYields || (took == 0 && yields > 0) {
			return
		}
		runtime.Gosched()
	}
}

func (s *SQLite) commit(batch []*writeReq) {
	// A caller that already gave up gets its ctx error and nothing is
	// written for it, which narrows the "may still commit" window to
	// requests cancelled mid-transaction.
	live := make([]*writeReq, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	// The transaction must not die with one caller's ctx: it carries the
	// others' writes too. busy_timeout bounds how long it can wait.
	ctx := context.Background()
	fail := func(err error) {
		// Every caller gets the error and decides; the worker reports a
		// store that cannot write (at most one line every few seconds), so
		// this line would only repeat it hundreds of times a second.
		s.log.Debug("store group commit failed", "writes", len(live), "err", err)
		for _, r := range live {
			r.done <- err
		}
	}
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("store: begin group commit: %w", err))
		return
	}
	now := s.now()
	for _, r := range live {
		if err := runGuarded(ctx, r, tx, now); err != nil {
			_ = tx.Rollback()
			fail(fmt.Errorf("store: group commit of %d writes rolled back: %w", len(live), err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		_ = tx.Rollback()
		fail(fmt.Errorf("store: commit %d writes: %w", len(live), err))
		return
	}
	s.commits.Add(1)
	s.writes.Add(int64(len(live)))
	for _, r := range live {
		r.done <- nil
	}
}

// runGuarded turns a panic in a request into a failed batch: the committer
// is the only writer, and if it died every later write would hang.
func runGuarded(ctx context.Context, r *writeReq, tx *sqlx.Tx, now time.Time) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write request panicked: %v", p)
		}
	}()
	return r.run(ctx, tx, now)
}
