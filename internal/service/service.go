// Package service assembles the whole order processor for `coinsaga
// serve`: the store, the embedded JetStream or an external NATS, the
// provider clients (or the in-process sandbox) behind their guards, the
// worker, its retention and the HTTP listener. cmd/coinsaga parses the
// flags into Options; this package runs them. A new part of serve (a
// store, a console) is a field of Options and a step of Run.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/config"
	"github.com/coinsaga/coinsaga/internal/console"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/worker"
)

// CheckNewStoreTimeout bounds the look at NATS for an earlier store's
// work when the store is new (worker.CheckNewStore).
const CheckNewStoreTimeout = 10 * time.Second

// KeepJetStreamEvery is how often the embedded server checks that its
// JetStream is still enabled (embednats.Server.KeepJetStream).
const KeepJetStreamEvery = 5 * time.Second

// Options is what serve runs with. DataDir must exist.
type Options struct {
	// NATSURL is the external NATS, and Conn a connection to it; with
	// NATSURL "" Run starts the embedded JetStream on NATSListen, storing
	// at most JSMaxStore bytes (0: 75% of the free disk), and dials it
	// with Connect.
	NATSURL    string
	Conn       *nats.Conn
	NATSListen string
	JSMaxStore int64
	Connect    func(url string) (*nats.Conn, error)
	Subjects   events.Subjects

	// DatabaseURL, when it is a postgres:// URL, names the PostgreSQL
	// database of the orders; empty keeps SQLite in DataDir.
	DatabaseURL string
	// LeaseTimings are the worker lease's TTL and rescue grace on a
	// PostgreSQL store; zero fields keep store.LeaseTTL and
	// store.RescueGrace. Tests shorten them.
	LeaseTimings store.LeaseTimings
	// WrapStore, when set, wraps the opened store before the worker and
	// the console use it: tests inject faults (a lease that is not
	// renewed) there. It must keep the store's interfaces (store.Shared).
	WrapStore func(store.Store) store.Store
	// DataDir holds the SQLite store, the embedded JetStream's files and
	// the sandbox's ledger.
	DataDir   string
	SyncFull  bool // fsync every SQLite commit
	InitStore bool // start a new store although NATS shows earlier work

	// Providers is the provider configuration; with Sandbox, Run starts
	// the sandbox providers on SandboxListen and uses them instead.
	Providers     *config.Config
	Sandbox       bool
	SandboxListen string

	// HTTP is the listener of /metrics, /healthz, /readyz and, unless
	// NotifyPath is "", SUD's notifications; Registry holds the metrics.
	HTTP       net.Listener
	NotifyPath string
	Registry   *prometheus.Registry

	// Worker holds the worker's tunables; Run fills in the connection,
	// store, providers, owner, logger and metrics.
	Worker    worker.Config
	Retention time.Duration // delete terminal orders this long after (0: keep)
	Logger    *slog.Logger
	// Console is the operator console at / on HTTP, as its Check left it.
	Console console.Flags
}

// Run starts everything opts asks for and runs the worker until ctx is
// done; on the way out it stops what it started, in reverse. An error
// the operator can fix says how.
func Run(ctx context.Context, opts Options) error {
	return explain(run(ctx, opts), opts)
}

func run(ctx context.Context, opts Options) error {
	log := opts.Logger
	db, err := openStore(ctx, opts)
	if err != nil {
		return err
	}
	defer func() { db.close() }() // open replaces close once a PostgreSQL store is open
	abandon := db.abandon

	nc, natsURL := opts.Conn, opts.NATSURL
	if natsURL == "" {
		jsDir := filepath.Join(opts.DataDir, "jetstream")
		srv, err := embednats.Start(embednats.Options{Listen: opts.NATSListen, StoreDir: jsDir, MaxStore: opts.JSMaxStore, Logger: log})
		if err != nil {
			abandon()
			return fmt.Errorf("embedded NATS: %w", err)
		}
		defer srv.Shutdown()
		go srv.KeepJetStream(ctx, KeepJetStreamEvery)
		natsURL = srv.ClientURL()
		log.Info("embedded JetStream started", "url", natsURL, "store", jsDir)
		if nc, err = opts.Connect(natsURL); err != nil {
			abandon()
			return err
		}
		defer nc.Close()
	}

	switch {
	case !db.existed && opts.InitStore:
		log.Warn("starting with an empty store on purpose (--init-store)", "store", db.where)
	case !db.existed:
		checkCtx, cancel := context.WithTimeout(ctx, CheckNewStoreTimeout)
		err := worker.CheckNewStore(checkCtx, nc, opts.Subjects, db.where)
		cancel()
		if err != nil {
			// Leave no empty database behind: the next start must ask again.
			db.abandon()
			return err
		}
	case opts.InitStore:
		log.Info("--init-store ignored: the store exists and keeps its orders", "store", db.where)
	}
	st, err := db.open(ctx)
	if err != nil {
		return err
	}
	if opts.WrapStore != nil {
		st = opts.WrapStore(st)
	}

	metrics := worker.NewMetrics(opts.Registry)
	cfg := opts.Providers
	var sb *sandbox.Sandbox
	if opts.Sandbox {
		var url string
		var stop func()
		if sb, url, stop, err = StartSandbox(opts.SandboxListen, filepath.Join(opts.DataDir, "sandbox.json"), log); err != nil {
			return err
		}
		defer stop()
		cfg = config.Sandbox(url)
		cfg.Now = sb.Now
		log.Info("sandbox providers started", "url", url)
	}
	sudClient, wallets, err := NewProviders(cfg, metrics)
	if err != nil {
		return err
	}
	orders, wallets := Protect(sudClient, wallets, cfg.Protect, metrics, log)

	absDataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	wc := opts.Worker
	wc.Conn, wc.Subjects, wc.Store, wc.SUD, wc.Wallets = nc, opts.Subjects, st, orders, wallets
	if db.shared {
		// Several workers serve the prefix, kept apart by the store's
		// owners and fences: no prefix lease (see worker.Config.ManyWorkers).
		wc.ManyWorkers = true
	} else {
		// SQLite: one worker per prefix, held by the prefix lease.
		owner := worker.ThisProcess(absDataDir, time.Now())
		wc.Owner = &owner
	}
	wc.Logger, wc.Metrics = log, metrics
	w, err := worker.New(wc)
	if err != nil {
		return err
	}
	var notify http.Handler
	if opts.NotifyPath != "" {
		notify = sud.NotifyHandler(sud.NotifyConfig{AppID: cfg.SUD.AppID, AppSecret: cfg.SUD.AppSecret, Now: cfg.Now, Logger: log},
			func(ctx context.Context, n sud.Notification) error {
				return w.SUDNotified(ctx, n.Order.OutOrderID, n.Order.Status)
			})
	}
	ui, err := opts.Console.Handler(ctx, console.Serve{Conn: nc, Subjects: opts.Subjects, Orders: st, Metrics: opts.Registry, Logger: log})
	if err != nil {
		return err
	}
	httpSrv, httpAddr := StartHTTP(opts.HTTP, HTTP{Registry: opts.Registry, NotifyPath: opts.NotifyPath, Notify: notify, UI: ui, Logger: log,
		Ready: func(r *http.Request) (bool, string) {
			if w.Ready() {
				return true, ""
			}
			return false, fmt.Sprintf("not ready: nats %s, store ping %v", nc.Status(), st.Ping(r.Context()))
		}})
	defer Shutdown(httpSrv)
	if sb != nil && notify != nil {
		sb.SetSUDNotifyURL("http://" + httpAddr + opts.NotifyPath)
	}
	if opts.Retention > 0 {
		go w.RunRetention(ctx, opts.Retention)
	}
	log.Info("coinsaga serving", "nats", natsURL, "http", httpAddr, "data_dir", opts.DataDir, "store", db.where)
	return w.Run(ctx)
}
