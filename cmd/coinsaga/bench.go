package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/internal/progress"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/worker"
)

// benchFlags are the flags of `coinsaga bench`.
type benchFlags struct {
	nats              natsFlags
	sandboxURL        string
	self              bool
	dataDir           string
	orders            int
	rate              float64
	concurrency       int
	confirmInterval   time.Duration
	confirmTimeout    time.Duration
	latencyMS         int
	latencyJitterMS   int
	visibilityDelayMS int
	midasShare        float64
	players           int
	baseline          bool
	profile           string
	memProfile        string
	background        int
	backgroundDelayMS int
	preload           int
	retention         time.Duration
	timeout           time.Duration
}

func (f *benchFlags) register(fs *flag.FlagSet) {
	f.nats.register(fs)
	fs.StringVar(&f.sandboxURL, "sandbox-url", "", "admin URL of the sandbox the target serve uses (faults and --baseline); not with --self")
	fs.BoolVar(&f.self, "self", false, "run everything in this process: embedded JetStream, sandbox, SQLite and a worker, all on 127.0.0.1")
	fs.StringVar(&f.dataDir, "data-dir", "", "with --self: folder for SQLite and JetStream (default: a temporary folder, removed afterwards)")
	fs.IntVar(&f.orders, "orders", 10000, "orders to publish and wait for")
	fs.Float64Var(&f.rate, "rate", 0, "orders per second to offer (0: as fast as JetStream takes them)")
	fs.IntVar(&f.concurrency, "concurrency", 64, "saga steps at once (--self) and concurrent calls of the --baseline provider ceiling")
	fs.DurationVar(&f.confirmInterval, "confirm-interval", 15*time.Second, "with --self: time between balance polls confirming a debit")
	fs.DurationVar(&f.confirmTimeout, "confirm-timeout", 2*time.Minute, "with --self: how long a debit may take to show before it is compensated")
	fs.IntVar(&f.latencyMS, "latency-ms", 0, "sandbox fault: milliseconds added to every provider call")
	fs.IntVar(&f.latencyJitterMS, "latency-jitter-ms", 0, "sandbox fault: up to this many more milliseconds, at random, on every provider call (as a real network spreads replies)")
	fs.IntVar(&f.visibilityDelayMS, "visibility-delay-ms", 0, "sandbox fault: milliseconds a debit stays out of balance reads (pay endpoints)")
	fs.Float64Var(&f.midasShare, "midas-share", 0.5, "fraction of orders paid through Midas; the rest through MOGS")
	fs.IntVar(&f.players, "players", 10000, "distinct players the orders are spread over")
	fs.BoolVar(&f.baseline, "baseline", false, "also measure the provider-call and raw JetStream ceilings and the ratios to them")
	fs.StringVar(&f.profile, "profile", "", "write a CPU profile (pprof) of the measured run to this file")
	fs.StringVar(&f.memProfile, "memprofile", "", "write a heap profile (pprof) taken at the end of the measured run to this file")
	fs.IntVar(&f.background, "background", 0, "first park this many orders in confirmation (their debits hidden for --background-delay-ms), then measure while they wait")
	fs.IntVar(&f.backgroundDelayMS, "background-delay-ms", 60000, "visibility delay of the --background orders' debits")
	fs.IntVar(&f.preload, "preload", 0, "with --self: first write this many completed orders straight into the store, to measure a large store")
	fs.DurationVar(&f.retention, "retention", 0, "with --self: prune terminal orders this long after they ended, as serve --retention does")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "give up waiting for the orders after this long")
}

func (f *benchFlags) check(set map[string]bool) error {
	switch {
	case f.orders <= 0:
		return errors.New("--orders must be positive")
	case f.rate < 0:
		return errors.New("--rate must not be negative")
	case f.concurrency <= 0:
		return errors.New("--concurrency must be positive")
	case f.midasShare < 0 || f.midasShare > 1:
		return errors.New("--midas-share must be in [0,1]")
	case f.players <= 0:
		return errors.New("--players must be positive")
	case f.latencyMS < 0 || f.latencyJitterMS < 0 || f.visibilityDelayMS < 0 || f.backgroundDelayMS < 0:
		return errors.New("--latency-ms, --latency-jitter-ms, --visibility-delay-ms and --background-delay-ms must not be negative")
	case f.background < 0 || f.preload < 0:
		return errors.New("--background and --preload must not be negative")
	}
	if f.self {
		if f.sandboxURL != "" || set["nats-url"] {
			return errors.New("--self runs its own NATS and sandbox: drop --nats-url and --sandbox-url")
		}
		return nil
	}
	for _, name := range []string{"data-dir", "preload", "retention", "confirm-interval", "confirm-timeout"} {
		if set[name] {
			return fmt.Errorf("--%s only applies with --self (a running serve has its own)", name)
		}
	}
	if f.sandboxURL == "" && (f.latencyMS > 0 || f.latencyJitterMS > 0 || f.visibilityDelayMS > 0 || f.background > 0 || f.baseline) {
		return errors.New("--latency-ms, --visibility-delay-ms, --background and --baseline need the sandbox: give --sandbox-url")
	}
	return nil
}

// benchResult is the one JSON line bench prints.
type benchResult struct {
	Orders       int     `json:"orders"`
	Completed    int     `json:"completed"`
	Failed       int     `json:"failed"`
	Seconds      float64 `json:"seconds"`
	OrdersPerSec float64 `json:"orders_per_sec"`
	P50ms        float64 `json:"p50_ms"`
	P95ms        float64 `json:"p95_ms"`
	P99ms        float64 `json:"p99_ms"`
	MaxRSSMB     float64 `json:"max_rss_mb"`

	// The part of the latency after the worker decided an order's
	// terminal state: its commit, the relay and JetStream to the bench.
	// Both clocks are this machine's with --self; against a remote serve
	// they are only as close as the two machines' clocks.
	EventLagP50ms float64 `json:"event_lag_p50_ms,omitempty"`
	EventLagP99ms float64 `json:"event_lag_p99_ms,omitempty"`

	TimedOut        bool    `json:"timed_out,omitempty"`
	Unfinished      int     `json:"unfinished,omitempty"`
	PublishFailures int     `json:"publish_failures,omitempty"`
	PublishRetries  int     `json:"publish_retries,omitempty"`
	OfferedRate     float64 `json:"offered_rate,omitempty"`

	Background             int     `json:"background,omitempty"`
	BackgroundParkSeconds  float64 `json:"background_park_seconds,omitempty"`
	BackgroundStillWaiting *int    `json:"background_still_waiting,omitempty"` // set with --background
	RSSAfterParkMB         float64 `json:"rss_after_park_mb,omitempty"`

	// With --self, the CPU time of the whole system (this process) per
	// order finished in the measured run, and per order's calls in the
	// provider ceiling. On a shared virtual machine CPU time drifts less
	// than wall time, so its ratio tells builds apart where orders/s
	// cannot: the part of an order's CPU that is its provider calls.
	CPUmsPerOrder        float64 `json:"cpu_ms_per_order,omitempty"`
	ProviderCeilingCPUms float64 `json:"provider_ceiling_cpu_ms_per_order,omitempty"`
	RatioProviderCPU     float64 `json:"ratio_provider_cpu,omitempty"`

	Preloaded          int     `json:"preloaded,omitempty"`
	StoreBytesPerOrder float64 `json:"store_bytes_per_order,omitempty"`

	ProviderCeiling  float64 `json:"provider_ceiling_per_sec,omitempty"`
	JetStreamCeiling float64 `json:"jetstream_ceiling_per_sec,omitempty"`
	RatioProvider    float64 `json:"ratio_provider,omitempty"`
	RatioJetStream   float64 `json:"ratio_jetstream,omitempty"`

	// With --baseline and a latency, the same orders again with no added
	// latency, in the same invocation, and the measured run's share of it.
	ZeroLatencyOrdersPerSec float64 `json:"zero_latency_orders_per_sec,omitempty"`
	RatioZeroLatency        float64 `json:"ratio_zero_latency,omitempty"`
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
	}
	if err := f.check(set); err != nil {
		return err
	}
	b := &bench{f: f, stderr: stderr, subjects: events.Subjects{Prefix: f.nats.prefix},
		run: strconv.FormatInt(time.Now().UnixNano()%1e12, 36)}
	defer b.close()
	if f.self {
		err = b.startSelf(ctx)
	} else {
		err = b.connectRemote()
	}
	if err != nil {
		return err
	}
	res, err := b.measure(ctx)
	if err != nil {
		return err
	}
	line, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("bench result: %w", err)
	}
	fmt.Fprintln(stdout, string(line))
	if res.TimedOut {
		return fmt.Errorf("%d of %d orders not terminal within %s", res.Unfinished, res.Orders, f.timeout)
	}
	return nil
}

// bench is one bench run and everything it started.
type bench struct {
	f        benchFlags
	stderr   io.Writer
	subjects events.Subjects
	run      string // makes this run's out_order_ids unique

	natsURL    string
	sandboxURL string
	admin      *sandbox.AdminClient
	pubConn    *nats.Conn
	subConn    *nats.Conn
	js         jetstream.JetStream

	// --self only.
	st      *store.SQLite
	dbPath  string
	sud     *sud.Client
	wallets map[string]providers.Wallet
	cleanup []func() // run in reverse by close
}

func (b *bench) close() {
	for i := len(b.cleanup) - 1; i >= 0; i-- {
		b.cleanup[i]()
	}
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "bench: "+format+"\n", args...)
}

// startSelf starts the whole system in this process, on loopback only.
func (b *bench) startSelf(ctx context.Context) error {
	dir := b.f.dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "coinsaga-bench-")
		if err != nil {
			return fmt.Errorf("bench data dir: %w", err)
		}
		b.cleanup = append(b.cleanup, func() { _ = os.RemoveAll(tmp) })
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("bench data dir: %w", err)
	}
	log := slog.New(slog.NewTextHandler(b.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	b.dbPath = filepath.Join(dir, "coinsaga.db")
	st, err := store.OpenSQLite(ctx, b.dbPath, store.WithLogger(log))
	if err != nil {
		return err
	}
	b.st = st
	b.cleanup = append(b.cleanup, func() { _ = st.Close() })

	srv, err := embednats.Start(embednats.Options{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "jetstream")})
	if err != nil {
		return fmt.Errorf("embedded NATS: %w", err)
	}
	b.cleanup = append(b.cleanup, srv.Shutdown)
	b.natsURL = srv.ClientURL()

	_, url, stopSandbox, err := startSandbox("127.0.0.1:0", log)
	if err != nil {
		return err
	}
	b.cleanup = append(b.cleanup, stopSandbox)
	b.sandboxURL = url
	b.admin = sandbox.NewAdminClient(url)

	b.f.nats.url = b.natsURL
	wc, err := b.f.nats.connect("bench worker")
	if err != nil {
		return err
	}
	b.cleanup = append(b.cleanup, wc.Close)
	if b.sud, b.wallets, err = newProviders(sandboxConfig(url), nil); err != nil {
		return err
	}
	w, err := worker.New(worker.Config{
		Conn: wc, Subjects: b.subjects, Store: st, SUD: b.sud, Wallets: b.wallets,
		Concurrency: b.f.concurrency, ConfirmInterval: b.f.confirmInterval, ConfirmTimeout: b.f.confirmTimeout,
		Logger: log,
	})
	if err != nil {
		return err
	}
	wctx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	// Stop the worker before the store, NATS and sandbox it uses (cleanup
	// runs in reverse).
	b.cleanup = append(b.cleanup, func() { stopWorker(); <-done })
	if b.f.retention > 0 {
		go pruneLoop(wctx, st, b.f.retention, log)
	}
	if err := b.dial(); err != nil {
		return err
	}
	b.logf("self: JetStream at %s, sandbox at %s, store %s", b.natsURL, url, b.dbPath)
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !w.Ready() {
		select {
		case err := <-done:
			return fmt.Errorf("worker stopped before it was ready: %v", err)
		case <-deadline.C:
			return errors.New("worker not ready within 30s")
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// connectRemote targets a running serve.
func (b *bench) connectRemote() error {
	b.natsURL = b.f.nats.url
	if b.f.sandboxURL != "" {
		b.sandboxURL = strings.TrimRight(b.f.sandboxURL, "/")
		b.admin = sandbox.NewAdminClient(b.sandboxURL)
	}
	return b.dial()
}

// dial opens the publishing and the subscribing connection: separate, so a
// burst of publishes never delays the status events we time.
func (b *bench) dial() error {
	f := b.f.nats
	f.url = b.natsURL
	var err error
	if b.pubConn, err = f.connect("bench publisher"); err != nil {
		return err
	}
	b.cleanup = append(b.cleanup, b.pubConn.Close)
	if b.subConn, err = f.connect("bench subscriber"); err != nil {
		return err
	}
	b.cleanup = append(b.cleanup, b.subConn.Close)
	b.js, err = jetstream.New(b.pubConn, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return fmt.Errorf("bench jetstream: %w", err)
	}
	return nil
}

// setFaults puts the latency on every endpoint and the visibility delay on
// the pay endpoints (a per-endpoint fault replaces "*", so it repeats the
// latency).
func (b *bench) setFaults(ctx context.Context, latencyMS, visibilityMS int) error {
	if b.admin == nil {
		return nil
	}
	if err := b.admin.ClearFaults(ctx); err != nil {
		return err
	}
	jitter := 0
	if latencyMS > 0 {
		jitter = b.f.latencyJitterMS // a run without latency has none
	}
	if latencyMS > 0 || jitter > 0 {
		if err := b.admin.SetFault(ctx, sandbox.Fault{Endpoint: sandbox.EveryEndpoint, LatencyMS: latencyMS, LatencyJitterMS: jitter}); err != nil {
			return err
		}
	}
	if visibilityMS > 0 {
		for _, ep := range []string{"mogs.pay", "midas.pay_m"} {
			if err := b.admin.SetFault(ctx, sandbox.Fault{Endpoint: ep, LatencyMS: latencyMS, LatencyJitterMS: jitter, VisibilityDelayMS: visibilityMS}); err != nil {
				return err
			}
		}
	}
	return nil
}

// measure runs the phases; res is named so that deferred counts (the
// background orders still waiting at the end) reach the caller.
func (b *bench) measure(ctx context.Context) (res benchResult, err error) {
	res = benchResult{Orders: b.f.orders, OfferedRate: b.f.rate}
	if b.f.preload > 0 {
		if err := b.preload(ctx, b.f.preload); err != nil {
			return res, err
		}
		res.Preloaded = b.f.preload
	}
	w := newWatcher(b.subjects)
	if err := w.subscribe(b.subConn); err != nil {
		return res, err
	}
	defer w.unsubscribe()

	if b.f.background > 0 {
		if err := b.setFaults(ctx, b.f.latencyMS, b.f.backgroundDelayMS); err != nil {
			return res, fmt.Errorf("sandbox faults: %w", err)
		}
		// Parked means debited: the order now only polls its balance.
		bg := w.track("bg"+b.run, b.f.background, func(s events.State) bool { return s == events.StateDebited || s.Terminal() })
		b.logf("parking %d orders in confirmation", b.f.background)
		started := time.Now()
		if err := b.publishAll(ctx, bg, 0, "parking"); err != nil {
			return res, err
		}
		if !bg.finished() {
			return res, fmt.Errorf("background: %d of %d orders not parked within %s", bg.unfinished(), bg.n, b.f.timeout)
		}
		res.Background = b.f.background
		res.BackgroundParkSeconds = round3(time.Since(started).Seconds())
		res.RSSAfterParkMB = maxRSSMB()
		// From now on they should still be waiting; count the ones that
		// are not by the end, so a run that outlasted the delay says so.
		bg.target = func(s events.State) bool { return s.Terminal() }
		defer func() {
			waiting := bg.n - bg.countTerminal()
			res.BackgroundStillWaiting = &waiting
			if waiting == 0 {
				b.logf("every background order finished before the measured run did: raise --background-delay-ms")
			}
		}()
	}
	if err := b.setFaults(ctx, b.f.latencyMS, b.f.visibilityDelayMS); err != nil {
		return res, fmt.Errorf("sandbox faults: %w", err)
	}
	defer func() {
		if b.admin != nil {
			_ = b.admin.ClearFaults(context.WithoutCancel(ctx))
		}
	}()

	var sizeBefore int64
	if b.st != nil {
		var err error
		if sizeBefore, err = dbUsedBytes(ctx, b.dbPath); err != nil {
			return res, err
		}
	}
	if b.f.profile != "" {
		pf, err := os.Create(b.f.profile)
		if err != nil {
			return res, fmt.Errorf("profile: %w", err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			pf.Close()
			return res, fmt.Errorf("profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			pf.Close()
		}()
	}

	tr := w.track("m"+b.run, b.f.orders, events.State.Terminal)
	cpuBefore := cpuTime()
	started := time.Now()
	if err := b.publishAll(ctx, tr, b.f.rate, "orders"); err != nil {
		return res, err
	}
	elapsed := time.Since(started)
	cpu := cpuTime() - cpuBefore
	if b.f.profile != "" {
		pprof.StopCPUProfile()
	}
	if b.f.memProfile != "" {
		if err := writeHeapProfile(b.f.memProfile); err != nil {
			return res, err
		}
	}
	tr.fill(&res)
	res.Seconds = round3(elapsed.Seconds())
	if elapsed > 0 {
		res.OrdersPerSec = round3(float64(res.Completed+res.Failed) / elapsed.Seconds())
	}
	res.MaxRSSMB = maxRSSMB()
	if b.f.self && res.Completed+res.Failed > 0 {
		res.CPUmsPerOrder = round3(float64(cpu.Microseconds()) / 1000 / float64(res.Completed+res.Failed))
	}
	if b.st != nil && res.Completed+res.Failed > 0 {
		// Measured once the outbox is relayed (every terminal event has
		// arrived), so it is what a finished order leaves behind.
		after, err := dbUsedBytes(ctx, b.dbPath)
		if err != nil {
			return res, err
		}
		res.StoreBytesPerOrder = round3(float64(after-sizeBefore) / float64(res.Completed+res.Failed))
	}
	if b.f.baseline && !res.TimedOut && (b.f.latencyMS > 0 || b.f.latencyJitterMS > 0) {
		if err := b.measureZeroLatency(ctx, w, &res); err != nil {
			return res, err
		}
	}
	if b.f.baseline && !res.TimedOut {
		if err := b.measureBaselines(ctx, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// measureZeroLatency runs the same number of orders again with no latency
// added, so that the ratio to it compares two runs of this machine at
// this moment, not a figure from another day.
func (b *bench) measureZeroLatency(ctx context.Context, w *watcher, res *benchResult) error {
	b.logf("measuring the same %d orders with no added latency", b.f.orders)
	if err := b.setFaults(ctx, 0, b.f.visibilityDelayMS); err != nil {
		return fmt.Errorf("sandbox faults: %w", err)
	}
	tr := w.track("z"+b.run, b.f.orders, events.State.Terminal)
	started := time.Now()
	if err := b.publishAll(ctx, tr, b.f.rate, "zero-latency orders"); err != nil {
		return err
	}
	elapsed := time.Since(started)
	var zero benchResult
	tr.fill(&zero)
	if elapsed > 0 && zero.Completed+zero.Failed > 0 {
		res.ZeroLatencyOrdersPerSec = round3(float64(zero.Completed+zero.Failed) / elapsed.Seconds())
		res.RatioZeroLatency = round3(res.OrdersPerSec / res.ZeroLatencyOrdersPerSec)
	}
	return nil
}

// writeHeapProfile writes what is live now, as of a fresh collection:
// with --background that is what holding the waiting orders costs.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("memprofile: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("memprofile: %w", err)
	}
	return f.Close()
}

// publishAll publishes tr's orders at rate (0: flat out) and waits until
// every one reached its target state or the timeout passed.
func (b *bench) publishAll(ctx context.Context, tr *tracker, rate float64, label string) error {
	bar := progress.New(b.stderr, tr.n, label)
	tr.bar = bar
	defer bar.Done()
	// A failed async publish (usually an ack that timed out under load) is
	// retried synchronously with the same Nats-Msg-Id, which JetStream
	// dedupes if the first attempt was stored after all.
	var retryMu sync.Mutex
	var retry []*nats.Msg
	js, err := jetstream.New(b.pubConn, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, _ error) {
			retryMu.Lock()
			retry = append(retry, m)
			retryMu.Unlock()
		}))
	if err != nil {
		return fmt.Errorf("bench jetstream: %w", err)
	}

	gen := newIntentGen(b.subjects, tr.prefix, b.f.midasShare, b.f.players)
	start := time.Now()
	for i := 0; i < tr.n; i++ {
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(d):
				}
			}
		}
		m := gen.msg(i)
		tr.published(i)
		if _, err := js.PublishMsgAsync(m); err != nil {
			retryMu.Lock()
			retry = append(retry, m)
			retryMu.Unlock()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(b.f.timeout):
	}
	retryMu.Lock()
	again := retry
	retry = nil
	retryMu.Unlock()
	for _, m := range again {
		i, ok := tr.index(m.Header.Get(events.HeaderMsgID))
		if !ok {
			continue
		}
		tr.retried.Add(1)
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := js.PublishMsg(pctx, m)
		cancel()
		if err != nil {
			b.logf("publishing %s failed twice: %v", m.Header.Get(events.HeaderMsgID), err)
			tr.publishFailed(i)
		}
	}
	timeout := time.NewTimer(b.f.timeout)
	defer timeout.Stop()
	select {
	case <-tr.done:
	case <-timeout.C:
		tr.timedOut.Store(true)
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// preload writes n completed orders straight into the store, in big
// batches, so a run can measure how a large store slows the saga.
func (b *bench) preload(ctx context.Context, n int) error {
	b.logf("preloading %d completed orders into the store", n)
	gen := newIntentGen(b.subjects, "p"+b.run, b.f.midasShare, b.f.players)
	bar := progress.New(b.stderr, n, "preload")
	defer bar.Done()
	const batch = 2000
	now := time.Now().Add(-time.Hour) // already old: a --retention run may prune them
	reqs := make([]store.Accept, 0, batch)
	for i := 0; i < n; i++ {
		m := gen.msg(i)
		in, err := events.DecodeIntent(m.Data)
		if err != nil {
			return fmt.Errorf("preload: %w", err)
		}
		reqs = append(reqs, store.Accept{
			Order: store.Order{
				OutOrderID: in.OutOrderID, MgID: in.MgID, RoomID: in.RoomID, FromUID: in.FromUID,
				Provider: in.Payment.Provider, Amount: in.Payment.Amount, Intent: m.Data, IntentSubject: m.Subject,
				BodyHash: in.Hash(), State: events.StateCompleted, Step: worker.StepDone, Seq: 4,
				SudOrderID: "sud-" + in.OutOrderID, BillNo: in.OutOrderID, HasBaseline: true, BaselineBalance: 1000000,
				HasPayBalance: true, PayBalance: 1000000 - in.Payment.Amount, DebitedAt: now, CreatedAt: now, UpdatedAt: now,
			},
			History: store.HistoryEntry{At: now, State: events.StateCompleted, Step: worker.StepConfirm, Attempt: 1,
				Detail: "debit confirmed, balance 999900"},
		})
		if len(reqs) == batch || i == n-1 {
			if _, err := b.st.Accept(ctx, reqs); err != nil {
				return fmt.Errorf("preload: %w", err)
			}
			bar.Add(len(reqs))
			reqs = reqs[:0]
		}
	}
	return nil
}

// dbUsedBytes is the size of the pages the database uses, as a reader
// sees the last commit: WAL content included, free pages (a deleted outbox
// leaves some) excluded. It opens its own read-only connection; the store
// keeps writing meanwhile.
func dbUsedBytes(ctx context.Context, path string) (int64, error) {
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	if err != nil {
		return 0, fmt.Errorf("store size: %w", err)
	}
	defer db.Close()
	var pages, free, size int64
	for q, into := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &size} {
		if err := db.QueryRowContext(ctx, q).Scan(into); err != nil {
			return 0, fmt.Errorf("store size: %s: %w", q, err)
		}
	}
	return (pages - free) * size, nil
}

// maxRSSMB is the peak resident set of this process in MiB (Linux reports
// ru_maxrss in KiB).
func maxRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return round3(float64(ru.Maxrss) / 1024)
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// --- intents -------------------------------------------------------------

// benchGames mixes several catalog games (and one the catalog does not
// know, which gets the generic checks only).
var benchGames = []struct {
	mgID, cmd string
	value     int32
	payload   string
}{
	{"1468180338417074177", "specify_dice_roll", 100, `{"point":6,"seq":1}`},
	{"1472142747708284929", "buy_role", 50, `{"role_id":3}`},
	{"1559736844916183041", "gift", 4, ``},
	{"1704460412809043970", "paid_events_20", 300, `{"point":12,"quality":3}`},
	{"1461228379255603251", "add_score", 100, ``},
}

// intentGen builds the i-th intent of a run.
type intentGen struct {
	subjects   events.Subjects
	prefix     string
	midasShare float64
	players    int
}

func newIntentGen(s events.Subjects, prefix string, midasShare float64, players int) *intentGen {
	return &intentGen{subjects: s, prefix: prefix, midasShare: midasShare, players: players}
}

// isMidas spreads the Midas orders evenly (Bresenham), so any prefix of
// the run has the requested share.
func (g *intentGen) isMidas(i int) bool {
	return int(float64(i+1)*g.midasShare) > int(float64(i)*g.midasShare)
}

func (g *intentGen) msg(i int) *nats.Msg {
	id := g.prefix + "-" + strconv.Itoa(i)
	game := benchGames[i%len(benchGames)]
	player := "p" + g.prefix + "-" + strconv.Itoa(i%g.players)
	in := events.Intent{
		OutOrderID: id, OutGroupID: "bench", MgID: game.mgID, RoomID: "room" + strconv.Itoa(i%7),
		Cmd: game.cmd, FromUID: player, ToUID: "host", Value: game.value,
		Payment: events.Payment{Provider: events.ProviderMOGS, Amount: int64(1 + i%97), OpenID: player},
	}
	if game.payload != "" {
		in.Payload = json.RawMessage(game.payload)
	}
	if g.isMidas(i) {
		in.Payment.Provider = events.ProviderMidas
		in.Payment.Midas = &events.MidasPayment{OpenKey: "bench-openkey-" + player, PF: "qq_m_qq-2001-android",
			PFKey: "bench-pfkey", ZoneID: "1", SessionType: "kp_actoken", AccountType: "common"}
	} else {
		in.Payment.MOGS = &events.MOGSPayment{JSCode: "bench-js-" + player, AppPlat: 1, OSPlatID: 1, PayItem: "dice"}
	}
	data, err := json.Marshal(in)
	if err != nil {
		panic(fmt.Sprintf("bench intent %d: %v", i, err)) // only plain fields: cannot fail
	}
	m := nats.NewMsg(g.subjects.Intent(in.MgID, in.RoomID))
	m.Data = data
	m.Header.Set(events.HeaderMsgID, id)
	return m
}

// --- status tracking -------------------------------------------------------

// watcher reads every status event and hands this run's to their tracker.
type watcher struct {
	subjects events.Subjects
	sub      *nats.Subscription
	mu       sync.Mutex
	trackers map[string]*tracker // by out_order_id prefix
}

func newWatcher(s events.Subjects) *watcher {
	return &watcher{subjects: s, trackers: map[string]*tracker{}}
}

func (w *watcher) subscribe(nc *nats.Conn) error {
	sub, err := nc.Subscribe(w.subjects.Statuses(), w.handle)
	if err != nil {
		return fmt.Errorf("subscribe to status events: %w", err)
	}
	// Never drop an event for being slow: a lost terminal event would
	// leave the run waiting for an order that finished.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return fmt.Errorf("status subscription: %w", err)
	}
	// The subscription must be live at the server before the first
	// publish, or the fastest orders' events could pass unseen.
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("status subscription: %w", err)
	}
	w.sub = sub
	return nil
}

func (w *watcher) unsubscribe() {
	if w.sub != nil {
		_ = w.sub.Unsubscribe()
	}
}

// track registers n orders named prefix-0 … prefix-(n-1), done when they
// reach a state target accepts.
func (w *watcher) track(prefix string, n int, target func(events.State) bool) *tracker {
	t := &tracker{prefix: prefix, n: n, target: target, done: make(chan struct{}),
		pubAt: make([]atomic.Int64, n), reached: make([]bool, n), terminal: make([]bool, n),
		latency: make([]time.Duration, 0, n), epoch: time.Now()}
	w.mu.Lock()
	w.trackers[prefix] = t
	w.mu.Unlock()
	return t
}

type statusLite struct {
	OutOrderID string       `json:"out_order_id"`
	State      events.State `json:"state"`
	At         time.Time    `json:"at"` // when the worker decided the state
}

// readStatusLite takes the three fields the bench needs from a status
// event. The bench reads tens of thousands of events a second on the same
// cores as the system it measures, so it looks for the plain string fields
// first (ids, states and times never need JSON escapes) and decodes the
// whole event only when that fails.
func readStatusLite(data []byte) (statusLite, bool) {
	id, okID := plainField(data, `"out_order_id":"`)
	state, okState := plainField(data, `"state":"`)
	at, okAt := plainField(data, `"at":"`)
	if okID && okState && okAt {
		if t, err := time.Parse(time.RFC3339Nano, string(at)); err == nil {
			return statusLite{OutOrderID: string(id), State: events.State(state), At: t}, true
		}
	}
	var ev statusLite
	if err := json.Unmarshal(data, &ev); err != nil {
		return statusLite{}, false
	}
	return ev, true
}

// plainField returns the string after key up to the closing quote, if it
// holds no escape.
func plainField(data []byte, key string) ([]byte, bool) {
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return nil, false
	}
	v := data[i+len(key):]
	end := bytes.IndexByte(v, '"')
	if end < 0 || bytes.IndexByte(v[:end], '\\') >= 0 {
		return nil, false
	}
	return v[:end], true
}

func (w *watcher) handle(m *nats.Msg) {
	arrived := time.Now()
	ev, ok := readStatusLite(m.Data)
	if !ok {
		return // not ours to judge; the run counts only its own orders
	}
	dash := strings.LastIndexByte(ev.OutOrderID, '-')
	if dash < 0 {
		return
	}
	w.mu.Lock()
	t := w.trackers[ev.OutOrderID[:dash]]
	w.mu.Unlock()
	if t == nil {
		return
	}
	i, err := strconv.Atoi(ev.OutOrderID[dash+1:])
	if err != nil || i < 0 || i >= t.n {
		return
	}
	t.observe(i, ev.State, ev.At, arrived)
}

// tracker follows one batch of orders from publish to their target state.
type tracker struct {
	prefix   string
	n        int
	epoch    time.Time
	pubAt    []atomic.Int64 // ns since epoch; written by the publisher
	done     chan struct{}
	timedOut atomic.Bool
	retried  atomic.Int64 // publishes that needed a second try
	bar      *progress.Bar

	mu        sync.Mutex
	target    func(events.State) bool
	reached   []bool
	terminal  []bool
	count     int
	completed int
	failed    int
	pubFailed int
	latency   []time.Duration
	eventLag  []time.Duration // terminal state decided to its event's arrival
}

func (t *tracker) index(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, t.prefix+"-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	return i, err == nil && i >= 0 && i < t.n
}

func (t *tracker) published(i int) { t.pubAt[i].Store(int64(time.Since(t.epoch))) }

// publishFailed counts an order JetStream never stored: it can never
// finish, so it counts as failed rather than leave the run waiting.
func (t *tracker) publishFailed(i int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reached[i] {
		return
	}
	t.pubFailed++
	t.failed++
	t.terminal[i] = true
	t.reach(i)
}

// observe records that order i's event for state s, decided at decided,
// arrived at arrived.
func (t *tracker) observe(i int, s events.State, decided, arrived time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.Terminal() && !t.terminal[i] {
		t.terminal[i] = true
		if s == events.StateCompleted {
			t.completed++
		} else {
			t.failed++
		}
		if !t.reached[i] {
			t.latency = append(t.latency, arrived.Sub(t.epoch)-time.Duration(t.pubAt[i].Load()))
			if !decided.IsZero() {
				t.eventLag = append(t.eventLag, arrived.Sub(decided))
			}
		}
	}
	if !t.reached[i] && t.target(s) {
		t.reach(i)
	}
}

// reach marks order i done; t.mu is held.
func (t *tracker) reach(i int) {
	t.reached[i] = true
	t.count++
	if t.bar != nil {
		t.bar.Add(1)
	}
	if t.count == t.n {
		close(t.done)
	}
}

func (t *tracker) finished() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

func (t *tracker) unfinished() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n - t.count
}

func (t *tracker) countTerminal() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.completed + t.failed
}

// fill copies the counts and latency percentiles into r.
func (t *tracker) fill(r *benchResult) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r.Completed, r.Failed, r.PublishFailures = t.completed, t.failed, t.pubFailed
	r.PublishRetries = int(t.retried.Load())
	r.Unfinished = t.n - t.count
	r.TimedOut = t.timedOut.Load() && r.Unfinished > 0
	lat := slices.Clone(t.latency)
	slices.Sort(lat)
	r.P50ms, r.P95ms, r.P99ms = percentileMS(lat, 0.50), percentileMS(lat, 0.95), percentileMS(lat, 0.99)
	lag := slices.Clone(t.eventLag)
	slices.Sort(lag)
	r.EventLagP50ms, r.EventLagP99ms = percentileMS(lag, 0.50), percentileMS(lag, 0.99)
}

// percentileMS is the nearest-rank percentile of sorted durations, in ms.
func percentileMS(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(p*float64(len(sorted)))) - 1
	k = max(0, min(k, len(sorted)-1))
	return round3(float64(sorted[k]) / float64(time.Millisecond))
}

// --- ceilings --------------------------------------------------------------

func (b *bench) measureBaselines(ctx context.Context, res *benchResult) error {
	b.logf("measuring the provider-call ceiling: %d orders' calls, %d at a time", b.f.orders, b.f.concurrency)
	if err := b.setFaults(ctx, b.f.latencyMS, 0); err != nil {
		return fmt.Errorf("sandbox faults: %w", err)
	}
	cpuBefore := cpuTime()
	pc, err := b.providerCeiling(ctx)
	if err != nil {
		return err
	}
	res.ProviderCeiling = round3(pc)
	if b.f.self && res.CPUmsPerOrder > 0 {
		// The sandbox runs in this process too: this is both sides of
		// every call, as in the measured run.
		ceilingCPU := float64((cpuTime() - cpuBefore).Microseconds()) / 1000 / float64(b.f.orders)
		res.ProviderCeilingCPUms = round3(ceilingCPU)
		res.RatioProviderCPU = round3(ceilingCPU / res.CPUmsPerOrder)
	}
	b.logf("measuring the JetStream ceiling: %d intent-sized messages published, consumed and acked", b.f.orders)
	jc, err := b.jetstreamCeiling(ctx)
	if err != nil {
		return err
	}
	res.JetStreamCeiling = round3(jc)
	if pc > 0 {
		res.RatioProvider = round3(res.OrdersPerSec / pc)
	}
	if jc > 0 {
		res.RatioJetStream = round3(res.OrdersPerSec / jc)
	}
	return nil
}

// providerCeiling makes the calls of a successful order (create_order,
// balance, pay, balance) for --orders orders straight against the sandbox,
// --concurrency at a time: no queue, no store. It returns orders/s.
func (b *bench) providerCeiling(ctx context.Context) (float64, error) {
	sc, wallets := b.sud, b.wallets
	if sc == nil {
		var err error
		if sc, wallets, err = newProviders(sandboxConfig(b.sandboxURL), nil); err != nil {
			return 0, err
		}
	}
	gen := newIntentGen(b.subjects, "c"+b.run, b.f.midasShare, b.f.players)
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	bar := progress.New(b.stderr, b.f.orders, "provider ceiling")
	defer bar.Done()
	started := time.Now()
	var wg sync.WaitGroup
	for range b.f.concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.f.orders || ctx.Err() != nil || firstErr.Load() != nil {
					return
				}
				if err := orderCalls(ctx, sc, wallets, gen.msg(i).Data); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				bar.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(started)
	if p := firstErr.Load(); p != nil {
		return 0, fmt.Errorf("provider ceiling: %w", *p)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(b.f.orders) / elapsed.Seconds(), nil
}

// orderCalls makes one successful order's provider calls, as the saga
// does, from its intent bytes.
func orderCalls(ctx context.Context, sc *sud.Client, wallets map[string]providers.Wallet, data []byte) error {
	in, err := events.DecodeIntent(data)
	if err != nil {
		return err
	}
	if _, err := sc.CreateOrder(ctx, sud.CreateOrderRequest{
		OutOrderID: in.OutOrderID, OutGroupID: in.OutGroupID, MGID: in.MgID, RoomID: in.RoomID,
		Cmd: in.Cmd, FromUID: in.FromUID, ToUID: in.ToUID, Value: in.Value, Payload: in.Payload,
	}); err != nil {
		return fmt.Errorf("create_order %s: %w", in.OutOrderID, err)
	}
	w, ok := wallets[in.Payment.Provider]
	if !ok {
		return fmt.Errorf("no wallet for %q", in.Payment.Provider)
	}
	acct := providers.Account{OpenID: in.Payment.OpenID}
	item := in.Cmd
	if m := in.Payment.MOGS; m != nil {
		acct.MOGS = providers.MOGSLogin{JSCode: m.JSCode, AppPlat: m.AppPlat, OSPlatID: m.OSPlatID, SessionKey: m.SessionKey, PayItem: m.PayItem}
		item = m.PayItem
	}
	if m := in.Payment.Midas; m != nil {
		acct.Midas = providers.MidasLogin{OpenKey: m.OpenKey, PF: m.PF, PFKey: m.PFKey, ZoneID: m.ZoneID,
			SessionType: m.SessionType, UserIP: m.UserIP, AccountType: m.AccountType, PayItem: m.PayItem}
	}
	if _, err := w.Balance(ctx, acct); err != nil {
		return fmt.Errorf("balance %s: %w", in.OutOrderID, err)
	}
	if _, err := w.Debit(ctx, acct, providers.Debit{BillNo: in.OutOrderID, Amount: in.Payment.Amount, PayItem: item}); err != nil {
		return fmt.Errorf("pay %s: %w", in.OutOrderID, err)
	}
	if _, err := w.Balance(ctx, acct); err != nil {
		return fmt.Errorf("balance %s: %w", in.OutOrderID, err)
	}
	return nil
}

// jetstreamCeiling publishes --orders intent-sized messages to a scratch
// stream configured like the intents stream, consumes and acks each, and
// returns messages/s from the first publish to the last ack.
func (b *bench) jetstreamCeiling(ctx context.Context) (float64, error) {
	prefix := strings.TrimSuffix(b.subjects.Intents(), ".intents.>")
	name := strings.TrimSuffix(b.subjects.IntentsStream(), "_INTENTS") + "_BENCH_" + strings.ToUpper(b.run)
	subject := prefix + ".benchscratch." + b.run
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{subject}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Duplicates: events.DefaultDuplicateWindow, Discard: jetstream.DiscardOld,
	})
	if err != nil {
		return 0, fmt.Errorf("jetstream ceiling: scratch stream: %w", err)
	}
	defer func() { _ = b.js.DeleteStream(context.WithoutCancel(ctx), name) }()
	sjs, err := jetstream.New(b.subConn)
	if err != nil {
		return 0, fmt.Errorf("jetstream ceiling: %w", err)
	}
	cons, err := sjs.CreateOrUpdateConsumer(ctx, name, jetstream.ConsumerConfig{
		Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: 20000,
	})
	if err != nil {
		return 0, fmt.Errorf("jetstream ceiling: consumer: %w", err)
	}
	n := b.f.orders
	gen := newIntentGen(b.subjects, "j"+b.run, b.f.midasShare, b.f.players)
	var acked atomic.Int64
	done := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if acked.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(256))
	if err != nil {
		return 0, fmt.Errorf("jetstream ceiling: consume: %w", err)
	}
	defer cc.Stop()
	bar := progress.New(b.stderr, n, "jetstream ceiling")
	defer bar.Done()
	started := time.Now()
	for i := 0; i < n; i++ {
		m := gen.msg(i)
		m.Subject = subject
		if _, err := b.js.PublishMsgAsync(m); err != nil {
			return 0, fmt.Errorf("jetstream ceiling: publish: %w", err)
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(b.f.timeout):
		return 0, fmt.Errorf("jetstream ceiling: %d of %d messages acked within %s", acked.Load(), n, b.f.timeout)
	}
	elapsed := time.Since(started)
	bar.Add(n)
	return float64(n) / elapsed.Seconds(), nil
}
