package protect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"github.com/coinsaga/coinsaga/providers"
)

// guards is the set of guards of one decorator, one per endpoint.
type guards struct {
	cfg Config
	obs Observer
	log *slog.Logger
	now func() time.Time
	brk BreakerConfig
}

func newGuards(cfg Config) *guards {
	if err := cfg.Validate(); err != nil {
		panic(err.Error())
	}
	g := &guards{cfg: cfg, obs: cfg.Observer, log: cfg.Logger, now: cfg.Now, brk: cfg.Breaker.withDefaults()}
	if g.obs == nil {
		g.obs = NopObserver{}
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	return g
}

// guard protects one endpoint.
type guard struct {
	provider, endpoint string // as in providers.Error
	name               string // provider.endpoint
	limit              *rate.Limiter
	slots              chan struct{}
	brk                *breaker
	obs                Observer
}

func (g *guards) guard(provider, endpoint string) *guard {
	n := name(provider, endpoint)
	ec := g.cfg.For(n)
	gd := &guard{provider: provider, endpoint: endpoint, name: n, obs: g.obs, slots: make(chan struct{}, ec.MaxInFlight)}
	if ec.RatePerSecond > 0 {
		gd.limit = rate.NewLimiter(rate.Limit(ec.RatePerSecond), ec.Burst)
	}
	gd.brk = newBreaker(n, g.brk, g.now, func(c change) {
		g.obs.CircuitChanged(n, c.open)
		if c.open {
			g.log.Warn("provider circuit opened: calls are refused without being sent until a probe succeeds",
				"endpoint", n, "failures", c.failures, "probe_in", c.coolDown, "err", c.err)
			return
		}
		g.log.Info("provider circuit closed: calls are sent again", "endpoint", n, "open_for", c.openFor)
	})
	return gd
}

// WaitError is a call whose context ended while it waited for a rate
// token or a bulkhead slot: it was never sent.
type WaitError struct {
	Endpoint string
	Kind     string // WaitRate or WaitBulkhead
	Err      error  // the context's error
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("gave up waiting for a %s turn on %s: call not sent: %v", e.Kind, e.Endpoint, e.Err)
}

func (e *WaitError) Unwrap() error { return e.Err }

// NotSent reports whether err says the call never left the process because
// a guard stopped it: refused by an open circuit, or given up while
// waiting. Such a call had no effect at the provider.
func NotSent(err error) bool {
	var oe *OpenError
	var we *WaitError
	return errors.As(err, &oe) || errors.As(err, &we)
}

// run makes one call through g's guards.
func run[T any](ctx context.Context, g *guard, call func(context.Context) (T, error)) (T, error) {
	var zero T
	if oe := g.brk.check(); oe != nil {
		return zero, g.refused(oe)
	}
	if err := g.waitRate(ctx); err != nil {
		return zero, err
	}
	if err := g.acquire(ctx); err != nil {
		return zero, err
	}
	defer func() { <-g.slots }()
	t, oe := g.brk.admit()
	if oe != nil {
		return zero, g.refused(oe)
	}
	v, err := call(ctx)
	g.brk.done(t, judge(ctx, err), err)
	return v, err
}

func (g *guard) refused(oe *OpenError) error {
	g.obs.CallRefused(g.name)
	return &providers.Error{Provider: g.provider, Endpoint: g.endpoint, Class: providers.Retryable, Code: providers.CodeCircuitOpen, Err: oe}
}

// gaveUp is a wait cut short by ctx, classified like a transport timeout
// of the caller's making, Retryable.
func (g *guard) gaveUp(kind string, err error) error {
	code := providers.CodeUnavailable
	if errors.Is(err, context.DeadlineExceeded) {
		code = providers.CodeTimeout
	}
	return &providers.Error{Provider: g.provider, Endpoint: g.endpoint, Class: providers.Retryable, Code: code,
		Err: &WaitError{Endpoint: g.name, Kind: kind, Err: err}}
}

// waitRate waits for a token. A caller whose deadline comes before its
// turn gives up at once, handing its token back.
func (g *guard) waitRate(ctx context.Context) error {
	if g.limit == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return g.gaveUp(WaitRate, err)
	}
	r := g.limit.Reserve()
	if !r.OK() {
		// Cannot happen with a burst of at least 1; never wait forever.
		return g.gaveUp(WaitRate, errors.New("rate limit cannot be met"))
	}
	d := r.Delay()
	if d == 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		r.Cancel()
		return g.gaveUp(WaitRate, context.DeadlineExceeded)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		g.obs.CallWaited(g.name, WaitRate, d)
		return nil
	case <-ctx.Done():
		r.Cancel()
		return g.gaveUp(WaitRate, ctx.Err())
	}
}

// acquire takes a bulkhead slot, waiting for one if need be.
func (g *guard) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	start := time.Now()
	select {
	case g.slots <- struct{}{}:
		g.obs.CallWaited(g.name, WaitBulkhead, time.Since(start))
		return nil
	case <-ctx.Done():
		return g.gaveUp(WaitBulkhead, ctx.Err())
	}
}
