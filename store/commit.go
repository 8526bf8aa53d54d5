package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// writeReq is one caller's write, run inside a shared transaction. run
// returns an error only for a failure that must abort the transaction (a
// SQL error); outcomes of the request itself (ErrStale, an existing order)
// are recorded by run in its closure and read by the caller once done
// reports the commit.
type writeReq = sqlcommon.Request[runFunc]

// submit hands run to the committer and waits for its transaction to end.
// If ctx ends first, the caller gets ctx.Err() while the write may still
// commit.
func (s *SQLite) submit(ctx context.Context, run runFunc) error {
	return s.queue.Submit(ctx, run)
}

// commitLoop is the only writer. It takes one request, then every request
// already waiting (up to max), and commits them together
// (sqlcommon.Queue): one fsync (or WAL append) for the lot, which is what
// makes many concurrent sagas cheap.
func (s *SQLite) commitLoop() {
	defer close(s.done)
	s.queue.Run(s.commit)
}

func (s *SQLite) commit(batch []*writeReq) {
	live := sqlcommon.Live(batch)
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
			r.Done(err)
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
		r.Done(nil)
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
	return r.Work(ctx, tx, now)
}
