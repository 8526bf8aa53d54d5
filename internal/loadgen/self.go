package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/worker"
)

// SelfConfig is the whole system a run can start in its own process: a
// SQLite store, embedded JetStream and the sandbox on loopback, and a
// worker. The command passes in the pieces it builds for serve too (its
// connection options, the sandbox server, the provider clients), so that
// the system measured is wired as serve wires it.
type SelfConfig struct {
	Dir string // SQLite and JetStream; "" for a temporary folder, removed by Close
	Log *slog.Logger
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
	s.DBPath = filepath.Join(dir, "coinsaga.db")
	st, err := store.OpenSQLite(ctx, s.DBPath, store.WithLogger(c.Log))
	if err != nil {
		return nil, err
	}
	s.Store = st
	s.stops = append(s.stops, func() { _ = st.Close() })
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
	wc, err := connect("bench worker")
	if err != nil {
		return nil, err
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
	wcfg := c.Worker
	wcfg.Conn, wcfg.Store, wcfg.SUD, wcfg.Wallets, wcfg.Logger = wc, st, s.SUD, s.Wallets, c.Log
	w, err := worker.New(wcfg)
	if err != nil {
		return nil, err
	}
	also := make([]func(context.Context), len(c.Also))
	for i, f := range c.Also {
		also[i] = func(ctx context.Context) { f(ctx, st) }
	}
	stopWorker, err := startWorker(ctx, w, also...)
	// The worker stops first: it drains into the store, NATS and sandbox.
	s.stops = append(s.stops, stopWorker)
	return s, err
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
