package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3" // registers the "sqlite3" driver

	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("store: closed")

// DefaultMaxBatch is how many write requests one group commit takes at most.
const DefaultMaxBatch = 256

// SQLite is the Store on one SQLite file.
//
// Durability: the database runs in WAL mode with synchronous=NORMAL by
// default. A commit is then in the WAL file before the call returns, so a
// crashed or killed process loses nothing; a power loss or kernel panic may
// lose the last commits (never corrupt the file), because the WAL is
// fsynced only at checkpoints. WithSynchronousFull fsyncs the WAL on every
// commit, which survives power loss at the cost of one fsync per group
// commit (group commit shares that cost between the concurrent callers).
//
// Writes (Accept, Apply, DeleteOutbox, PruneTerminal) go through one
// committer goroutine that applies every request waiting at that moment in
// one transaction; each request keeps its own outcome (ErrStale,
// created/existing). Reads use a separate pool of read-only connections,
// which WAL lets run beside the writer.
//
// A caller whose ctx ends while its write waits gets ctx.Err(), but the
// write may still commit: after such an error, re-read the order before
// deciding again (the saga does, through Version and ErrStale).
type SQLite struct {
	path   string
	log    *slog.Logger
	now    func() time.Time
	w      *sqlx.DB // one connection: the only writer
	r      *sqlx.DB // readers
	cp     *sqlx.DB // one connection: checkpoints the WAL (checkpointLoop)
	lock   *fileLock
	queue  *sqlcommon.Queue[runFunc]
	quit   chan struct{}
	done   chan struct{}
	cpDone chan struct{}
	closer sync.Once
	cerr   error

	// The ownership seam (sqlite_shared.go): the registered worker, and
	// whether it released the database.
	leaseTimings LeaseTimings
	lease        atomic.Pointer[Lease]
	released     atomic.Bool
	relayMu      sync.Mutex

	// Committed transactions and the write requests in them, for
	// benchmarks to report the batching they got.
	commits, writes atomic.Int64
}

var _ Store = (*SQLite)(nil)

type config struct {
	log      *slog.Logger
	syncFull bool
	maxBatch int
	now      func() time.Time
	lease    LeaseTimings
}

// Option configures OpenSQLite.
type Option func(*config)

// WithLogger logs migrations and failed commits to l (default: nothing).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithSynchronousFull fsyncs every commit (synchronous=FULL), so commits
// survive a power loss, not only a process crash. See SQLite.
func WithSynchronousFull() Option { return func(c *config) { c.syncFull = true } }

// WithMaxBatch caps how many write requests share one transaction
// (default DefaultMaxBatch).
func WithMaxBatch(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxBatch = n
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

// OpenSQLite opens (creating if needed) the database at path, applies
// pending migrations and starts the committer. Only one process may hold a
// database: a second open fails with an error wrapping ErrLocked. Close
// releases it.
func OpenSQLite(ctx context.Context, path string, opts ...Option) (*SQLite, error) {
	cfg := config{
		log:      slog.New(slog.DiscardHandler),
		maxBatch: DefaultMaxBatch,
		now:      time.Now,
		lease:    DefaultLeaseTimings,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if path == "" {
		return nil, errors.New("open store: empty database path")
	}

	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &SQLite{
		path:   path,
		log:    cfg.log,
		now:    cfg.now,
		lock:   lock,
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		cpDone: make(chan struct{}),

		leaseTimings: cfg.lease,
	}
	s.queue = sqlcommon.NewQueue[runFunc](cfg.maxBatch, s.quit, ErrClosed)
	if err := s.open(ctx, cfg); err != nil {
		s.closeDBs()
		lock.release()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	go s.commitLoop()
	go s.checkpointLoop()
	return s, nil
}

// SQLiteExists reports whether path holds a database that has been used:
// a missing or empty file is no database (SQLite would take either as a
// new, empty one). A caller that expects earlier work checks this before
// OpenSQLite, which creates the database when it is missing.
func SQLiteExists(path string) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store %s: %w", path, err)
	}
	if fi.IsDir() {
		return false, fmt.Errorf("store %s: is a directory, not a database file", path)
	}
	return fi.Size() > 0, nil
}

// RemoveSQLite deletes the database at path with its WAL and shared
// memory files; the caller must have closed it. It is for a database the
// caller has just created and must not leave behind.
func RemoveSQLite(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		_ = os.Remove(p)
	}
}

func (s *SQLite) open(ctx context.Context, cfg config) error {
	existed, err := SQLiteExists(s.path)
	if err != nil {
		return err
	}
	syncMode := "NORMAL"
	if cfg.syncFull {
		syncMode = "FULL"
	}
	base, common := baseDSN(s.path), commonDSN

	w, err := openPool(ctx, writerDSN(s.path, syncMode), 1)
	if err != nil {
		if isDamage(err) {
			return fmt.Errorf("%w: %v; restore the file from a backup", ErrDamaged, err)
		}
		return fmt.Errorf("open writer: %w", err)
	}
	s.w = w
	if existed {
		if err := checkIntegrity(ctx, w); err != nil {
			return err
		}
	}
	if err := migrate(ctx, w, s.now, s.log); err != nil {
		return err
	}
	// Checkpoints mostly run on their own connection (checkpointLoop),
	// not inside a commit; the writer's own, rare, finishes the copying so
	// that the WAL starts over.
	if _, err := w.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walRestartPages)); err != nil {
		return fmt.Errorf("open writer: %w", err)
	}
	if s.cp, err = openPool(ctx, base+"?"+common, 1); err != nil {
		return fmt.Errorf("open checkpointer: %w", err)
	}
	// The writer made the file WAL (a persistent setting); readers only
	// read, and query_only turns a stray write into an error.
	if s.r, err = openPool(ctx, base+"?"+common+"&_query_only=true", 4); err != nil {
		return fmt.Errorf("open readers: %w", err)
	}
	return nil
}

// checkIntegrity runs SQLite's quick_check, which reads every page of the
// file (about a second per GiB here) and finds what a bad restore, a torn
// copy or a truncated file leaves: a store that opened "fine" and then
// failed mid-saga would strand the orders it holds.
func checkIntegrity(ctx context.Context, db *sqlx.DB) error {
	var problems []string
	if err := db.SelectContext(ctx, &problems, "PRAGMA quick_check(5)"); err != nil {
		if !isDamage(err) {
			return fmt.Errorf("integrity check: %w", err)
		}
		return fmt.Errorf("%w: %v; restore the file from a backup", ErrDamaged, err)
	}
	if len(problems) != 1 || problems[0] != "ok" {
		return fmt.Errorf("%w: integrity check found %s; restore the file from a backup", ErrDamaged, strings.Join(problems, "; "))
	}
	return nil
}

// isDamage reports SQLite's answers for a file that is not a sound
// database.
func isDamage(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrNotADB || se.Code == sqlite3.ErrCorrupt)
}

// commonDSN holds the settings every connection of the store shares.
const commonDSN = "_busy_timeout=5000&_foreign_keys=on&_stmt_cache_size=32"

// baseDSN is the database at path as a file: URI, which lets a path hold
// any character; mattn passes the whole URI to sqlite3_open_v2, which
// ignores the driver's _-prefixed keys.
func baseDSN(path string) string { return "file:" + (&url.URL{Path: path}).EscapedPath() }

// writerDSN opens the committer's connection: WAL, the given synchronous
// mode, and transactions that take the write lock when they begin.
func writerDSN(path, syncMode string) string {
	return baseDSN(path) + "?" + commonDSN + "&_journal_mode=WAL&_synchronous=" + syncMode + "&_txlock=immediate"
}

// openPool opens a pool of conns connections to dsn that are kept for
// the store's life: they are cheap to hold, and each keeps its statement
// cache.
func openPool(ctx context.Context, dsn string, conns int) (*sqlx.DB, error) {
	db, err := sqlx.Open("sqlite3", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Ping checks that both the writer and the readers answer.
func (s *SQLite) Ping(ctx context.Context) error {
	select {
	case <-s.quit:
		return ErrClosed
	default:
	}
	var one int
	if err := s.r.GetContext(ctx, &one, "SELECT 1"); err != nil {
		return fmt.Errorf("ping store readers: %w", err)
	}
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping store writer: %w", err)
	}
	return nil
}

// Close stops the committer after the batch in progress, closes the
// database (checkpointing the WAL into it) and releases the lock file.
// Writes waiting to be taken get ErrClosed.
func (s *SQLite) Close() error {
	s.closer.Do(func() {
		close(s.quit)
		<-s.done
		<-s.cpDone
		s.cerr = s.closeDBs()
		s.lock.release()
	})
	return s.cerr
}

func (s *SQLite) closeDBs() error {
	var errs []error
	if s.r != nil {
		if err := s.r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store readers: %w", err))
		}
	}
	if s.cp != nil {
		if err := s.cp.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store checkpointer: %w", err))
		}
	}
	if s.w != nil {
		if err := s.w.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store writer: %w", err))
		}
	}
	return errors.Join(errs...)
}
