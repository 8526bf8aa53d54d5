package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/internal/orderstate"
)

// The ownership seam on SQLite: one owner.
//
// Only one process can hold a SQLite database (the lock file, which the
// kernel drops when its holder dies), so there is only ever one worker and
// every order is its own. The lease is the lock file: it cannot expire
// while the process lives, and a dead process's lock is gone at once. So
// Register records the worker (and removes any row a killed predecessor
// left, which the lock proves dead), Renew only restamps the lease in
// memory, Rescue has nothing to do and Claim never finds an order without
// an owner: Due already returns them all.

var _ Shared = (*SQLite)(nil)

// WithLeaseTimings sets the lease's TTL (the in-memory expiry Renew
// reports, which the local fence counts from) and the rescue grace; zero
// fields keep the defaults.
func WithLeaseTimings(lt LeaseTimings) Option {
	return func(c *config) { c.lease = lt.OrDefault() }
}

// Register makes this handle the database's one worker.
func (s *SQLite) Register(ctx context.Context, host string) (Lease, error) {
	id, err := NewWorkerID()
	if err != nil {
		return Lease{}, err
	}
	sent := s.now()
	l := Lease{Worker: id, Host: host, StartedAt: sent.UTC().Truncate(time.Millisecond),
		ExpiresAt: sent.Add(s.leaseTimings.TTL).UTC().Truncate(time.Millisecond), Sent: sent, TTL: s.leaseTimings.TTL}
	if err := s.submit(ctx, func(ctx context.Context, tx *sqlx.Tx, _ time.Time) error {
		// Any other row is a predecessor's: the lock file proves it dead.
		if _, err := tx.ExecContext(ctx, `DELETE FROM workers`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO workers (id, host, started_at, expires_at) VALUES (?, ?, ?, ?)`,
			l.Worker, l.Host, l.StartedAt.UnixMilli(), l.ExpiresAt.UnixMilli())
		return err
	}); err != nil {
		return Lease{}, fmt.Errorf("register worker: %w", err)
	}
	s.lease.Store(&l)
	s.released.Store(false)
	return l, nil
}

// Renew restamps the lease; it writes nothing, because the lock file is
// the lease. ErrLeaseLost after Release or before any Register.
func (s *SQLite) Renew(ctx context.Context) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	cur := s.lease.Load()
	if cur == nil || s.released.Load() {
		return Lease{}, fmt.Errorf("renew: %w", ErrLeaseLost)
	}
	l := *cur
	l.Sent = s.now()
	l.ExpiresAt = l.Sent.Add(l.TTL).UTC().Truncate(time.Millisecond)
	s.lease.Store(&l)
	return l, nil
}

// Release removes the worker's row and refuses the handle's later writes
// (ErrLeaseLost) until it registers again. With one owner there is no
// other worker to hand to: the orders wait for the next process that
// opens the database. It returns the scheduled orders it leaves.
func (s *SQLite) Release(ctx context.Context) (int, error) {
	cur := s.lease.Load()
	if cur == nil {
		return 0, nil
	}
	var n int
	if err := s.submit(ctx, func(ctx context.Context, tx *sqlx.Tx, _ time.Time) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM workers WHERE id = ?`, cur.Worker); err != nil {
			return err
		}
		return tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM orders WHERE next_run_at IS NOT NULL`)
	}); err != nil {
		return 0, fmt.Errorf("release worker %s: %w", cur.Worker, err)
	}
	s.released.Store(true)
	s.lease.Store(nil)
	return n, nil
}

// Rescue does nothing: with one process per database there is never an
// expired worker to rescue (a killed one's lock is gone and Register
// removes its row).
func (s *SQLite) Rescue(ctx context.Context) (Rescued, error) {
	return Rescued{}, ctx.Err()
}

// Claim returns nothing: every order is the one worker's, and Due returns
// them.
func (s *SQLite) Claim(ctx context.Context, _ time.Time, _ int, _ []orderstate.Step) ([]Order, error) {
	return nil, ctx.Err()
}

// RelayOutbox relays the oldest rows. The claim is a mutex: relays of one
// process take turns, so none publishes a row another is publishing.
func (s *SQLite) RelayOutbox(ctx context.Context, limit int, publish func(ctx context.Context, msgs []Message) ([]int64, error)) (int, error) {
	s.relayMu.Lock()
	defer s.relayMu.Unlock()
	msgs, err := s.PendingOutbox(ctx, 0, limit)
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	acked, perr := publish(ctx, msgs)
	del := claimedOnly(msgs, acked)
	if err := s.DeleteOutbox(ctx, del); err != nil {
		return 0, fmt.Errorf("relay outbox: %w", err)
	}
	return len(del), perr
}

// claimedOnly keeps the acked ids that were in msgs: a relay deletes only
// what it claimed.
func claimedOnly(msgs []Message, acked []int64) []int64 {
	in := make(map[int64]bool, len(msgs))
	for _, m := range msgs {
		in[m.ID] = true
	}
	out := make([]int64, 0, len(acked))
	for _, id := range acked {
		if in[id] {
			out = append(out, id)
			in[id] = false
		}
	}
	return out
}

// ClaimedOnly is claimedOnly for the other stores.
func ClaimedOnly(msgs []Message, acked []int64) []int64 { return claimedOnly(msgs, acked) }

// Owner returns the registered worker for any stored order.
func (s *SQLite) Owner(ctx context.Context, outOrderID string) (string, error) {
	if _, err := s.Get(ctx, outOrderID); err != nil {
		return "", fmt.Errorf("owner: %w", err)
	}
	if l := s.lease.Load(); l != nil {
		return l.Worker, nil
	}
	return "", nil
}

// Workers returns the one registered worker, as this handle holds it.
func (s *SQLite) Workers(ctx context.Context) ([]Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l := s.lease.Load(); l != nil {
		return []Lease{*l}, nil
	}
	return []Lease{}, nil
}

// leaseGone reports a handle whose worker released its lease: its writes
// are refused, as a worker that stopped must not move orders.
func (s *SQLite) leaseGone() bool { return s.released.Load() }
