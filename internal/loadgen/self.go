package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/postgres"
	"github.com/coinsaga/coinsaga/worker"
)

// SelfConfig is the whole system a run can start in its own process: a
// store (SQLite, or a PostgreSQL database shared by several workers),
// embedded JetStream and the sandbox on loopback, and the workers. The
// command passes in the pieces it builds for serve too (its connection
// options, the sandbox server, the provider clients), so that the system
// measured is wired as serve wires it.
type SelfConfig struct {
	Dir string // SQLite and JetStream; "" for a temporary folder, removed by Close
	Log *slog.Logger
	// DatabaseURL, a postgres:// URL, puts the orders in that PostgreSQL
	// database instead of SQLite under Dir. Workers workers (default 1)
	// then share it as `serve --database-url` processes do: each with its
	// own store handle (its own worker id and lease) and NATS connection,
	// run as one of many (worker.Config.ManyWorkers). SQLite has one.
	DatabaseURL string
	Workers     int
	// Worker holds the worker's tuning (concurrency, confirmation);
	// StartSelf fills in the connection, subjects, store, providers and
	// logger.
	Worker worker.Config

	Connect      func(url, name string) (*nats.Conn, error)
	StartSandbox func() (url string, stop func(), err error)
	Providers    func(sandboxURL string) (worker.OrderService, map[string]providers.Wallet, error)
	// Also are loops run beside the worker, with its context (retention).
	Also []func(ctx context.Context, st store.Store)
}

// Self is a running in-process system and the run's target on it.
type Self struct {
	Target
	NATSURL, SandboxURL string
	StoreName           string   // the SQLite file, or the database URL without its password
	stops               []func() // run in reverse by Close
}

// Close stops the worker, then everything it used.
func (s *Self) Close() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	s.stops = nil
}

// StartSelf starts the system c describes and returns once its worker is
// ready; on an error it stops what it had started.
func StartSelf(ctx context.Context, c SelfConfig) (_ *Self, err error) {
	s := &Self{Target: Target{InProcess: true}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	dir := c.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "coinsaga-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench data dir: %w", err)
		}
		s.stops = append(s.stops, func() { _ = os.RemoveAll(tmp) })
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("bench data dir: %w", err)
	}
	stores, err := s.openStores(ctx, c, dir)
	if err != nil {
		return nil, err
	}
	srv, err := embednats.Start(embednats.Options{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "jetstream")})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	s.stops = append(s.stops, srv.Shutdown)
	s.NATSURL = srv.ClientURL()
	url, stopSandbox, err := c.StartSandbox()
	if err != nil {
		return nil, err
	}
	s.stops = append(s.stops, stopSandbox)
	s.SandboxURL, s.Admin = url, sandbox.NewAdminClient(url)

	connect := func(name string) (*nats.Conn, error) {
		nc, err := c.Connect(s.NATSURL, name)
		if err == nil {
			s.stops = append(s.stops, nc.Close)
		}
		return nc, err
	}
	if s.Pub, err = connect("bench publisher"); err != nil {
		return nil, err
	}
	if s.Sub, err = connect("bench subscriber"); err != nil {
		return nil, err
	}
	if s.SUD, s.Wallets, err = c.Providers(url); err != nil {
		return nil, err
	}
	for i, st := range stores {
		name := "bench worker"
		if len(stores) > 1 {
			name = fmt.Sprintf("bench worker %d", i+1)
		}
		wc, err := connect(name)
		if err != nil {
			return nil, err
		}
		wcfg := c.Worker
		wcfg.Conn, wcfg.Store, wcfg.SUD, wcfg.Wallets, wcfg.Logger = wc, st, s.SUD, s.Wallets, c.Log
		wcfg.ManyWorkers = c.DatabaseURL != ""
		w, err := worker.New(wcfg)
		if err != nil {
			return nil, err
		}
		var also []func(context.Context)
		if i == 0 { // once for the system, as each serve runs its own
			for _, f := range c.Also {
				also = append(also, func(ctx context.Context) { f(ctx, s.Store) })
			}
		}
		stopWorker, err := startWorker(ctx, w, also...)
		// The workers stop first, the last started first: each drains
		// into the store, NATS and sandbox.
		s.stops = append(s.stops, stopWorker)
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// openStores opens the store of each worker, and sets the target's store:
// with SQLite the one worker's, with PostgreSQL a handle of no worker's
// (for the preload and the retention loop, as a tool's would be).
func (s *Self) openStores(ctx context.Context, c SelfConfig, dir string) ([]store.Store, error) {
	n := max(c.Workers, 1)
	if c.DatabaseURL == "" {
		if n > 1 {
			return nil, fmt.Errorf("%d workers need a shared store: give a PostgreSQL database URL (SQLite has one worker)", n)
		}
		s.DBPath = filepath.Join(dir, "coinsaga.db")
		s.StoreName = s.DBPath
		st, err := store.OpenSQLite(ctx, s.DBPath, store.WithLogger(c.Log))
		if err != nil {
			return nil, err
		}
		s.Store = st
		s.stops = append(s.stops, func() { _ = st.Close() })
		return []store.Store{st}, nil
	}
	if !postgres.IsURL(c.DatabaseURL) {
		return nil, fmt.Errorf("database URL %q: want a postgres:// URL", postgres.Redact(c.DatabaseURL))
	}
	s.StoreName = postgres.Redact(c.DatabaseURL)
	// One after another: the first applies the migrations.
	handles := make([]*postgres.Store, n+1)
	for i := range handles {
		h, err := postgres.Open(ctx, c.DatabaseURL, postgres.WithLogger(c.Log))
		if err != nil {
			return nil, err
		}
		s.stops = append(s.stops, func() { _ = h.Close() })
		handles[i] = h
	}
	look := handles[n]
	s.Store = look
	s.WorkerOrders = func(ctx context.Context, ids []string) ([]int, int, error) { return workerOrders(ctx, look, ids) }
	stores := make([]store.Store, n)
	for i, h := range handles[:n] {
		stores[i] = h
	}
	return stores, nil
}

// workerOrders counts the orders of ids each worker owns (orders keep the
// owner that finished them), the workers in the order they registered;
// other is the orders owned by no registered worker, or by none.
func workerOrders(ctx context.Context, st store.Shared, ids []string) (counts []int, other int, err error) {
	byOwner := map[string]int{}
	for _, id := range ids {
		owner, err := st.Owner(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		byOwner[owner]++
	}
	leases, err := st.Workers(ctx)
	if err != nil {
		return nil, 0, err
	}
	sort.SliceStable(leases, func(i, j int) bool { return leases[i].StartedAt.Before(leases[j].StartedAt) })
	for _, l := range leases {
		counts = append(counts, byOwner[l.Worker])
		delete(byOwner, l.Worker)
	}
	for _, n := range byOwner {
		other += n
	}
	return counts, other, nil
}

// runner is what StartSelf needs of its worker.
type runner interface {
	Run(ctx context.Context) error
	Ready() bool
}

// startWorker runs w, and alongside it each of also with w's context, and
// returns once w is ready to take orders: a run that published sooner
// would time the worker's start-up. stop cancels w and waits until Run has
// returned (w drains its running steps first), so the caller closes the
// store, NATS and the sandbox only after it.
func startWorker(ctx context.Context, w runner, also ...func(context.Context)) (stop func(), err error) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	for _, f := range also {
		go f(wctx)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	// Ready has no channel to wait on; a 5 ms poll costs nothing next to
	// the streams' creation it waits for.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !w.Ready() {
		select {
		case err := <-done:
			cancel()
			return func() {}, fmt.Errorf("worker stopped before it was ready: %v", err)
		case <-deadline.C:
			stop()
			return func() {}, errors.New("worker not ready within 30s")
		case <-ctx.Done():
			stop()
			return func() {}, ctx.Err()
		case <-tick.C:
		}
	}
	return stop, nil
}
