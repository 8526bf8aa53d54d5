package service

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/postgres"
)

// storeStart is the store serve runs on, while it starts: whether it held
// orders' schema before this start (if not, NATS is asked for an earlier
// store's work before anything is written), and how to open it or give
// up on it.
type storeStart struct {
	existed bool
	shared  bool   // several workers may serve it at once (PostgreSQL)
	where   string // the SQLite file, or the PostgreSQL URL without its password

	open    func(ctx context.Context) (store.Store, error)
	abandon func() // forget a store this start created, so that the next start checks again
	close   func()
}

// openStore prepares the store opts names. SQLite is opened at once: its
// lock says whether another process owns this data dir, before anything
// else starts. PostgreSQL is only looked at here (does the schema exist?)
// and opened by open, after the check for an earlier store's work, so
// that a start refused by that check creates no schema the next start
// would take for an existing store.
func openStore(ctx context.Context, opts Options) (*storeStart, error) {
	if postgres.IsURL(opts.DatabaseURL) {
		return openPostgres(ctx, opts.DatabaseURL, opts.DataDir, opts.LeaseTimings, opts.Logger)
	}
	if opts.DatabaseURL != "" {
		return nil, fmt.Errorf("database URL %q: want a postgres:// URL, or none for SQLite under the data dir", postgres.Redact(opts.DatabaseURL))
	}
	dbPath := filepath.Join(opts.DataDir, "coinsaga.db")
	existed, err := store.SQLiteExists(dbPath)
	if err != nil {
		return nil, err
	}
	storeOpts := []store.Option{store.WithLogger(opts.Logger)}
	if opts.SyncFull {
		storeOpts = append(storeOpts, store.WithSynchronousFull())
	}
	st, err := store.OpenSQLite(ctx, dbPath, storeOpts...)
	if err != nil {
		return nil, err
	}
	s := &storeStart{existed: existed, where: dbPath}
	s.open = func(context.Context) (store.Store, error) { return st, nil }
	s.close = func() { st.Close() }
	s.abandon = func() {
		if !existed {
			st.Close()
			store.RemoveSQLite(dbPath)
		}
	}
	return s, nil
}

func openPostgres(ctx context.Context, url, dataDir string, lease store.LeaseTimings, log *slog.Logger) (*storeStart, error) {
	unlock, err := store.LockFile(filepath.Join(dataDir, "coinsaga.lock"))
	if err != nil {
		return nil, err
	}
	existed, err := postgres.SchemaExists(ctx, url)
	if err != nil {
		unlock()
		return nil, err
	}
	s := &storeStart{existed: existed, shared: true, where: postgres.Redact(url), abandon: func() {}, close: unlock}
	s.open = func(ctx context.Context) (store.Store, error) {
		st, err := postgres.Open(ctx, url, postgres.WithLogger(log), postgres.WithLeaseTimings(lease))
		if err != nil {
			return nil, err
		}
		s.close = func() { st.Close(); unlock() }
		log.Info("PostgreSQL store opened", "database", s.where)
		return st, nil
	}
	return s, nil
}
