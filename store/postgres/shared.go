package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/internal/orderstate"
	"github.com/coinsaga/coinsaga/store"
)

// The ownership seam (store.Shared) for several workers on one database.
//
// A worker's lease is its row in workers, timed by the server's clock.
// Orders carry their owner; every write of a registered handle checks its
// lease once per transaction and locks the worker row FOR KEY SHARE
// (commit.go), and an Apply is fenced in its UPDATE by version, owner and
// a live lease. Claims and the relay take rows with SKIP LOCKED, so two
// workers never take the same row and never wait for each other.

var _ store.Shared = (*Store)(nil)

// WithLeaseTimings sets the lease TTL and the rescue grace (tests shorten
// them); zero fields keep the defaults (store.LeaseTTL, store.RescueGrace).
func WithLeaseTimings(lt store.LeaseTimings) Option {
	return func(c *config) { c.lease = lt.OrDefault() }
}

// worker is the id of the worker the handle acts for, "" for none.
func (s *Store) worker() string {
	if l := s.lease.Load(); l != nil {
		return l.Worker
	}
	return ""
}

// writer is worker for a write: a handle whose worker released its lease
// must not write (unfenced, as if it were a tool) until it registers again.
func (s *Store) writer() (string, error) {
	if s.released.Load() {
		return "", store.ErrLeaseLost
	}
	return s.worker(), nil
}

// nullText is s as a nullable TEXT: NULL for "".
func nullText(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// interval is d as the milliseconds the lease statements add to
// clock_timestamp().
func interval(d time.Duration) int64 { return d.Milliseconds() }

// Register inserts a worker row with a random id and a lease of the TTL,
// and makes the handle act for it.
func (s *Store) Register(ctx context.Context, host string) (store.Lease, error) {
	if s.closed() {
		return store.Lease{}, store.ErrClosed
	}
	id, err := store.NewWorkerID()
	if err != nil {
		return store.Lease{}, err
	}
	l := store.Lease{Worker: id, Host: host, TTL: s.leaseTimings.TTL, Sent: s.now()}
	if err := s.db.QueryRowContext(ctx, `INSERT INTO workers (id, host, started_at, expires_at)
		VALUES ($1, $2, clock_timestamp(), clock_timestamp() + $3 * interval '1 millisecond')
		RETURNING started_at, expires_at`, id, text(host), interval(l.TTL)).Scan(&l.StartedAt, &l.ExpiresAt); err != nil {
		return store.Lease{}, fmt.Errorf("register worker: %w", err)
	}
	l.StartedAt, l.ExpiresAt = l.StartedAt.UTC(), l.ExpiresAt.UTC()
	s.lease.Store(&l)
	s.released.Store(false)
	return l, nil
}

// Renew extends the lease by the TTL from now, only if it is still live:
// no row back means it expired or was rescued, and it stays lost
// (ErrLeaseLost); the worker must drop what it holds and register anew.
func (s *Store) Renew(ctx context.Context) (store.Lease, error) {
	cur := s.lease.Load()
	if cur == nil || s.released.Load() {
		return store.Lease{}, fmt.Errorf("renew: %w", store.ErrLeaseLost)
	}
	l := *cur
	l.Sent = s.now()
	err := s.db.QueryRowContext(ctx, `UPDATE workers SET expires_at = clock_timestamp() + $2 * interval '1 millisecond'
		WHERE id = $1 AND expires_at > clock_timestamp() RETURNING expires_at`, l.Worker, interval(l.TTL)).Scan(&l.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Lease{}, fmt.Errorf("renew worker %s: %w", l.Worker, store.ErrLeaseLost)
	}
	if err != nil {
		return store.Lease{}, fmt.Errorf("renew worker %s: %w", l.Worker, err)
	}
	l.ExpiresAt = l.ExpiresAt.UTC()
	// Only a newer renew replaces the lease the local fence reads.
	for {
		now := s.lease.Load()
		if now == nil || now.Worker != l.Worker || now.Sent.After(l.Sent) {
			break
		}
		if s.lease.CompareAndSwap(now, &l) {
			break
		}
	}
	return l, nil
}

// handOver takes the owner off the scheduled orders of workers (bumping
// their versions, so that any copy in a worker's memory is stale), with a
// history line saying why, and off their outbox rows. It returns how many
// orders it handed over.
func handOver(ctx context.Context, tx *sqlx.Tx, workers []string, why string, now time.Time) (int, error) {
	var n int
	if err := tx.GetContext(ctx, &n, `WITH u AS (
			UPDATE orders SET owner = NULL, version = version + 1
			WHERE owner = ANY($1) AND next_run_at IS NOT NULL
			RETURNING id, version, state, step, attempt),
		h AS (INSERT INTO history (order_id, version, line, at, state, step, attempt, error_code, error, detail)
			SELECT id, version, 0, $2, state, step, attempt, '', '', $3 FROM u)
		SELECT COUNT(*) FROM u`, workers, now.UnixMilli(), why); err != nil {
		return 0, fmt.Errorf("hand over orders: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE outbox SET owner = NULL WHERE owner = ANY($1)`, workers); err != nil {
		return 0, fmt.Errorf("hand over outbox: %w", err)
	}
	return n, nil
}

// Release hands the worker's scheduled orders and outbox rows over at
// once and removes its row; the handle's writes are refused (ErrLeaseLost)
// until it registers again.
func (s *Store) Release(ctx context.Context) (int, error) {
	cur := s.lease.Load()
	if cur == nil || s.released.Load() {
		return 0, nil
	}
	if s.closed() {
		return 0, store.ErrClosed
	}
	// Refuse new writes first: one that began before is fenced by the
	// version bump below.
	s.released.Store(true)
	var n int
	err := s.withRetry(ctx, func(tx *sqlx.Tx) error {
		var err error
		if n, err = handOver(ctx, tx, []string{cur.Worker}, "released by worker "+cur.Worker, s.now()); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM workers WHERE id = $1`, cur.Worker)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release worker %s: %w", cur.Worker, err)
	}
	s.lease.CompareAndSwap(cur, nil)
	return n, nil
}

// Rescue removes the workers whose lease expired more than the grace ago
// and hands their orders over. Two rescuers at once are safe: the second
// one's DELETE waits for the first and then finds nothing; a transaction
// still writing for a dead worker holds its row (FOR KEY SHARE), so the
// DELETE waits for it too and the hand-over sees its orders.
func (s *Store) Rescue(ctx context.Context) (store.Rescued, error) {
	if s.closed() {
		return store.Rescued{}, store.ErrClosed
	}
	var r store.Rescued
	err := s.withRetry(ctx, func(tx *sqlx.Tx) error {
		r = store.Rescued{}
		if err := tx.SelectContext(ctx, &r.Workers, `DELETE FROM workers
			WHERE expires_at < clock_timestamp() - $1 * interval '1 millisecond' RETURNING id`,
			interval(s.leaseTimings.Grace)); err != nil {
			return err
		}
		if len(r.Workers) == 0 {
			return nil
		}
		sort.Strings(r.Workers)
		var err error
		r.Orders, err = handOver(ctx, tx, r.Workers, "rescued from worker "+strings.Join(r.Workers, ", "), s.now())
		return err
	})
	if err != nil {
		return store.Rescued{}, fmt.Errorf("rescue expired workers: %w", err)
	}
	if len(r.Workers) > 0 {
		s.log.Info("rescued expired workers", "workers", r.Workers, "orders", r.Orders)
	}
	return r, nil
}

// claimReturning is every column of a claimed order, for RETURNING.
var claimReturning = func() string {
	cols := []string{"o.id"}
	for _, f := range orderFields {
		cols = append(cols, "o."+f)
	}
	return strings.Join(cols, ", ")
}()

// claimCandidates selects the orders Claim may take (orders_orphans); $1
// is the time, a parameter so that the index is used.
const claimCandidates = `SELECT id FROM orders WHERE owner IS NULL AND next_run_at IS NOT NULL AND next_run_at <= $1 `

// Claim makes up to limit due orders without an owner this worker's: a
// CTE picks them soonest first FOR NO KEY UPDATE SKIP LOCKED (NO KEY, so
// that the foreign-key checks of history inserts do not wait on it; SKIP
// LOCKED, so that two claimers take different rows), and the UPDATE sets
// the owner and bumps the version, with a history line.
func (s *Store) Claim(ctx context.Context, now time.Time, limit int, steps []orderstate.Step) ([]store.Order, error) {
	if limit <= 0 {
		return nil, nil
	}
	me, err := s.writer()
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	if me == "" {
		return nil, errors.New("claim: the handle has no worker: Register first")
	}
	if s.closed() {
		return nil, store.ErrClosed
	}
	stepCond := ""
	args := []any{now.UnixMilli(), limit, me, s.now().UnixMilli(), "claimed by worker " + me}
	if len(steps) > 0 {
		stepCond = "AND step = ANY($6) "
		names := make([]string, len(steps))
		for i, st := range steps {
			names[i] = string(st)
		}
		args = append(args, names)
	}
	q := `WITH live AS (SELECT id FROM workers WHERE id = $3 AND expires_at > clock_timestamp() FOR KEY SHARE),
		c AS (` + claimCandidates + stepCond + `
			AND EXISTS (SELECT 1 FROM live)
			ORDER BY next_run_at, id LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED),
		u AS (UPDATE orders o SET owner = $3, version = o.version + 1 FROM c WHERE o.id = c.id RETURNING ` + claimReturning + `),
		h AS (INSERT INTO history (order_id, version, line, at, state, step, attempt, error_code, error, detail)
			SELECT id, version, 0, $4, state, step, attempt, '', '', $5 FROM u)
		SELECT * FROM u ORDER BY next_run_at, id`
	var rows []store.OrderRow
	var live bool
	err = s.withRetry(ctx, func(tx *sqlx.Tx) error {
		rows = rows[:0]
		if err := tx.GetContext(ctx, &live, `SELECT EXISTS (SELECT 1 FROM workers WHERE id = $1 AND expires_at > clock_timestamp())`, me); err != nil {
			return err
		}
		if !live {
			return nil
		}
		return tx.SelectContext(ctx, &rows, q, args...)
	})
	if err != nil {
		return nil, fmt.Errorf("claim orders: %w", err)
	}
	if !live {
		return nil, fmt.Errorf("claim orders: worker %s: %w", me, store.ErrLeaseLost)
	}
	return store.Orders(rows), nil
}

// RelayOutbox claims up to limit outbox rows, this worker's and those
// without an owner, oldest first, FOR UPDATE SKIP LOCKED, publishes them
// with the claim held and deletes the acked in the same transaction. No
// cursor: a row whose transaction committed after a later id was relayed
// is simply taken by the next call.
func (s *Store) RelayOutbox(ctx context.Context, limit int, publish func(ctx context.Context, msgs []store.Message) ([]int64, error)) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	if s.closed() {
		return 0, store.ErrClosed
	}
	// A handle without a worker (never registered, or released) takes
	// only rows without an owner: a released worker's own rows are among
	// them, so its last flush after Release still publishes them.
	q := `SELECT id, subject, msg_id, header, data FROM outbox WHERE owner IS NULL `
	args := []any{limit}
	if me := s.worker(); me != "" {
		q = `SELECT id, subject, msg_id, header, data FROM outbox WHERE owner = $2 OR owner IS NULL `
		args = append(args, me)
	}
	q += `ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`
	var (
		deleted int
		perr    error
	)
	// Not retried: publish must not run twice for one claim.
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var rows []store.OutboxRow
		if err := tx.SelectContext(ctx, &rows, q, args...); err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		msgs, err := store.Messages(rows)
		if err != nil {
			return err
		}
		var acked []int64
		acked, perr = publish(ctx, msgs)
		del := store.ClaimedOnly(msgs, acked)
		if len(del) == 0 {
			return nil
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, del)
		if err != nil {
			return fmt.Errorf("delete %d: %w", len(del), err)
		}
		n, err := res.RowsAffected()
		deleted = int(n)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("relay outbox: %w", err)
	}
	return deleted, perr
}

// Owner returns the order's owner, "" for none.
func (s *Store) Owner(ctx context.Context, outOrderID string) (string, error) {
	var owner sql.NullString
	err := s.db.GetContext(ctx, &owner, `SELECT owner FROM orders WHERE out_order_id = $1`, outOrderID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("owner of %s: %w", outOrderID, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("owner of %s: %w", outOrderID, err)
	}
	return owner.String, nil
}

// Workers lists the registered workers, oldest first, with the server's
// verdict on each lease.
func (s *Store) Workers(ctx context.Context) ([]store.Lease, error) {
	var rows []struct {
		ID        string    `db:"id"`
		Host      string    `db:"host"`
		StartedAt time.Time `db:"started_at"`
		ExpiresAt time.Time `db:"expires_at"`
		Expired   bool      `db:"expired"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT id, host, started_at, expires_at,
		expires_at <= clock_timestamp() AS expired FROM workers ORDER BY started_at, id`); err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	out := make([]store.Lease, len(rows))
	for i, r := range rows {
		out[i] = store.Lease{Worker: r.ID, Host: r.Host, StartedAt: r.StartedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(),
			Expired: r.Expired, TTL: s.leaseTimings.TTL}
	}
	return out, nil
}
