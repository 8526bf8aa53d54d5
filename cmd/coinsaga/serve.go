package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/buildinfo"
	"github.com/coinsaga/coinsaga/internal/cli"
	"github.com/coinsaga/coinsaga/internal/config"
	"github.com/coinsaga/coinsaga/internal/console"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/internal/service"
	"github.com/coinsaga/coinsaga/worker"
)

// serveFlags are the flags of `coinsaga serve`: register declares them
// and options hands them to internal/service, whose Options.Check
// refuses the values serve cannot run with and whose Run runs them. A
// new flag goes in register, options and, if it can be wrong, Check.
type serveFlags struct {
	nats            natsFlags
	natsListen      string
	dataDir         string
	databaseURL     string
	sandbox         bool
	sandboxListen   string
	sandboxURL      string
	httpListen      string
	configFile      string
	concurrency     int
	maxSteps        int
	confirmInterval time.Duration
	confirmTimeout  time.Duration
	maxAttempts     int
	sudExecTimeout  time.Duration
	outageHold      time.Duration
	sudNotifyPath   string
	retention       time.Duration
	syncFull        bool
	initStore       bool
	streamReplicas  int
	statusMaxAge    time.Duration
	statusMaxBytes  cli.ByteSize
	jsMaxStore      cli.ByteSize
	logFormat       string
	logLevel        string
	console         console.Flags
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	f.nats.register(fs)
	// Unset means "embedded" for serve, not the tools' default URL.
	f.nats.url = ""
	natsURL := fs.Lookup("nats-url")
	natsURL.DefValue = ""
	natsURL.Usage = "external NATS server URL(s), comma-separated for a cluster; unset: serve runs an embedded JetStream on --nats-listen.\n" +
		"A URL naming --nats-listen's own address (nats://127.0.0.1:4222, the tools' default) uses the NATS answering there,\n" +
		"or starts the embedded one there when none does: COINSAGA_NATS_URL exported for the tools keeps serve working"
	fs.StringVar(&f.natsListen, "nats-listen", cli.DefaultNATSListen, "listen address of the embedded JetStream server (when --nats-url is unset, or names this address and no NATS answers there)")
	fs.StringVar(&f.dataDir, "data-dir", "./data", "folder for the SQLite store and the embedded JetStream files")
	fs.StringVar(&f.databaseURL, "database-url", "", "PostgreSQL database of the orders, a `postgres://` URL (prefer COINSAGA_DATABASE_URL: it holds a password); unset: SQLite under --data-dir")
	fs.BoolVar(&f.sandbox, "sandbox", false, "start the sandbox providers in-process and use them")
	fs.StringVar(&f.sandboxListen, "sandbox-listen", defaultSandboxListen, "listen address of the in-process sandbox (with --sandbox)")
	fs.StringVar(&f.sandboxURL, "sandbox-url", "", "use a sandbox already running at this URL (a separate `coinsaga sandbox`)")
	fs.StringVar(&f.httpListen, "http-listen", "127.0.0.1:8080", "listen address for /metrics, /healthz and /readyz")
	fs.StringVar(&f.configFile, "config", "", "YAML file with provider endpoints and secrets (see docs/configuration.md)")
	fs.IntVar(&f.concurrency, "concurrency", worker.DefaultConcurrency, "least orders with a saga step under way; the limit grows while providers keep their latency, up to --max-steps")
	fs.IntVar(&f.maxSteps, "max-steps", worker.DefaultMaxSteps, "most orders with a saga step under way (nearly all waiting for a provider)")
	fs.DurationVar(&f.confirmInterval, "confirm-interval", worker.DefaultConfirmInterval, "time between balance polls confirming a debit")
	fs.DurationVar(&f.confirmTimeout, "confirm-timeout", worker.DefaultConfirmTimeout, "how long a debit may take to show before it is compensated")
	fs.IntVar(&f.maxAttempts, "max-attempts", worker.DefaultMaxAttempts, "calls per saga step before a transient failure counts as final")
	fs.StringVar(&f.sudNotifyPath, "sud-notify-path", "/sud/notify", "path on --http-listen where SUD posts its order-changed notifications (empty: none; with --sandbox the sandbox is pointed at it)")
	fs.DurationVar(&f.outageHold, "outage-hold", worker.DefaultOutageHold, "how long orders wait in their step, spending no retry, while a provider endpoint's circuit is open")
	fs.DurationVar(&f.sudExecTimeout, "sud-execute-timeout", worker.DefaultSUDExecuteTimeout, "how long SUD may take to decide an order's action before the order goes to an operator (needs_attention)")
	fs.DurationVar(&f.retention, "retention", 0, "delete terminal orders this long after they ended (0 keeps them)")
	fs.BoolVar(&f.syncFull, "sync-full", false, "fsync every SQLite commit (survives power loss; slower)")
	fs.BoolVar(&f.initStore, "init-store", false, "start with a new, empty store although NATS shows an earlier store's work (after a deliberate reset: orders of the lost store stay unfinished)")
	fs.IntVar(&f.streamReplicas, "stream-replicas", 1, "replicas of the streams coinsaga creates (3 on a NATS cluster); existing streams are never changed")
	fs.DurationVar(&f.statusMaxAge, "status-max-age", events.DefaultStatusMaxAge, "how long the status stream keeps events (when coinsaga creates it)")
	f.statusMaxBytes = events.DefaultStatusMaxBytes
	fs.Var(&f.statusMaxBytes, "status-max-bytes", "size limit of the status stream, a `size` like 256MiB, reserved in full by JetStream when coinsaga creates it")
	fs.Var(&f.jsMaxStore, "jetstream-max-store", "disk the embedded JetStream may use, a `size` like 10GiB (0: 75% of the free disk under --data-dir)")
	cli.RegisterLogFlags(fs, &f.logFormat, &f.logLevel)
	f.console.Register(fs)
}

// options is what serve runs with, from the flags; the connections,
// listener, providers, logger and console are filled in by runServe.
func (f *serveFlags) options() service.Options {
	return service.Options{
		NATSListen: f.natsListen, JSMaxStore: int64(f.jsMaxStore), Subjects: events.Subjects{Prefix: f.nats.prefix},
		Connect: func(url string) (*nats.Conn, error) {
			n := f.nats
			n.url = url
			return n.connect("serve")
		},
		DatabaseURL: f.databaseURL, DataDir: f.dataDir, SyncFull: f.syncFull, InitStore: f.initStore,
		Sandbox: f.sandbox, SandboxListen: f.sandboxListen, NotifyPath: f.sudNotifyPath, Retention: f.retention,
		Worker: worker.Config{
			Streams:     events.StreamOptions{Replicas: f.streamReplicas, StatusMaxAge: f.statusMaxAge, StatusMaxBytes: int64(f.statusMaxBytes)},
			Concurrency: f.concurrency, MaxSteps: f.maxSteps, ConfirmInterval: f.confirmInterval, ConfirmTimeout: f.confirmTimeout,
			SUDExecuteTimeout: f.sudExecTimeout, OutageHold: f.outageHold,
			Retry: worker.RetryPolicy{MaxAttempts: f.maxAttempts},
		},
	}
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := newFlags("serve", "serve [flags]", stderr)
	f.register(fs)
	src, err := parseSources(fs, args)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("serve takes no arguments (got %q)", fs.Args())
	}
	opts := f.options()
	if err := opts.Check(src); err != nil {
		return err
	}
	if err := f.console.Check(f.httpListen); err != nil {
		return err
	}
	opts.Console = f.console // as its Check left it
	log, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	opts.Logger = log
	if f.sandbox && f.sandboxURL != "" {
		return errors.New("--sandbox and --sandbox-url exclude each other")
	}
	switch {
	case f.configFile != "":
		if opts.Providers, err = loadConfig(f.configFile); err != nil {
			return err
		}
	case !f.sandbox && f.sandboxURL == "":
		return errors.New("no providers: give --sandbox, --sandbox-url URL or --config FILE")
	}
	if opts.DatabaseURL == "" && opts.Providers != nil {
		opts.DatabaseURL = opts.Providers.DatabaseURL // the flag and its variable win over the file
	}
	// --sandbox-url points the clients at the sandbox although --config
	// was given too (its file is still checked); --sandbox does the same
	// in service.Run.
	if f.sandboxURL != "" {
		opts.Providers = config.Sandbox(strings.TrimRight(f.sandboxURL, "/"))
	}
	// Everything that can fail at once fails before the store exists: the
	// addresses serve listens on, and an external NATS that must answer.
	embedded := f.embeddedNATS(log)
	if embedded {
		if err := service.ProbeListen(f.natsListen); err != nil {
			return cli.ListenError("nats-listen", f.natsListen, src, err, "another coinsaga or nats-server?", " or --nats-url URL")
		}
	}
	if opts.HTTP, err = net.Listen("tcp", f.httpListen); err != nil {
		return cli.ListenError("http-listen", f.httpListen, src, err, "another coinsaga?", "")
	}
	defer opts.HTTP.Close()
	if f.sandbox {
		if err := service.ProbeListen(f.sandboxListen); err != nil {
			return cli.ListenError("sandbox-listen", f.sandboxListen, src, err, "another coinsaga or coinsaga sandbox?", ", or --sandbox-url URL to use a running sandbox")
		}
	}
	if !embedded {
		if opts.Conn, err = f.nats.connect("serve"); err != nil {
			return cli.NATSURLError(f.nats.url, src, err)
		}
		defer opts.Conn.Close()
		opts.NATSURL = f.nats.url
	}
	if err := os.MkdirAll(f.dataDir, 0o750); err != nil {
		return fmt.Errorf("--data-dir %s: %s", f.dataDir, config.PathCause(err))
	}
	opts.Registry = prometheus.NewRegistry()
	opts.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildinfo.Register(opts.Registry)

	err = service.Run(ctx, opts)
	if le := (*embednats.ListenError)(nil); errors.As(err, &le) {
		return cli.ListenError("nats-listen", f.natsListen, src, le.Err, "another coinsaga or nats-server?", " or --nats-url URL")
	}
	return err
}

// loadConfig reads and validates a config file (internal/config).
var loadConfig = config.Load

// embeddedNATS says whether serve runs its own JetStream
// (service.EmbeddedNATS has the rule).
func (f *serveFlags) embeddedNATS(log *slog.Logger) bool {
	return service.EmbeddedNATS(f.nats.url, f.natsListen, log)
}

// namesAddress reports whether the NATS URL u points at the listen
// address addr of this machine.
var namesAddress = service.NamesAddress
