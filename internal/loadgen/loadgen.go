// Package loadgen offers orders to a running coinsaga and measures how it
// takes them: throughput, latency percentiles, CPU and memory, the store's
// growth, and the two ceilings a run is compared to (the provider calls
// alone, JetStream alone). `coinsaga bench` wires it to a running serve,
// or to a whole system StartSelf assembles in this process; the
// measurements live here. The provider ceiling makes the worker's own
// calls (worker.OrderCalls), so it cannot drift from the saga.
//
// A run publishes intents for out_order_ids <phase><run>-<i> and follows
// each to its target state through the status events, so several phases
// (background, measured, zero latency) share one subscription and a
// system that serves other traffic meanwhile.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/worker"
)

// Config is what a run offers and what it measures besides the run itself.
type Config struct {
	Subjects events.Subjects
	Run      string    // makes this run's out_order_ids unique
	Log      io.Writer // progress bars and notes

	Orders      int
	Rate        float64 // orders per second offered; 0: as fast as JetStream takes them
	Concurrency int     // concurrent order calls of the provider ceiling
	MidasShare  float64
	Players     int
	Timeout     time.Duration // for each wait on the orders

	// Sandbox faults, set through Target.Admin.
	LatencyMS, LatencyJitterMS, VisibilityDelayMS int

	Background        int // orders first parked in confirmation
	BackgroundDelayMS int // visibility delay of their debits
	Preload           int // completed orders written into Target.Store first
	Baseline          bool
	Profile           string // CPU profile of the measured run
	MemProfile        string // heap profile at its end
}

// Target is the system under load.
type Target struct {
	// Pub publishes the intents and Sub reads the status events: separate
	// connections, so a burst of publishes never delays the events timed.
	Pub, Sub *nats.Conn
	// Admin sets the sandbox's faults; nil when there is no sandbox.
	Admin *sandbox.AdminClient
	// SUD and Wallets reach the providers for the provider ceiling; nil
	// when there is no sandbox to call.
	SUD     worker.OrderService
	Wallets map[string]providers.Wallet
	// InProcess says the whole system runs in this process, so that this
	// process's CPU time is the system's.
	InProcess bool
	// Store and DBPath are the system's store when the run can reach it
	// (preload, store bytes per order); nil otherwise.
	Store  store.Store
	DBPath string // the SQLite file; "" for another store (no store bytes per order)
	// WorkerOrders, when the system runs several workers, counts how many
	// of the orders ids each worker finished (and how many no running
	// worker did), for the share of each; nil otherwise.
	WorkerOrders func(ctx context.Context, ids []string) (counts []int, other int, err error)
}

// Result is the one JSON line `coinsaga bench` prints.
type Result struct {
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

	// With a shared store (--self --database-url), how the measured
	// orders were spread over the workers.
	Workers *WorkerShare `json:"workers,omitempty"`

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

// WorkerShare is the measured orders each worker finished, the workers in
// the order they started, and the orders owned by no running worker.
type WorkerShare struct {
	Orders []int `json:"orders"`
	Other  int   `json:"other,omitempty"`
}

// run is one Run's state.
type run struct {
	cfg Config
	t   Target
}

// Run offers cfg.Orders orders to t and measures them, after the preload
// and background phases cfg asks for and followed by the baselines. A run
// whose orders did not all finish within cfg.Timeout returns its figures
// with TimedOut set, not an error.
func Run(ctx context.Context, cfg Config, t Target) (Result, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	return (&run{cfg: cfg, t: t}).measure(ctx)
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "bench: "+format+"\n", args...)
}

// gen builds the intents of the phase whose orders are named prefix-i.
func (r *run) gen(prefix string) *intentGen {
	return newIntentGen(r.cfg.Subjects, prefix, r.cfg.MidasShare, r.cfg.Players)
}

// setFaults puts the latency on every endpoint and the visibility delay on
// the pay endpoints (a per-endpoint fault replaces "*", so it repeats the
// latency).
func (r *run) setFaults(ctx context.Context, latencyMS, visibilityMS int) error {
	admin := r.t.Admin
	if admin == nil {
		return nil
	}
	if err := admin.ClearFaults(ctx); err != nil {
		return err
	}
	jitter := 0
	if latencyMS > 0 {
		jitter = r.cfg.LatencyJitterMS // a run without latency has none
	}
	if latencyMS > 0 || jitter > 0 {
		if err := admin.SetFault(ctx, sandbox.Fault{Endpoint: sandbox.EveryEndpoint, LatencyMS: latencyMS, LatencyJitterMS: jitter}); err != nil {
			return err
		}
	}
	if visibilityMS > 0 {
		for _, ep := range []string{"mogs.pay", "midas.pay_m"} {
			if err := admin.SetFault(ctx, sandbox.Fault{Endpoint: ep, LatencyMS: latencyMS, LatencyJitterMS: jitter, VisibilityDelayMS: visibilityMS}); err != nil {
				return err
			}
		}
	}
	return nil
}

// measure runs the phases; res is named so that deferred counts (the
// background orders still waiting at the end) reach the caller.
func (r *run) measure(ctx context.Context) (res Result, err error) {
	cfg := r.cfg
	res = Result{Orders: cfg.Orders, OfferedRate: cfg.Rate}
	if cfg.Preload > 0 {
		if err := r.preload(ctx, cfg.Preload); err != nil {
			return res, err
		}
		res.Preloaded = cfg.Preload
	}
	w := newWatcher(cfg.Subjects)
	if err := w.subscribe(r.t.Sub); err != nil {
		return res, err
	}
	defer w.unsubscribe()

	if cfg.Background > 0 {
		bg, err := r.park(ctx, w, &res)
		if err != nil {
			return res, err
		}
		defer func() {
			waiting := bg.n - bg.countTerminal()
			res.BackgroundStillWaiting = &waiting
			if waiting == 0 {
				r.logf("every background order finished before the measured run did: raise --background-delay-ms")
			}
		}()
	}
	if err := r.setFaults(ctx, cfg.LatencyMS, cfg.VisibilityDelayMS); err != nil {
		return res, fmt.Errorf("sandbox faults: %w", err)
	}
	defer func() {
		if r.t.Admin != nil {
			_ = r.t.Admin.ClearFaults(context.WithoutCancel(ctx))
		}
	}()

	var sizeBefore int64
	if r.t.DBPath != "" {
		var err error
		if sizeBefore, err = dbUsedBytes(ctx, r.t.DBPath); err != nil {
			return res, err
		}
	}
	stopProfile, err := startCPUProfile(cfg.Profile)
	if err != nil {
		return res, err
	}
	defer stopProfile()

	tr := w.track("m"+cfg.Run, cfg.Orders, events.State.Terminal)
	cpuBefore := cpuTime()
	started := time.Now()
	if err := r.publishAll(ctx, tr, cfg.Rate, "orders"); err != nil {
		return res, err
	}
	elapsed := time.Since(started)
	cpu := cpuTime() - cpuBefore
	stopProfile()
	if cfg.MemProfile != "" {
		if err := writeHeapProfile(cfg.MemProfile); err != nil {
			return res, err
		}
	}
	tr.fill(&res)
	res.Seconds = round3(elapsed.Seconds())
	finished := res.Completed + res.Failed
	if elapsed > 0 {
		res.OrdersPerSec = round3(float64(finished) / elapsed.Seconds())
	}
	res.MaxRSSMB = maxRSSMB()
	if r.t.InProcess && finished > 0 {
		res.CPUmsPerOrder = round3(float64(cpu.Microseconds()) / 1000 / float64(finished))
	}
	if r.t.DBPath != "" && finished > 0 {
		// Measured once the outbox is relayed (every terminal event has
		// arrived), so it is what a finished order leaves behind.
		after, err := dbUsedBytes(ctx, r.t.DBPath)
		if err != nil {
			return res, err
		}
		res.StoreBytesPerOrder = round3(float64(after-sizeBefore) / float64(finished))
	}
	if r.t.WorkerOrders != nil && finished > 0 {
		// After the measured run: the owners are read one order at a time.
		ids := make([]string, cfg.Orders)
		for i := range ids {
			ids[i] = tr.prefix + "-" + strconv.Itoa(i)
		}
		var share WorkerShare
		if share.Orders, share.Other, err = r.t.WorkerOrders(ctx, ids); err != nil {
			return res, fmt.Errorf("orders per worker: %w", err)
		}
		res.Workers = &share
	}
	if cfg.Baseline && !res.TimedOut && (cfg.LatencyMS > 0 || cfg.LatencyJitterMS > 0) {
		if err := r.measureZeroLatency(ctx, w, &res); err != nil {
			return res, err
		}
	}
	if cfg.Baseline && !res.TimedOut {
		if err := r.measureBaselines(ctx, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// park publishes the background orders with their debits hidden and
// waits until each is debited (parked means debited: the order now only
// polls its balance). The tracker it returns then waits for them to end,
// so the caller can count the ones that did not wait out the run.
func (r *run) park(ctx context.Context, w *watcher, res *Result) (*tracker, error) {
	cfg := r.cfg
	if err := r.setFaults(ctx, cfg.LatencyMS, cfg.BackgroundDelayMS); err != nil {
		return nil, fmt.Errorf("sandbox faults: %w", err)
	}
	bg := w.track("bg"+cfg.Run, cfg.Background, func(s events.State) bool { return s == events.StateDebited || s.Terminal() })
	r.logf("parking %d orders in confirmation", cfg.Background)
	started := time.Now()
	if err := r.publishAll(ctx, bg, 0, "parking"); err != nil {
		return nil, err
	}
	if !bg.finished() {
		return nil, fmt.Errorf("background: %d of %d orders not parked within %s", bg.unfinished(), bg.n, cfg.Timeout)
	}
	res.Background = cfg.Background
	res.BackgroundParkSeconds = round3(time.Since(started).Seconds())
	res.RSSAfterParkMB = maxRSSMB()
	bg.retarget(events.State.Terminal)
	return bg, nil
}

// measureZeroLatency runs the same number of orders again with no latency
// added, so that the ratio to it compares two runs of this machine at
// this moment, not a figure from another day.
func (r *run) measureZeroLatency(ctx context.Context, w *watcher, res *Result) error {
	r.logf("measuring the same %d orders with no added latency", r.cfg.Orders)
	if err := r.setFaults(ctx, 0, r.cfg.VisibilityDelayMS); err != nil {
		return fmt.Errorf("sandbox faults: %w", err)
	}
	tr := w.track("z"+r.cfg.Run, r.cfg.Orders, events.State.Terminal)
	started := time.Now()
	if err := r.publishAll(ctx, tr, r.cfg.Rate, "zero-latency orders"); err != nil {
		return err
	}
	elapsed := time.Since(started)
	var zero Result
	tr.fill(&zero)
	if elapsed > 0 && zero.Completed+zero.Failed > 0 {
		res.ZeroLatencyOrdersPerSec = round3(float64(zero.Completed+zero.Failed) / elapsed.Seconds())
		res.RatioZeroLatency = round3(res.OrdersPerSec / res.ZeroLatencyOrdersPerSec)
	}
	return nil
}

// startCPUProfile profiles this process into path until the returned stop
// is called (more calls do nothing); with no path it does nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("profile: %w", err)
	}
	stopped := false
	return func() {
		if !stopped {
			stopped = true
			pprof.StopCPUProfile()
			f.Close()
		}
	}, nil
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
