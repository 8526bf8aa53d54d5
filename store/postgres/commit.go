package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// op is one order's part of a write request. run may be called several
// times (a retried or re-split batch) and must overwrite, not append to,
// the outcome it records. It returns the messages to put in the outbox
// when the transaction commits; an error aborts the transaction.
type op struct {
	key string // out_order_id: ops run in key order
	run func(ctx context.Context, tx *sqlx.Tx, now time.Time) ([]store.Message, error)
	// owner is the worker the op writes for ("" for a handle that never
	// registered): its lease is checked, and its row locked against a
	// rescue, once per transaction before the op runs; the op's outbox
	// rows are that worker's. When the lease is not live, run is not
	// called and lost records the outcome instead.
	owner string
	lost  func()
}

// writeReq is one caller's ops, waiting for a committer.
type writeReq = sqlcommon.Request[[]op]

// submit hands ops to a committer and waits for their transaction to end.
func (s *Store) submit(ctx context.Context, ops []op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed() {
		return store.ErrClosed
	}
	return s.queue.Submit(ctx, ops)
}

// commitLoop is one of the committers: each takes a batch as the SQLite
// store's does (sqlcommon.Queue) and commits it; several commit in
// parallel.
func (s *Store) commitLoop() { s.queue.Run(s.commit) }

// txTimeout bounds one batch transaction. It must not die with one
// caller's ctx (it carries the others' writes too), but a transaction
// stuck behind another handle's row lock must not hold its callers for
// ever either.
const txTimeout = 30 * time.Second

func (s *Store) commit(batch []*writeReq) {
	live := sqlcommon.Live(batch)
	if len(live) == 0 {
		return
	}
	err := s.runWithRetry(live)
	if err == nil {
		for _, r := range live {
			r.Done(nil)
		}
		return
	}
	if len(live) == 1 {
		live[0].Done(err)
		return
	}
	// One request's bad data (say, text PostgreSQL refuses) must not fail
	// the requests that shared its transaction: run each on its own.
	s.log.Debug("store group commit failed; committing its writes one by one", "writes", len(live), "err", err)
	for _, r := range live {
		r.Done(s.runWithRetry([]*writeReq{r}))
	}
}

// maxRetries bounds the retries of a transaction PostgreSQL aborted for a
// conflict with another one (deadlock, serialization failure).
const maxRetries = 8

func (s *Store) runWithRetry(reqs []*writeReq) error {
	for attempt := 0; ; attempt++ {
		err := s.runBatch(reqs)
		if err == nil || !retryable(err) || attempt == maxRetries {
			return err
		}
		// The other transaction has committed or is about to: a short,
		// jittered pause keeps the two from meeting again at once.
		time.Sleep(time.Duration(1+rand.IntN(4<<min(attempt, 5))) * time.Millisecond)
	}
}

// retryable reports PostgreSQL's answers that mean "run it again": a
// deadlock (40P01) or a serialization failure (40001).
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// runBatch runs the ops of reqs in one transaction, in out_order_id order
// (stable, so one order's ops keep their request order): every
// transaction locks order rows in the same order, so two of them wait for
// each other only one way round. The outbox rows go in last, under the
// outbox lock (outbox.go).
func (s *Store) runBatch(reqs []*writeReq) (err error) {
	var ops []op
	for _, r := range reqs {
		ops = append(ops, r.Work...)
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].key < ops[j].key })

	ctx, cancel := context.WithTimeout(context.Background(), txTimeout)
	defer cancel()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin group commit: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	now := s.now()
	dead, err := deadLeases(ctx, tx, ops)
	if err != nil {
		return fmt.Errorf("store: group commit of %d writes rolled back: %w", len(reqs), err)
	}
	var msgs []ownedMessage
	for _, o := range ops {
		if dead[o.owner] {
			o.lost()
			continue
		}
		m, err := runGuarded(ctx, o, tx, now)
		if err != nil {
			return fmt.Errorf("store: group commit of %d writes rolled back: %w", len(reqs), err)
		}
		for _, msg := range m {
			msgs = append(msgs, ownedMessage{msg, o.owner})
		}
	}
	if err := insertOutbox(ctx, tx, msgs, now); err != nil {
		return fmt.Errorf("store: group commit of %d writes rolled back: %w", len(reqs), err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit %d writes: %w", len(reqs), err)
	}
	s.commits.Add(1)
	s.writes.Add(int64(len(reqs)))
	return nil
}

// deadLeases checks the lease of every worker ops write for and returns
// those that are not live. A live one's row is locked FOR KEY SHARE until
// the commit: a rescue's DELETE of it then waits for this transaction, so
// that the rescue's next statement sees, and hands over, every order this
// one makes that worker's. (KEY SHARE does not block a renew, which
// updates no key.)
func deadLeases(ctx context.Context, tx *sqlx.Tx, ops []op) (map[string]bool, error) {
	var dead map[string]bool
	checked := map[string]bool{}
	for _, o := range ops {
		if o.owner == "" || checked[o.owner] {
			continue
		}
		checked[o.owner] = true
		var one int
		err := tx.GetContext(ctx, &one, `SELECT 1 FROM workers WHERE id = $1 AND expires_at > clock_timestamp() FOR KEY SHARE`, o.owner)
		if errors.Is(err, sql.ErrNoRows) {
			if dead == nil {
				dead = map[string]bool{}
			}
			dead[o.owner] = true
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("check lease of worker %s: %w", o.owner, err)
		}
	}
	return dead, nil
}

// runGuarded turns a panic in an op into a failed batch, so that a
// committer never dies and leaves later writes hanging.
func runGuarded(ctx context.Context, o op, tx *sqlx.Tx, now time.Time) (msgs []store.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write request panicked: %v", p)
		}
	}()
	return o.run(ctx, tx, now)
}

// withRetry runs f in a transaction of its own, again on a deadlock or
// serialization failure, for the writes that bypass the committers.
func (s *Store) withRetry(ctx context.Context, f func(tx *sqlx.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := s.inTx(ctx, f)
		if err == nil || !retryable(err) || attempt == maxRetries {
			return err
		}
		time.Sleep(time.Duration(1+rand.IntN(4<<min(attempt, 5))) * time.Millisecond)
	}
}

func (s *Store) inTx(ctx context.Context, f func(tx *sqlx.Tx) error) (err error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}
