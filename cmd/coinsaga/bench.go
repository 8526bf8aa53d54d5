package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/config"
	"github.com/coinsaga/coinsaga/internal/loadgen"
	"github.com/coinsaga/coinsaga/internal/service"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/worker"
)

// benchFlags are the flags of `coinsaga bench`: where the system is, and
// the run loadgen makes against it.
type benchFlags struct {
	nats            natsFlags
	sandboxURL      string
	self            bool
	dataDir         string
	databaseURL     string
	workers         int
	confirmInterval time.Duration
	confirmTimeout  time.Duration
	retention       time.Duration
	load            loadgen.Config
}

func (f *benchFlags) register(fs *flag.FlagSet) {
	f.nats.register(fs)
	fs.StringVar(&f.sandboxURL, "sandbox-url", "", "admin URL of the sandbox the target serve uses (faults and --baseline); not with --self")
	fs.BoolVar(&f.self, "self", false, "run everything in this process: embedded JetStream, sandbox, SQLite and a worker, all on 127.0.0.1")
	fs.StringVar(&f.dataDir, "data-dir", "", "with --self: folder for SQLite and JetStream (default: a temporary folder, removed afterwards)")
	fs.StringVar(&f.databaseURL, "database-url", "", "with --self: a PostgreSQL database (postgres://) for the orders instead of SQLite; only the flag, not COINSAGA_DATABASE_URL")
	fs.IntVar(&f.workers, "workers", 1, "with --self --database-url: workers sharing the database in this process, each with its own store handle, lease and --concurrency")
	fs.IntVar(&f.load.Orders, "orders", 10000, "orders to publish and wait for")
	fs.Float64Var(&f.load.Rate, "rate", 0, "orders per second to offer (0: as fast as JetStream takes them)")
	fs.IntVar(&f.load.Concurrency, "concurrency", 64, "saga steps at once (--self) and concurrent calls of the --baseline provider ceiling")
	fs.DurationVar(&f.confirmInterval, "confirm-interval", 15*time.Second, "with --self: time between balance polls confirming a debit")
	fs.DurationVar(&f.confirmTimeout, "confirm-timeout", 2*time.Minute, "with --self: how long a debit may take to show before it is compensated")
	fs.IntVar(&f.load.LatencyMS, "latency-ms", 0, "sandbox fault: milliseconds added to every provider call")
	fs.IntVar(&f.load.LatencyJitterMS, "latency-jitter-ms", 0, "sandbox fault: up to this many more milliseconds, at random, on every provider call (as a real network spreads replies)")
	fs.IntVar(&f.load.VisibilityDelayMS, "visibility-delay-ms", 0, "sandbox fault: milliseconds a debit stays out of balance reads (pay endpoints)")
	fs.Float64Var(&f.load.MidasShare, "midas-share", 0.5, "fraction of orders paid through Midas; the rest through MOGS")
	fs.IntVar(&f.load.Players, "players", 10000, "distinct players the orders are spread over")
	fs.BoolVar(&f.load.Baseline, "baseline", false, "also measure the provider-call and raw JetStream ceilings and the ratios to them")
	fs.StringVar(&f.load.Profile, "profile", "", "write a CPU profile (pprof) of the measured run to this file")
	fs.StringVar(&f.load.MemProfile, "memprofile", "", "write a heap profile (pprof) taken at the end of the measured run to this file")
	fs.IntVar(&f.load.Background, "background", 0, "first park this many orders in confirmation (their debits hidden for --background-delay-ms), then measure while they wait")
	fs.IntVar(&f.load.BackgroundDelayMS, "background-delay-ms", 60000, "visibility delay of the --background orders' debits")
	fs.IntVar(&f.load.Preload, "preload", 0, "with --self: first write this many completed orders straight into the store, to measure a large store")
	fs.DurationVar(&f.retention, "retention", 0, "with --self: prune terminal orders this long after they ended, as serve --retention does")
	fs.DurationVar(&f.load.Timeout, "timeout", 10*time.Minute, "give up waiting for the orders after this long")
}

func (f *benchFlags) check(set map[string]bool) error {
	switch {
	case f.load.Orders <= 0:
		return errors.New("--orders must be positive")
	case f.load.Rate < 0:
		return errors.New("--rate must not be negative")
	case f.load.Concurrency <= 0:
		return errors.New("--concurrency must be positive")
	case f.load.MidasShare < 0 || f.load.MidasShare > 1:
		return errors.New("--midas-share must be in [0,1]")
	case f.load.Players <= 0:
		return errors.New("--players must be positive")
	case f.load.LatencyMS < 0 || f.load.LatencyJitterMS < 0 || f.load.VisibilityDelayMS < 0 || f.load.BackgroundDelayMS < 0:
		return errors.New("--latency-ms, --latency-jitter-ms, --visibility-delay-ms and --background-delay-ms must not be negative")
	case f.load.Background < 0 || f.load.Preload < 0:
		return errors.New("--background and --preload must not be negative")
	case f.workers < 1 || (f.workers > 1 && f.databaseURL == ""):
		return errors.New("--workers must be positive, and above 1 needs --database-url (SQLite has one worker)")
	}
	if f.self {
		if f.sandboxURL != "" || set["nats-url"] {
			return errors.New("--self runs its own NATS and sandbox: drop --nats-url and --sandbox-url")
		}
		return nil
	}
	for _, name := range []string{"data-dir", "database-url", "workers", "preload", "retention", "confirm-interval", "confirm-timeout"} {
		if set[name] {
			return fmt.Errorf("--%s only applies with --self (a running serve has its own)", name)
		}
	}
	if f.sandboxURL == "" && (f.load.LatencyMS > 0 || f.load.LatencyJitterMS > 0 || f.load.VisibilityDelayMS > 0 || f.load.Background > 0 || f.load.Baseline) {
		return errors.New("--latency-ms, --visibility-delay-ms, --background and --baseline need the sandbox: give --sandbox-url")
	}
	return nil
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f benchFlags
	fs := newFlags("bench", "bench [--self | --nats-url URL --sandbox-url URL] [flags]", stderr)
	f.register(fs)
	src, err := parseSources(fs, args)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	for name, env := range src {
		// COINSAGA_NATS_URL exported for the tools does not ask --self
		// to use an outside NATS; only the flag itself does.
		set[name] = !(f.self && name == "nats-url" && env != "")
		if name == "database-url" && env != "" {
			// An exported production URL must not receive bench orders.
			f.databaseURL, set[name] = "", false
		}
	}
	if err := f.check(set); err != nil {
		return err
	}
	f.load.Subjects = events.Subjects{Prefix: f.nats.prefix}
	f.load.Run = strconv.FormatInt(time.Now().UnixNano()%1e12, 36) // makes this run's out_order_ids unique
	f.load.Log = stderr
	var t loadgen.Target
	if f.self {
		s, err := startSelf(ctx, &f, stderr)
		if err != nil {
			return err
		}
		defer s.Close()
		t = s.Target
	} else {
		if t, err = connectRemote(&f); err != nil {
			return err
		}
		defer t.Sub.Close()
		defer t.Pub.Close()
	}
	res, err := loadgen.Run(ctx, f.load, t)
	if err != nil {
		return err
	}
	line, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("bench result: %w", err)
	}
	fmt.Fprintln(stdout, string(line))
	if res.TimedOut {
		return fmt.Errorf("%d of %d orders not terminal within %s", res.Unfinished, res.Orders, f.load.Timeout)
	}
	return nil
}

// startSelf starts the whole system in this process, on loopback only,
// wired from serve's pieces.
func startSelf(ctx context.Context, f *benchFlags, stderr io.Writer) (*loadgen.Self, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := loadgen.SelfConfig{Dir: f.dataDir, Log: log, DatabaseURL: f.databaseURL, Workers: f.workers,
		Worker: worker.Config{Subjects: f.load.Subjects, Concurrency: f.load.Concurrency,
			ConfirmInterval: f.confirmInterval, ConfirmTimeout: f.confirmTimeout},
		Connect: func(url, name string) (*nats.Conn, error) {
			n := f.nats
			n.url = url
			return n.connect(name)
		},
		StartSandbox: func() (string, func(), error) {
			_, url, stop, err := service.StartSandbox("127.0.0.1:0", "", log)
			return url, stop, err
		},
		Providers: benchProviders,
	}
	if f.retention > 0 {
		c.Also = append(c.Also, func(ctx context.Context, st store.Store) { worker.PruneLoop(ctx, st, f.retention, time.Now, log) })
	}
	s, err := loadgen.StartSelf(ctx, c)
	if err == nil {
		fmt.Fprintf(stderr, "bench: self: JetStream at %s, sandbox at %s, store %s, %d worker(s)\n", s.NATSURL, s.SandboxURL, s.StoreName, f.workers)
	}
	return s, err
}

// connectRemote targets a running serve, and its sandbox when given. The
// publishing and the subscribing connection are separate, so a burst of
// publishes never delays the status events timed.
func connectRemote(f *benchFlags) (t loadgen.Target, err error) {
	if f.sandboxURL != "" {
		url := strings.TrimRight(f.sandboxURL, "/")
		t.Admin = sandbox.NewAdminClient(url)
		if t.SUD, t.Wallets, err = benchProviders(url); err != nil {
			return t, err
		}
	}
	if t.Pub, err = f.nats.connect("bench publisher"); err != nil {
		return t, err
	}
	if t.Sub, err = f.nats.connect("bench subscriber"); err != nil {
		t.Pub.Close()
	}
	return t, err
}

// benchProviders are serve's provider clients for the sandbox at url.
func benchProviders(url string) (worker.OrderService, map[string]providers.Wallet, error) {
	return service.NewProviders(config.Sandbox(url), nil)
}

// statusLite and readStatusLite keep their old names for bench_test.go,
// which tests the status reader and must pass unchanged.
type statusLite = loadgen.Status

func readStatusLite(data []byte) (statusLite, bool) { return loadgen.ReadStatus(data) }
