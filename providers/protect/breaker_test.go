package protect_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/protect"
	"github.com/coinsaga/coinsaga/providers/sud"
)

// fakeWallet is a MOGS wallet whose every call ends as answer says.
type fakeWallet struct {
	mu     sync.Mutex
	calls  int
	answer func(ctx context.Context) error
}

func newFake(err error) *fakeWallet {
	return &fakeWallet{answer: func(context.Context) error { return err }}
}

func (f *fakeWallet) set(answer func(ctx context.Context) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = answer
}

func (f *fakeWallet) answerAll(err error) { f.set(func(context.Context) error { return err }) }

func (f *fakeWallet) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeWallet) do(ctx context.Context) error {
	f.mu.Lock()
	f.calls++
	answer := f.answer
	f.mu.Unlock()
	return answer(ctx)
}

func (f *fakeWallet) Provider() string { return "mogs" }

func (f *fakeWallet) Balance(ctx context.Context, _ providers.Account) (providers.Balance, error) {
	return providers.Balance{}, f.do(ctx)
}

func (f *fakeWallet) Debit(ctx context.Context, _ providers.Account, d providers.Debit) (providers.DebitReply, error) {
	if err := f.do(ctx); err != nil {
		return providers.DebitReply{}, err
	}
	return providers.DebitReply{Class: providers.OK, BillNo: d.BillNo}, nil
}

func (f *fakeWallet) Cancel(ctx context.Context, _ providers.Account, c providers.Cancel) (providers.CancelReply, error) {
	return providers.CancelReply{Class: providers.OK, BillNo: c.BillNo}, f.do(ctx)
}

func (f *fakeWallet) Present(ctx context.Context, _ providers.Account, p providers.Present) (providers.PresentReply, error) {
	return providers.PresentReply{Class: providers.OK, BillNo: p.BillNo}, f.do(ctx)
}

func perr(class providers.Class, code providers.Code) error {
	return &providers.Error{Provider: "mogs", Endpoint: "pay", Class: class, Code: code}
}

var (
	busy      = perr(providers.Retryable, providers.CodeBusy)
	declined  = perr(providers.Final, providers.CodeInsufficientBalance)
	debitCall = providers.Debit{BillNo: "bill-1", Amount: 10}
)

// breakerEnv is a guarded fake wallet on a fake clock.
type breakerEnv struct {
	fake  *fakeWallet
	w     providers.Wallet
	clock *clock
	obs   *observer
	logs  *logs
}

func newBreakerEnv(cfg protect.Config) *breakerEnv {
	e := &breakerEnv{fake: newFake(nil), clock: newClock(), obs: newObserver(), logs: &logs{}}
	cfg.Now, cfg.Observer, cfg.Logger = e.clock.Now, e.obs, slog.New(e.logs)
	e.w = protect.Wallet(e.fake, cfg)
	return e
}

func (e *breakerEnv) debit(t *testing.T) error {
	t.Helper()
	_, err := e.w.Debit(context.Background(), providers.Account{OpenID: "p1"}, debitCall)
	return err
}

// held starts a debit that the fake holds inside the provider, and returns
// once it is inside: with the call's result to come, and the release that
// lets it succeed.
func (e *breakerEnv) held(t *testing.T) (result <-chan error, release func()) {
	t.Helper()
	inside, released := make(chan struct{}), make(chan struct{})
	e.fake.set(func(context.Context) error {
		close(inside)
		<-released
		return nil
	})
	res := make(chan error, 1)
	go func() { res <- e.debit(t) }()
	<-inside
	return res, func() { close(released) }
}

// open makes the circuit of mogs.pay open with the default K failures and
// returns when it opened.
func (e *breakerEnv) open(t *testing.T) time.Time {
	t.Helper()
	e.fake.answerAll(busy)
	for range protect.DefaultFailures {
		wantCode(t, e.debit(t), providers.Retryable, providers.CodeBusy)
	}
	return e.clock.Now()
}

func TestWhatOpensTheCircuit(t *testing.T) {
	t.Parallel()
	cancelled := func(ctx context.Context) error {
		// The caller hangs up mid-call: the client sees a transport error.
		return providers.TransportError("mogs", "pay", context.Canceled)
	}
	cases := []struct {
		name     string
		answer   func(ctx context.Context) error
		hangUp   bool
		wantOpen bool
	}{
		{"busy answers open it", func(context.Context) error { return busy }, false, true},
		{"5xx and refused connections open it", func(context.Context) error { return perr(providers.Retryable, providers.CodeUnavailable) }, false, true},
		{"timeouts open it", func(context.Context) error {
			return providers.TransportError("mogs", "pay", context.DeadlineExceeded)
		}, false, true},
		{"business declines do not: the service answered", func(context.Context) error { return declined }, false, false},
		{"parameter errors do not", func(context.Context) error { return perr(providers.Final, providers.CodeParamError) }, false, false},
		{"an expired login does not", func(context.Context) error { return perr(providers.Final, providers.CodeLoginFailed) }, false, false},
		{"an unknown final code does not", func(context.Context) error { return perr(providers.Final, providers.CodeUnknown) }, false, false},
		{"an undecodable reply does not: the service answered, if badly", func(context.Context) error {
			return perr(providers.Retryable, providers.CodeBadReply)
		}, false, false},
		{"successes do not", func(context.Context) error { return nil }, false, false},
		{"errors that are not provider errors do not", func(context.Context) error { return errors.New("boom") }, false, false},
		{"calls whose caller hung up do not", cancelled, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newBreakerEnv(protect.Config{})
			e.fake.set(tc.answer)
			for i := range protect.DefaultFailures + 2 {
				ctx, cancel := context.WithCancel(context.Background())
				if tc.hangUp {
					cancel()
				}
				_, err := e.w.Debit(ctx, providers.Account{}, debitCall)
				cancel()
				if tc.hangUp && i == 0 {
					// Hung up before the call: a rate-less guard still sends
					// it, and the client reports the cancelled context.
					if e.fake.count() != 1 {
						t.Fatalf("the call was not sent")
					}
				}
				if providers.CodeOf(err) == providers.CodeCircuitOpen {
					if !tc.wantOpen {
						t.Fatalf("call %d refused: %v", i+1, err)
					}
					if i != protect.DefaultFailures {
						t.Fatalf("refused at call %d, want after %d failures", i+1, protect.DefaultFailures)
					}
					return
				}
			}
			if tc.wantOpen {
				t.Fatalf("%d calls and the circuit is still closed", protect.DefaultFailures+2)
			}
			if n := e.fake.count(); n != protect.DefaultFailures+2 {
				t.Fatalf("%d calls reached the wallet, want all", n)
			}
		})
	}
}

func TestBreaker(t *testing.T) {
	t.Parallel()

	t.Run("an open circuit refuses at once without calling the provider, safe to retry", func(t *testing.T) {
		t.Parallel()
		e := newBreakerEnv(protect.Config{})
		opened := e.open(t)
		e.clock.Advance(time.Second)
		for range 3 {
			wantRefused(t, e.debit(t), "mogs.pay", opened)
		}
		if n := e.fake.count(); n != protect.DefaultFailures {
			t.Fatalf("%d calls reached the wallet, want only the %d failures", n, protect.DefaultFailures)
		}
		pe := wantCode(t, e.debit(t), providers.Retryable, providers.CodeCircuitOpen)
		if pe.Provider != "mogs" || pe.Endpoint != "pay" {
			t.Errorf("refusal names %s %s, want mogs pay", pe.Provider, pe.Endpoint)
		}
		if since, ok := protect.OpenSince(pe); !ok || !since.Equal(opened) {
			t.Errorf("OpenSince = %v, %v", since, ok)
		}
		changes, refused, _ := e.obs.snapshot()
		if len(changes) != 1 || changes[0] != "mogs.pay open" || refused["mogs.pay"] != 4 {
			t.Errorf("observed changes %v, refusals %v", changes, refused)
		}
	})

	t.Run("a success in the run starts the count again", func(t *testing.T) {
		t.Parallel()
		e := newBreakerEnv(protect.Config{})
		for round := range 3 {
			e.fake.answerAll(busy)
			for range protect.DefaultFailures - 1 {
				wantCode(t, e.debit(t), providers.Retryable, providers.CodeBusy)
			}
			e.fake.answerAll(declined)
			if err := e.debit(t); providers.CodeOf(err) != providers.CodeInsufficientBalance {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	})

	t.Run("each endpoint has a circuit of its own", func(t *testing.T) {
		t.Parallel()
		e := newBreakerEnv(protect.Config{})
		e.open(t)
		e.fake.answerAll(nil)
		if _, err := e.w.Balance(context.Background(), providers.Account{}); err != nil {
			t.Fatalf("getbalance with pay's circuit open: %v", err)
		}
		if _, err := e.w.Cancel(context.Background(), providers.Account{}, providers.Cancel{BillNo: "bill-1", Amount: 10}); err != nil {
			t.Fatalf("cancelpay with pay's circuit open: %v", err)
		}
	})

	t.Run("after the cool-down one probe goes through, and its success closes the circuit", func(t *testing.T) {
		t.Parallel()
		e := newBreakerEnv(protect.Config{})
		opened := e.open(t)
		e.clock.Advance(protect.DefaultCoolDown - time.Millisecond)
		wantRefused(t, e.debit(t), "mogs.pay", opened)
		e.clock.Advance(time.Millisecond)

		// The probe is held inside the provider while others try.
		probe, release := e.held(t)
		for range 3 {
			wantRefused(t, e.debit(t), "mogs.pay", opened)
		}
		release()
		if err := <-probe; err != nil {
			t.Fatalf("probe: %v", err)
		}
		if n := e.fake.count(); n != protect.DefaultFailures+1 {
			t.Fatalf("%d calls reached the wallet, want the failures and one probe", n)
		}
		e.fake.answerAll(nil)
		for range 3 {
			if err := e.debit(t); err != nil {
				t.Fatalf("after the probe succeeded: %v", err)
			}
		}
		changes, _, _ := e.obs.snapshot()
		if strings.Join(changes, ", ") != "mogs.pay open, mogs.pay closed" {
			t.Errorf("observed %v", changes)
		}
	})

	t.Run("a failed probe keeps the circuit open for a cool-down that doubles up to its cap", func(t *testing.T) {
		t.Parallel()
		e := newBreakerEnv(protect.Config{})
		opened := e.open(t)
		sent := e.fake.count()
		for _, cd := range []time.Duration{5, 10, 20, 40, 60, 60} {
			cd *= time.Second
			e.clock.Advance(cd - time.Millisecond)
			wantRefused(t, e.debit(t), "mogs.pay", opened)
			e.clock.Advance(time.Millisecond)
			wantCode(t, e.debit(t), providers.Retryable, providers.CodeBusy) // the probe
			if sent++; e.fake.count() != sent {
				t.Fatalf("after %v: %d calls reached the wallet, want %d", cd, e.fake.count(), sent)
			}
			wantRefused(t, e.debit(t), "mogs.pay", opened)
		}
		changes, _, _ := e.obs.snapshot()
		if len(changes) != 1 {
			t.Errorf("failed probes reported as changes: %v", changes)
		}
	})

	t.Run("a circuit that closed opens again with the first cool-down", func(t *testing.T) {
		t.Parallel()
		e := newBreakerEnv(protect.Config{})
		e.open(t)
		e.clock.Advance(5 * time.Second)
		wantCode(t, e.debit(t), providers.Retryable, providers.CodeBusy) // failed probe: 10 s next
		e.clock.Advance(10 * time.Second)
		e.fake.answerAll(nil)
		if err := e.debit(t); err != nil {
			t.Fatal(err)
		}
		reopened := e.open(t)
		e.clock.Advance(5 * time.Second)
		e.fake.answerAll(nil)
		if err := e.debit(t); err != nil {
			t.Fatalf("probe 5 s after reopening at %v: %v", reopened, err)
		}
	})

	t.Run("a probe whose caller hung up proves nothing: the next call probes at once", func(t *testing.T) {
		t.Parallel()
		e := newBreakerEnv(protect.Config{})
		e.open(t)
		e.clock.Advance(5 * time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		e.fake.set(func(context.Context) error {
			cancel()
			return providers.TransportError("mogs", "pay", context.Canceled)
		})
		if _, err := e.w.Debit(ctx, providers.Account{}, debitCall); err == nil {
			t.Fatal("hung-up probe succeeded")
		}
		e.fake.answerAll(nil)
		if err := e.debit(t); err != nil {
			t.Fatalf("the next call was not the probe: %v", err)
		}
	})

	t.Run("a success that started before the circuit opened does not close it", func(t *testing.T) {
		t.Parallel()
		e := newBreakerEnv(protect.Config{})
		straggler, release := e.held(t)
		opened := e.open(t)
		release()
		if err := <-straggler; err != nil {
			t.Fatal(err)
		}
		wantRefused(t, e.debit(t), "mogs.pay", opened)
	})

	t.Run("one log line when a circuit opens, with the error, and one when it closes", func(t *testing.T) {
		t.Parallel()
		e := newBreakerEnv(protect.Config{})
		e.open(t)
		for range 10 {
			_ = e.debit(t)
		}
		e.clock.Advance(5 * time.Second)
		_ = e.debit(t) // failed probe
		e.clock.Advance(10 * time.Second)
		e.fake.answerAll(nil)
		if err := e.debit(t); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			_ = e.debit(t)
		}
		got := e.logs.lines()
		if len(got) != 2 {
			t.Fatalf("%d log lines, want 2: %+v", len(got), got)
		}
		if o := got[0]; o.level != slog.LevelWarn || !strings.Contains(o.msg, "opened") || o.attrs["endpoint"] != "mogs.pay" ||
			o.attrs["err"] != busy.Error() || o.attrs["failures"] != "5" || o.attrs["probe_in"] != "5s" {
			t.Errorf("open line = %+v", o)
		}
		if c := got[1]; c.level != slog.LevelInfo || !strings.Contains(c.msg, "closed") || c.attrs["endpoint"] != "mogs.pay" || c.attrs["open_for"] != "15s" {
			t.Errorf("close line = %+v", c)
		}
	})

	t.Run("the breaker's settings are configurable", func(t *testing.T) {
		t.Parallel()
		e := newBreakerEnv(protect.Config{Breaker: protect.BreakerConfig{Failures: 2, CoolDown: time.Second, MaxCoolDown: 3 * time.Second}})
		e.fake.answerAll(busy)
		_, _ = e.debit(t), e.debit(t)
		opened := e.clock.Now()
		wantRefused(t, e.debit(t), "mogs.pay", opened)
		for _, cd := range []time.Duration{1, 2, 3, 3} {
			e.clock.Advance(cd*time.Second - time.Millisecond)
			wantRefused(t, e.debit(t), "mogs.pay", opened)
			e.clock.Advance(time.Millisecond)
			wantCode(t, e.debit(t), providers.Retryable, providers.CodeBusy)
		}
	})
}

func TestRefusalsAndWaits(t *testing.T) {
	t.Parallel()

	t.Run("a refused call neither waits for a rate token nor for a bulkhead slot", func(t *testing.T) {
		t.Parallel()
		e := newBreakerEnv(protect.Config{
			Default: protect.EndpointConfig{RatePerSecond: 0.01, Burst: 1, MaxInFlight: 1},
			Breaker: protect.BreakerConfig{Failures: 1},
		})
		e.fake.answerAll(busy)
		_ = e.debit(t) // takes the only token for 100 s, and opens the circuit
		opened := e.clock.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for range 3 {
			_, err := e.w.Debit(ctx, providers.Account{}, debitCall)
			wantRefused(t, err, "mogs.pay", opened)
		}
		_, refused, waited := e.obs.snapshot()
		if refused["mogs.pay"] != 3 || len(waited) != 0 {
			t.Fatalf("refusals %v, waits %v", refused, waited)
		}
	})

	t.Run("a caller whose deadline comes before its rate turn gives up at once, not sent", func(t *testing.T) {
		t.Parallel()
		e := newBreakerEnv(protect.Config{Default: protect.EndpointConfig{RatePerSecond: 0.01, Burst: 1}})
		if err := e.debit(t); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := e.w.Debit(ctx, providers.Account{}, debitCall)
		wantCode(t, err, providers.Retryable, providers.CodeTimeout)
		var we *protect.WaitError
		if !errors.As(err, &we) || we.Kind != protect.WaitRate || we.Endpoint != "mogs.pay" || !protect.NotSent(err) {
			t.Fatalf("err = %v, want a rate WaitError", err)
		}
		if n := e.fake.count(); n != 1 {
			t.Fatalf("%d calls sent", n)
		}
	})

	t.Run("a caller waiting for a bulkhead slot gives up when its context ends, not sent", func(t *testing.T) {
		t.Parallel()
		e := newBreakerEnv(protect.Config{Default: protect.EndpointConfig{MaxInFlight: 1}})
		first, release := e.held(t)
		ctx, cancel := context.WithCancel(context.Background())
		second := make(chan error, 1)
		go func() {
			_, err := e.w.Debit(ctx, providers.Account{}, debitCall)
			second <- err
		}()
		cancel()
		err := <-second
		wantCode(t, err, providers.Retryable, providers.CodeUnavailable)
		var we *protect.WaitError
		if !errors.As(err, &we) || we.Kind != protect.WaitBulkhead || !errors.Is(err, context.Canceled) || !protect.NotSent(err) {
			t.Fatalf("err = %v, want a bulkhead WaitError", err)
		}
		release()
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if n := e.fake.count(); n != 1 {
			t.Fatalf("%d calls sent", n)
		}
	})

	t.Run("a provider's own errors are not taken for guard refusals", func(t *testing.T) {
		t.Parallel()
		for _, err := range []error{busy, declined, providers.TransportError("mogs", "pay", context.DeadlineExceeded)} {
			if protect.NotSent(err) {
				t.Errorf("NotSent(%v) = true", err)
			}
			if _, ok := protect.OpenSince(err); ok {
				t.Errorf("OpenSince(%v) ok", err)
			}
		}
	})
}

// fakeOrders is an OrderService whose calls end as err says.
type fakeOrders struct {
	mu             sync.Mutex
	creates, reads int
	createErr      error
}

func (f *fakeOrders) CreateOrder(_ context.Context, r sud.CreateOrderRequest) (sud.CreateOrderReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	return sud.CreateOrderReply{Class: providers.OK, OutOrderID: r.OutOrderID}, f.createErr
}

func (f *fakeOrders) QueryOrder(_ context.Context, id string) (sud.Order, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return sud.Order{OutOrderID: id, Status: sud.StatusExecuteSuccess}, nil
}

func TestOrders(t *testing.T) {
	t.Parallel()
	t.Run("create_order's circuit opens on its own and names sud.create_order", func(t *testing.T) {
		t.Parallel()
		clk := newClock()
		f := &fakeOrders{createErr: &providers.Error{Provider: "sud", Endpoint: "create_order", Class: providers.Retryable, Code: providers.CodeBusy}}
		o := protect.Orders(f, protect.Config{Now: clk.Now})
		ctx := context.Background()
		for range protect.DefaultFailures {
			_, _ = o.CreateOrder(ctx, order("o-1"))
		}
		_, err := o.CreateOrder(ctx, order("o-1"))
		wantRefused(t, err, "sud.create_order", clk.Now())
		if pe := wantCode(t, err, providers.Retryable, providers.CodeCircuitOpen); pe.Provider != "sud" || pe.Endpoint != "create_order" {
			t.Errorf("refusal names %s %s", pe.Provider, pe.Endpoint)
		}
		if q, err := o.QueryOrder(ctx, "o-1"); err != nil || q.Status != sud.StatusExecuteSuccess {
			t.Fatalf("query_order: %+v, %v", q, err)
		}
		if f.creates != protect.DefaultFailures || f.reads != 1 {
			t.Fatalf("%d creates and %d reads sent", f.creates, f.reads)
		}
	})
}

func ExampleWallet() {
	var w providers.Wallet = newFake(busy)
	w = protect.Wallet(w, protect.Config{
		ByEndpoint: map[string]protect.EndpointConfig{"mogs.pay": {RatePerSecond: 100}},
		Breaker:    protect.BreakerConfig{Failures: 2},
	})
	for range 3 {
		_, err := w.Debit(context.Background(), providers.Account{OpenID: "p1"}, providers.Debit{BillNo: "b1", Amount: 10})
		fmt.Println(providers.CodeOf(err), protect.NotSent(err))
	}
	// Output:
	// busy false
	// busy false
	// circuit_open true
}
