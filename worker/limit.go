package worker

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sud"
)

// stepLimit bounds the orders with a step under way, and moves the bound
// with the providers' latency, as a gradient concurrency limit does
// (Netflix's concurrency-limits, TCP Vegas): a step mostly waits for a
// provider, so by Little's law the steps needed for a throughput grow
// with the time a call takes. With a fixed 64, calls of 50 ms capped the
// worker at 64 / (5 x 50 ms) = 256 orders/s.
//
// Every window the average call time is compared with the lowest window
// average seen lately (the latency when nothing queues). While calls take
// no longer than tolerance times that, more steps cost only waiting, and
// the limit grows by a quarter; once calls slow down beyond it, the steps
// are queueing for something (the cores, a provider's capacity), and the
// limit shrinks in proportion. It stays between min (Config.Concurrency)
// and max (Config.MaxSteps).
type stepLimit struct {
	mu       sync.Mutex
	inUse    int
	limit    float64
	min, max float64

	windowStart time.Time
	sum         time.Duration
	samples     int
	minRTT      time.Duration // lowest window average since minSince
	minSince    time.Time
}

const (
	limitWindow    = 100 * time.Millisecond
	limitMinWindow = 30 * time.Second // how long a low latency is remembered
	limitTolerance = 4.0
	limitGrowth    = 1.25
	limitSamples   = 8 // calls a window needs before it counts
)

func newStepLimit(min, max int) *stepLimit {
	return &stepLimit{limit: float64(min), min: float64(min), max: float64(max)}
}

// tryAcquire takes a place for a step, if there is one.
func (l *stepLimit) tryAcquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inUse >= int(l.limit) {
		return false
	}
	l.inUse++
	return true
}

func (l *stepLimit) release() {
	l.mu.Lock()
	l.inUse--
	l.mu.Unlock()
}

// capacity is the current limit; free the places not taken.
func (l *stepLimit) capacity() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit)
}

func (l *stepLimit) free() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit) - l.inUse
}

func (l *stepLimit) used() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inUse
}

// observe takes the time one provider call took, at now.
func (l *stepLimit) observe(rtt time.Duration, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.windowStart.IsZero() {
		l.windowStart, l.minSince = now, now
	}
	l.sum += rtt
	l.samples++
	if now.Sub(l.windowStart) < limitWindow || l.samples < limitSamples {
		return
	}
	avg := l.sum / time.Duration(l.samples)
	l.sum, l.samples, l.windowStart = 0, 0, now
	if l.minRTT == 0 || avg < l.minRTT || now.Sub(l.minSince) > limitMinWindow {
		l.minRTT, l.minSince = avg, now
	}
	gradient := limitTolerance * float64(l.minRTT) / float64(max(avg, 1))
	if gradient >= 1 {
		l.limit *= limitGrowth
	} else {
		l.limit *= math.Max(gradient, 0.5)
	}
	l.limit = math.Min(math.Max(l.limit, l.min), l.max)
}

// timedWallet and timedOrders report every provider call's time to the
// step limit: only real calls, not the balance readings polls share.
type timedWallet struct {
	providers.Wallet
	callTimer
}

func (t timedWallet) Balance(ctx context.Context, a providers.Account) (providers.Balance, error) {
	defer t.timeCall()()
	return t.Wallet.Balance(ctx, a)
}

func (t timedWallet) Debit(ctx context.Context, a providers.Account, d providers.Debit) (providers.DebitReply, error) {
	defer t.timeCall()()
	return t.Wallet.Debit(ctx, a, d)
}

func (t timedWallet) Cancel(ctx context.Context, a providers.Account, c providers.Cancel) (providers.CancelReply, error) {
	defer t.timeCall()()
	return t.Wallet.Cancel(ctx, a, c)
}

type timedOrders struct {
	OrderService
	callTimer
}

func (t timedOrders) CreateOrder(ctx context.Context, r sud.CreateOrderRequest) (sud.CreateOrderReply, error) {
	defer t.timeCall()()
	return t.OrderService.CreateOrder(ctx, r)
}

func (t timedOrders) QueryOrder(ctx context.Context, id string) (sud.Order, error) {
	defer t.timeCall()()
	return t.OrderService.QueryOrder(ctx, id)
}

// callTimer is what the timed clients share: the clock and where a call's
// time goes.
type callTimer struct {
	observe func(time.Duration, time.Time)
	now     func() time.Time
}

// timeCall starts timing a call and returns what reports it when the call
// returns: defer t.timeCall()().
func (c callTimer) timeCall() func() {
	start := c.now()
	return func() { c.observe(c.now().Sub(start), c.now()) }
}
