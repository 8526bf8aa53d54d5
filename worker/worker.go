// Package worker runs the order saga: it consumes purchase intents from
// JetStream, records each as an order, drives the order through SUD and a
// wallet provider step by step, and relays the status events and dead
// letters the steps write to the store's outbox.
//
// The saga itself is saga.go: every transition of an order, accept,
// reject, replay and the commit policy included, as pure decide
// functions; steps.go makes the provider calls they decide on. Around it
// run these loops, sharing one Worker and one clock (Config.Now):
//
//   - the consumer (consumer.go) records intents in batches, one
//     transaction each, and acks an intent only once its order is
//     durable; it hands new orders straight to the scheduler (handoff.go);
//   - the scheduler (scheduler.go) starts due work in a bounded, adaptive
//     number of step slots (limit.go): an order's own steps, from the
//     handoff and the store's due index, first, and confirmation polls in
//     the slots left over, a quarter being kept for them;
//   - each started order (execute.go) runs its steps for as long as the
//     next is due at once, chaining them in memory and committing their
//     outcome, next step and status events together when saga.go's
//     commitPolicy says so;
//   - orders waiting for their debit to show (confirm.go) wait in memory,
//     not in the due index: a poll that sees nothing stores nothing, polls
//     of one account share a balance read (readings.go), and only the poll
//     that decides commits;
//   - the relay (relay.go) publishes outbox messages and deletes each only
//     after JetStream acknowledged it;
//   - a health watcher keeps Ready honest, and with Config.Owner a lease
//     keeper holds the prefix (owner.go); with Config.ManyWorkers the
//     worker holds a lease in the shared store instead, and rescues and
//     claims orders without an owner (shared.go).
//
// The store is the source of truth: an order's next step and when it is
// due are in its row, so a restart resumes every order where its last
// commit left it, and reloads the orders that were waiting for a poll
// (loadWaiting), polling them no later than the previous run would have.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/store"
)

// Config wires a Worker. Conn, Store, SUD and Wallets are required; every
// other zero value means the documented default.
type Config struct {
	Conn     *nats.Conn
	Subjects events.Subjects      // zero: prefix "coinsaga"
	Streams  events.StreamOptions // zero: R1, 2 min duplicate window
	Store    store.Store
	SUD      OrderService
	// Wallets by provider name ("mogs", "midas").
	Wallets map[string]providers.Wallet
	Catalog *events.Catalog // nil: events.DefaultCatalog()

	// Concurrency is the least number of orders with a step under way
	// (and where the limit starts); zero means 64. The limit grows while
	// the providers' replies keep their latency, up to MaxSteps, and
	// shrinks when they slow down (see stepLimit).
	Concurrency int
	// MaxSteps is the most orders with a step under way, nearly all of
	// them waiting for a provider; zero means 32 x Concurrency.
	MaxSteps int
	// ConfirmInterval is the time between balance polls; zero means 15s.
	ConfirmInterval time.Duration
	// ConfirmTimeout is how long after the debit it may take to show
	// before the order is compensated; zero means 2 minutes.
	ConfirmTimeout time.Duration
	// SUDExecuteTimeout is how long after SUD took an order its action may
	// stay undecided before the order goes to an operator
	// (needs_attention); zero means 2 minutes.
	SUDExecuteTimeout time.Duration
	// OutageHold is how long an order waits in its step, without spending
	// its retry budget, while a provider's circuit is open; past it the
	// usual retry rules apply. Zero means 30 minutes.
	OutageHold time.Duration
	// Retry bounds the order, baseline and pay steps; CancelRetry the
	// compensation, which deserves more patience (zero: 10 attempts up
	// to 30s apart).
	Retry       RetryPolicy
	CancelRetry RetryPolicy
	// StepTimeout bounds one provider call including its retries inside
	// the client; zero means 10s.
	StepTimeout time.Duration

	// Owner, when set, makes this worker the only one on its prefix: Run
	// takes the prefix's lease first and refuses to start while another
	// worker holds it (ErrPrefixOwned). Set it for single-owner stores
	// (SQLite); nil takes no lease.
	Owner *Owner
	// ManyWorkers says the store is shared by several workers at once
	// (a PostgreSQL store.Shared): the worker registers a lease in it,
	// renews it, starts no money call once its local fence has passed,
	// rescues and claims orders without an owner, relays through
	// RelayOutbox and releases its orders at a graceful stop (shared.go).
	// Owner is then not needed: the store's fence keeps workers apart.
	// False (SQLite) keeps one worker per prefix.
	ManyWorkers bool

	Logger  *slog.Logger // nil: discard
	Metrics *Metrics     // nil: not measured
	Now     func() time.Time
}

// Worker is one saga worker process. Create it with New and start it with
// Run; it is not reusable after Run returns.
type Worker struct {
	cfg     Config
	js      jetstream.JetStream
	log     *slog.Logger
	metrics *Metrics
	saga    saga
	now     func() time.Time

	slots      *stepLimit // places for orders with a step under way
	mu         sync.Mutex
	running    map[string]struct{}  // out_order_ids with a step under way
	committed  map[string]time.Time // when each order's last change was stored (see current)
	lastForget time.Time
	steps      sync.WaitGroup
	stepCtx    context.Context // not cancelled by shutdown: steps finish
	polls      atomic.Int64    // running steps that started as a confirmation poll
	draining   atomic.Bool
	ready      atomic.Bool   // NATS and the store answer (see checkHealth)
	writes     storeWrites   // whether the store's writes succeed
	wakeSched  chan struct{} // new due work: accepted or replayed orders
	slotFreed  chan struct{} // a step slot became free
	wakeRelay  chan struct{}
	decoded    decodedIntents // from accept to first step
	fresh      handoff        // new orders, from accept to the scheduler
	waiting    waitingOrders  // orders between confirmation polls
	outbox     relayState
	lease      *prefixLease // nil without Config.Owner
	shared     *sharedLease // nil without Config.ManyWorkers
}

// New checks cfg and returns a Worker ready to Run.
func New(cfg Config) (*Worker, error) {
	if cfg.Conn == nil {
		return nil, errors.New("worker: Config.Conn is required")
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("worker: jetstream: %w", err)
	}
	w, err := newWorker(cfg)
	if err != nil {
		return nil, err
	}
	w.js = js
	if cfg.ManyWorkers {
		sh, ok := cfg.Store.(store.Shared)
		if !ok {
			return nil, errors.New("worker: Config.ManyWorkers needs a store.Shared store")
		}
		w.shared = newSharedLease(sh)
	}
	return w, nil
}

// newWorker is New without NATS: a Worker whose scheduler, steps and
// store work run, for the scheduler's own tests; the consumer, relay and
// API need the JetStream that New adds.
func newWorker(cfg Config) (*Worker, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("worker: Config.Store is required")
	case cfg.SUD == nil:
		return nil, errors.New("worker: Config.SUD is required")
	case len(cfg.Wallets) == 0:
		return nil, errors.New("worker: Config.Wallets is required")
	}
	if cfg.Catalog == nil {
		cfg.Catalog = events.DefaultCatalog()
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.MaxSteps <= 0 {
		cfg.MaxSteps = 32 * cfg.Concurrency
	}
	cfg.MaxSteps = max(cfg.MaxSteps, cfg.Concurrency)
	if cfg.ConfirmInterval <= 0 {
		cfg.ConfirmInterval = 15 * time.Second
	}
	if cfg.ConfirmTimeout <= 0 {
		cfg.ConfirmTimeout = 2 * time.Minute
	}
	if cfg.SUDExecuteTimeout <= 0 {
		cfg.SUDExecuteTimeout = 2 * time.Minute
	}
	if cfg.OutageHold <= 0 {
		cfg.OutageHold = 30 * time.Minute
	}
	if cfg.CancelRetry == (RetryPolicy{}) {
		cfg.CancelRetry = RetryPolicy{MaxAttempts: 10, Initial: 500 * time.Millisecond, Max: 30 * time.Second}
	}
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// Every real provider call tells the step limit how long it took.
	limit := newStepLimit(cfg.Concurrency, cfg.MaxSteps)
	timer := callTimer{observe: limit.observe, now: cfg.Now}
	timedWallets := make(map[string]providers.Wallet, len(cfg.Wallets))
	for name, wl := range cfg.Wallets {
		timedWallets[name] = timedWallet{Wallet: wl, callTimer: timer}
	}
	cfg.Wallets = timedWallets
	cfg.SUD = timedOrders{OrderService: cfg.SUD, callTimer: timer}
	return &Worker{
		cfg: cfg, log: cfg.Logger, metrics: cfg.Metrics, now: cfg.Now,
		stepCtx:   context.Background(), // Run sets the real one
		saga:      saga{sud: cfg.SUD, wallets: cfg.Wallets, readings: newReadings(cfg.ConfirmInterval), verdicts: newVerdicts(cfg.Now)},
		slots:     limit,
		running:   make(map[string]struct{}),
		committed: make(map[string]time.Time),
		wakeSched: make(chan struct{}, 1),
		slotFreed: make(chan struct{}, 1),
		wakeRelay: make(chan struct{}, 1),
	}, nil
}

// Ready reports whether the worker is taking work: its streams exist, its
// consumer runs, NATS and the store answer, and the store's writes succeed.
// Failing writes are not folded into ready, which the scheduler reads: it
// must go on starting the paced steps whose commits tell when writes work
// again (see storeWrites).
func (w *Worker) Ready() bool { return w.ready.Load() && w.writes.ok() }

// Run ensures the streams, then consumes, schedules and relays until ctx is
// cancelled. Shutdown drains: no new intents are taken, running steps
// finish and record their outcome, and the outbox is flushed, before Run
// returns nil.
func (w *Worker) Run(ctx context.Context) error {
	diffs, err := w.ensureStreams(ctx)
	if err != nil {
		return fmt.Errorf("worker: streams: %w", err)
	}
	for _, d := range diffs {
		w.log.Warn("existing stream differs from coinsaga's defaults; left as it is",
			"stream", d.Stream, "field", d.Field, "have", d.Have, "coinsaga_default", d.Want)
	}
	ctx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	if w.cfg.Owner != nil {
		if w.lease, err = acquirePrefix(ctx, w.js, w.cfg.Subjects, *w.cfg.Owner, ownerTTL, w.now); err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		defer func() {
			if !errors.Is(context.Cause(ctx), ErrOwnershipLost) {
				releaseCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				w.lease.release(releaseCtx)
			}
		}()
		go w.lease.keep(ctx, w.log, func(err error) {
			w.log.Error("stopping: another worker took over this prefix; orders unfinished in this store wait until this worker serves the prefix again", "err", err)
			stopRun(err)
		})
	}
	// The lease keeper outlives ctx: a draining worker's last commits and
	// its final relay need a live lease; it stops just before Release.
	keepCtx, stopKeep := context.WithCancel(context.WithoutCancel(ctx))
	defer stopKeep()
	if w.shared != nil {
		if err := w.checkNoPrefixOwner(ctx); err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		if err := w.register(ctx); err != nil {
			return fmt.Errorf("worker: register in the shared store: %w", err)
		}
		go w.keepLease(keepCtx)
		go w.claimLoop(ctx)
	}
	w.stepCtx = context.WithoutCancel(ctx)
	w.logUnfinished(ctx)
	if err := w.loadWaiting(ctx); err != nil {
		return fmt.Errorf("worker: %w", err)
	}

	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	relayDone := make(chan struct{})
	go func() { defer close(relayDone); w.relay(relayCtx) }()

	api, err := w.serveAPI()
	if err != nil {
		stopRelay()
		return err
	}
	defer api.Unsubscribe()

	consumer, err := w.consume(ctx)
	if err != nil {
		stopRelay()
		return err
	}
	healthDone := make(chan struct{})
	go func() { defer close(healthDone); w.watchHealth(ctx) }()
	w.log.Info("worker started", "concurrency", w.cfg.Concurrency,
		"confirm_interval", w.cfg.ConfirmInterval, "confirm_timeout", w.cfg.ConfirmTimeout)

	w.schedule(ctx)

	// Drain, saying what it waits for: an operator watching a stop that
	// takes seconds wants to know it is not stuck.
	drainStart := w.now()
	w.draining.Store(true)
	w.ready.Store(false)
	w.log.Info("draining: taking no new intents; running steps finish and record their outcome", "running_steps", w.slots.used())
	consumer.stop()
	w.steps.Wait()
	<-healthDone
	w.log.Info("draining: every running step recorded; publishing the outbox", "took", w.now().Sub(drainStart).Round(time.Millisecond))
	// The flush takes over from the relay goroutine: the cursor is theirs
	// one at a time.
	stopRelay()
	<-relayDone
	w.flushOutbox(5 * time.Second)
	if w.shared != nil {
		stopKeep()
		w.release(w.log)
	}
	w.log.Info("worker stopped", "drain_took", w.now().Sub(drainStart).Round(time.Millisecond))
	if err := context.Cause(ctx); errors.Is(err, ErrOwnershipLost) {
		return fmt.Errorf("worker: %w", err)
	}
	return nil
}

// owning reports whether this worker may take work: it holds no lease, or
// its lease is surely still its own.
// With a shared store, its lease's local fence must be open too.
func (w *Worker) owning() bool {
	return (w.lease == nil || w.lease.valid()) && (w.shared == nil || w.sharedOpen())
}

// logUnfinished says how many orders a start resumes: after a crash, the
// operator's first question.
func (w *Worker) logUnfinished(ctx context.Context) {
	st, err := w.cfg.Store.Stats(ctx)
	if err != nil {
		w.log.Warn("counting unfinished orders", "err", err)
		return
	}
	var n int64
	for state, count := range st.ByState {
		if !events.State(state).Terminal() {
			n += count
		}
	}
	w.log.Info("resuming unfinished orders", "orders", n, "outbox", st.Outbox)
}

// watchHealth keeps Ready true only while NATS and the store answer.
func (w *Worker) watchHealth(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		w.checkHealth(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *Worker) checkHealth(ctx context.Context) {
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	storeErr := w.cfg.Store.Ping(pingCtx)
	natsOK := w.cfg.Conn.Status() == nats.CONNECTED
	var streamErr error
	if natsOK {
		// Connected is not enough: the intents stream may have no leader
		// (a node down, JetStream disabled after a full disk).
		_, streamErr = w.js.Stream(pingCtx, w.cfg.Subjects.IntentsStream())
	}
	owning := w.owning()
	ok := storeErr == nil && natsOK && streamErr == nil && owning && !w.draining.Load()
	if was := w.ready.Swap(ok); was != ok {
		if ok {
			w.log.Info("ready: taking work")
		} else if !w.draining.Load() {
			w.log.Warn("not ready: taking no work until NATS, the intents stream and the store answer",
				"nats_connected", natsOK, "stream_error", streamErr, "store_error", storeErr, "lease_held", owning)
		}
	}
	if w.metrics != nil {
		w.metrics.observeWrites(w.writes.ok())
		if st, err := w.cfg.Store.Stats(pingCtx); err == nil {
			w.metrics.observeStats(st, w.now())
		}
	}
}

// wake signals a loop without blocking; signals coalesce.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// policy snapshots the decision parameters at now.
func (w *Worker) policy(now time.Time) policy {
	return policy{now: now, retry: w.cfg.Retry, cancelRetry: w.cfg.CancelRetry,
		confirmInterval: w.cfg.ConfirmInterval, confirmTimeout: w.cfg.ConfirmTimeout,
		sudExecuteTimeout: w.cfg.SUDExecuteTimeout, outageHold: w.cfg.OutageHold}
}
