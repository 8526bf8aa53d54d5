// Package postgres is the store.Store on PostgreSQL (pgx v5 through
// database/sql, under sqlx), for running several coinsaga processes on one
// database. It keeps the SQLite store's semantics (store.SQLite): the same
// conformance suite (store/storetest) runs against both.
//
// What differs, and why:
//
//   - Several store handles, in several processes, may write one database
//     at once. Writes are still grouped (group commit), by a few committer
//     goroutines per handle, and every transaction takes its order rows in
//     out_order_id order, so that two handles' batches cannot deadlock;
//     deadlocks and serialization failures that happen anyway (40P01,
//     40001) are retried.
//   - Any error aborts a PostgreSQL transaction. The statements of a batch
//     are chosen not to fail on an outcome (ON CONFLICT DO NOTHING, an
//     UPDATE fenced by version that matches no row); a batch that fails
//     anyway is run again one request per transaction, so that one bad
//     request fails alone.
//   - Outbox ids are handed out in commit order under a lock (see
//     outbox.go), which keeps PendingOutbox's cursor promise across
//     handles.
//   - A handle may act for a worker (store.Shared, shared.go): orders
//     belong to the worker that accepted them, its commits are fenced by
//     version, owner and a live lease, orphans are claimed with SKIP
//     LOCKED, and RelayOutbox claims outbox rows without a cursor.
//
// Durability is the server's: a returned write is committed with the
// session's synchronous_commit. Production wants synchronous_commit = on
// and a synchronous standby; a failover to an asynchronous replica can
// lose acknowledged accepts.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// Defaults of Open.
const (
	DefaultCommitters = 4
	DefaultMaxConns   = 8
)

// Store is the store.Store on one PostgreSQL database.
//
// Writes (Accept, Apply) go to committer goroutines, each of which takes
// every request waiting at that moment (up to the batch cap) into one
// transaction; each request keeps its own outcome. DeleteOutbox,
// PruneTerminal and reads run on the pool directly.
//
// As with the SQLite store, a caller whose ctx ends while its write waits
// gets ctx.Err() and the write may still commit: re-read before deciding.
type Store struct {
	db     *sqlx.DB
	log    *slog.Logger
	now    func() time.Time
	queue  *sqlcommon.Queue[[]op]
	quit   chan struct{}
	wg     sync.WaitGroup
	closer sync.Once
	cerr   error

	// The worker this handle acts for (shared.go): nil before Register;
	// released after Release, when writes are refused until the next
	// Register.
	leaseTimings store.LeaseTimings
	lease        atomic.Pointer[store.Lease]
	released     atomic.Bool

	// Committed transactions and the write requests in them, for
	// benchmarks to report the batching they got.
	commits, writes atomic.Int64
}

var _ store.Store = (*Store)(nil)

type config struct {
	log        *slog.Logger
	now        func() time.Time
	maxBatch   int
	committers int
	maxConns   int
	lease      store.LeaseTimings
}

// Option configures Open.
type Option func(*config)

// WithLogger logs migrations and failed commits to l (default: nothing).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithClock sets the clock for UpdatedAt, CreatedAt, history and outbox
// times (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// WithMaxBatch caps how many write requests share one transaction
// (default store.DefaultMaxBatch).
func WithMaxBatch(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxBatch = n
		}
	}
}

// WithCommitters sets how many transactions of grouped writes one handle
// runs at once (default DefaultCommitters). Unlike SQLite, PostgreSQL
// commits in parallel; a few committers keep a batch waiting on its
// commit from holding back the next.
func WithCommitters(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.committers = n
		}
	}
}

// WithMaxConns caps the handle's connections (default DefaultMaxConns); it
// must exceed the committers so that reads are not starved.
func WithMaxConns(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxConns = n
		}
	}
}

//go:embed migrations/*.sql
var migrationFS embed.FS

// Open connects to the database at url (postgres://...), applies pending
// migrations and starts the committers. Any number of handles, in any
// number of processes, may be open on one database.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg := config{
		log:        slog.New(slog.DiscardHandler),
		now:        time.Now,
		maxBatch:   store.DefaultMaxBatch,
		committers: DefaultCommitters,
		maxConns:   DefaultMaxConns,
		lease:      store.DefaultLeaseTimings,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if url == "" {
		return nil, errors.New("open postgres store: empty database url")
	}
	if cfg.maxConns <= cfg.committers {
		cfg.maxConns = cfg.committers + 1
	}
	db, err := sqlx.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	db.SetMaxOpenConns(cfg.maxConns)
	db.SetMaxIdleConns(cfg.maxConns)
	// Connections are kept: each holds its prepared statements. A server
	// restart breaks them; database/sql then opens new ones.
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := migrate(ctx, db, cfg.now, cfg.log); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	s := &Store{
		db:   db,
		log:  cfg.log,
		now:  cfg.now,
		quit: make(chan struct{}),

		leaseTimings: cfg.lease,
	}
	s.queue = sqlcommon.NewQueue[[]op](cfg.maxBatch, s.quit, store.ErrClosed)
	for range cfg.committers {
		s.wg.Go(s.commitLoop)
	}
	return s, nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	select {
	case <-s.quit:
		return store.ErrClosed
	default:
	}
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping postgres store: %w", err)
	}
	return nil
}

// Close stops the committers after the batches in progress and closes the
// connections. Writes waiting to be taken get store.ErrClosed.
func (s *Store) Close() error {
	s.closer.Do(func() {
		close(s.quit)
		s.wg.Wait()
		if err := s.db.Close(); err != nil {
			s.cerr = fmt.Errorf("close postgres store: %w", err)
		}
	})
	return s.cerr
}

// closed reports whether Close has begun.
func (s *Store) closed() bool {
	select {
	case <-s.quit:
		return true
	default:
		return false
	}
}

// CommitCounts reports the transactions the committers committed and the
// write requests in them, for benchmarks.
func (s *Store) CommitCounts() (commits, writes int64) {
	return s.commits.Load(), s.writes.Load()
}
