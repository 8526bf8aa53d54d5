package protect_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/protect"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// Through the real clients and the real sandbox over HTTP.

func TestBreakerAgainstTheSandbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("a busy mogs.pay opens its circuit, a probe goes through after the cool-down, and the circuit closes once the provider is back", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		clk, lg, obs := newClock(), &logs{}, newObserver()
		w := protect.Wallet(e.mogs(5*time.Second), protect.Config{Now: clk.Now, Logger: slog.New(lg), Observer: obs})
		acct := mogsAccount("p1")
		debit := func(i int) error {
			_, err := w.Debit(ctx, acct, providers.Debit{BillNo: fmt.Sprintf("bill-%d", i), Amount: 1})
			return err
		}
		e.sb.SetFault(sandbox.Fault{Endpoint: "mogs.pay", BusyRate: 1})
		for i := range protect.DefaultFailures {
			wantCode(t, debit(i), providers.Retryable, providers.CodeBusy)
		}
		opened := clk.Now()
		for i := range 20 {
			wantRefused(t, debit(100+i), "mogs.pay", opened)
		}
		if n := e.hits.count("/mogs/pay"); n != protect.DefaultFailures {
			t.Fatalf("%d pays reached the sandbox, want only the %d before the circuit opened", n, protect.DefaultFailures)
		}
		if _, err := w.Balance(ctx, acct); err != nil {
			t.Fatalf("getbalance, on a circuit of its own: %v", err)
		}

		clk.Advance(protect.DefaultCoolDown)
		wantCode(t, debit(200), providers.Retryable, providers.CodeBusy) // the probe, still busy
		wantRefused(t, debit(201), "mogs.pay", opened)
		if n := e.hits.count("/mogs/pay"); n != protect.DefaultFailures+1 {
			t.Fatalf("%d pays reached the sandbox, want one probe more", n)
		}

		e.sb.ClearFaults()
		clk.Advance(protect.DefaultCoolDown) // the cool-down doubled: not yet
		wantRefused(t, debit(202), "mogs.pay", opened)
		clk.Advance(protect.DefaultCoolDown)
		if err := debit(203); err != nil {
			t.Fatalf("probe after the fault cleared: %v", err)
		}
		for i := range 5 {
			if err := debit(300 + i); err != nil {
				t.Fatalf("after the circuit closed: %v", err)
			}
		}
		if n := e.hits.count("/mogs/pay"); n != protect.DefaultFailures+1+1+5 {
			t.Fatalf("%d pays reached the sandbox", n)
		}
		if v, _ := e.sb.Account("mogs", mogsAppID, "p1"); v.Balance != 1000000-6 {
			t.Fatalf("balance %d: refused calls must not have charged", v.Balance)
		}

		lines := lg.lines()
		if len(lines) != 2 || !strings.Contains(lines[0].msg, "opened") || !strings.Contains(lines[1].msg, "closed") {
			t.Fatalf("log lines = %+v, want one at open and one at close", lines)
		}
		if !strings.Contains(lines[0].attrs["err"], "busy") || lines[0].attrs["endpoint"] != "mogs.pay" {
			t.Errorf("the open line does not say which error opened which circuit: %+v", lines[0])
		}
		changes, refused, _ := obs.snapshot()
		if strings.Join(changes, ", ") != "mogs.pay open, mogs.pay closed" || refused["mogs.pay"] != 22 {
			t.Errorf("observed changes %v, refusals %v", changes, refused)
		}
	})

	outages := []struct {
		name    string
		fault   sandbox.Fault
		timeout time.Duration
		code    providers.Code
	}{
		{"HTTP 500s open the circuit", sandbox.Fault{Endpoint: "mogs.getbalance", ErrorRate: 1}, 5 * time.Second, providers.CodeUnavailable},
		{"dropped replies open the circuit", sandbox.Fault{Endpoint: "mogs.getbalance", DropReplyRate: 1}, 5 * time.Second, providers.CodeUnavailable},
		{"timeouts open the circuit", sandbox.Fault{Endpoint: "mogs.getbalance", LatencyMS: 2000}, 50 * time.Millisecond, providers.CodeTimeout},
	}
	for _, tc := range outages {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			clk := newClock()
			w := protect.Wallet(e.mogs(tc.timeout), protect.Config{Now: clk.Now})
			e.sb.SetFault(tc.fault)
			for range protect.DefaultFailures {
				_, err := w.Balance(ctx, mogsAccount("p1"))
				wantCode(t, err, providers.Retryable, tc.code)
			}
			_, err := w.Balance(ctx, mogsAccount("p1"))
			wantRefused(t, err, "mogs.getbalance", clk.Now())
			if n := e.hits.count("/mogs/getbalance"); n != protect.DefaultFailures {
				t.Fatalf("%d calls reached the sandbox", n)
			}
		})
	}

	t.Run("insufficient balance, however often, does not open the circuit", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.sb.SetAccount("mogs", mogsAppID, "poor", 5, 0)
		w := protect.Wallet(e.mogs(5*time.Second), protect.Config{Now: newClock().Now})
		const calls = 3 * protect.DefaultFailures
		for i := range calls {
			_, err := w.Debit(ctx, mogsAccount("poor"), providers.Debit{BillNo: fmt.Sprintf("bill-%d", i), Amount: 10})
			wantCode(t, err, providers.Final, providers.CodeInsufficientBalance)
		}
		if n := e.hits.count("/mogs/pay"); n != calls {
			t.Fatalf("%d of %d declined pays reached the sandbox", n, calls)
		}
	})

	t.Run("a busy sud.create_order opens its circuit while query_order still answers", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		clk := newClock()
		o := protect.Orders(e.sud(t), protect.Config{Now: clk.Now})
		if _, err := o.CreateOrder(ctx, order("o-1")); err != nil {
			t.Fatal(err)
		}
		e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", BusyRate: 1})
		for i := range protect.DefaultFailures {
			_, err := o.CreateOrder(ctx, order(fmt.Sprintf("o-busy-%d", i)))
			wantCode(t, err, providers.Retryable, providers.CodeBusy)
		}
		_, err := o.CreateOrder(ctx, order("o-2"))
		wantRefused(t, err, "sud.create_order", clk.Now())
		if q, err := o.QueryOrder(ctx, "o-1"); err != nil || q.OutOrderID != "o-1" {
			t.Fatalf("query_order: %+v, %v", q, err)
		}
		if n := e.hits.count("/sud/create_order"); n != 1+protect.DefaultFailures {
			t.Fatalf("%d creates reached the sandbox", n)
		}
	})
}

func TestRateLimitAgainstTheSandbox(t *testing.T) {
	t.Parallel()
	t.Run("100 calls/s on midas.pay_m: 64 callers for 3 s never put more than 110 calls in a second, and every call completes", func(t *testing.T) {
		t.Parallel()
		const (
			rate    = 100
			callers = 64
			run     = 3 * time.Second
		)
		e := newEnv(t)
		obs := newObserver()
		// Burst 1: at most 101 tokens in any second. The 9 to spare are for
		// a loaded machine, where a stall of the scheduler lets the calls
		// whose turn came during it arrive together afterwards.
		w := protect.Wallet(e.midas(), protect.Config{Observer: obs,
			ByEndpoint: map[string]protect.EndpointConfig{"midas.pay_m": {RatePerSecond: rate, Burst: 1}}})
		ctx := context.Background()
		var calls, failed atomic.Int64
		var firstErr atomic.Value
		start := time.Now()
		var wg sync.WaitGroup
		for c := range callers {
			wg.Go(func() {
				acct := midasAccount(fmt.Sprintf("caller-%d", c))
				for i := 0; time.Since(start) < run; i++ {
					calls.Add(1)
					if _, err := w.Debit(ctx, acct, providers.Debit{BillNo: fmt.Sprintf("bill-%d-%d", c, i), Amount: 1}); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
				}
			})
		}
		wg.Wait()
		if n := failed.Load(); n != 0 {
			t.Fatalf("%d of %d calls failed, first: %v", n, calls.Load(), firstErr.Load())
		}
		arrivals := e.hits.arrivalsOf("/mpay/pay_m")
		if int64(len(arrivals)) != calls.Load() {
			t.Fatalf("%d calls made, %d reached the sandbox", calls.Load(), len(arrivals))
		}
		peak := 0
		for i, j := 0, 0; i < len(arrivals); i++ {
			for j < len(arrivals) && arrivals[j].Sub(arrivals[i]) < time.Second {
				j++
			}
			peak = max(peak, j-i)
		}
		if peak > 110 {
			t.Fatalf("%d calls reached the sandbox within one second, want at most 110", peak)
		}
		if min := int(run.Seconds()) * rate * 9 / 10; len(arrivals) < min {
			t.Fatalf("%d calls in %v, want at least %d: the limit is stricter than asked", len(arrivals), run, min)
		}
		if _, _, waited := obs.snapshot(); waited["midas.pay_m rate"] == 0 {
			t.Errorf("no rate wait observed: %v", waited)
		}
		t.Logf("%d calls, at most %d in a second", len(arrivals), peak)
	})
}

func TestBulkheadAgainstTheSandbox(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		cfg     protect.EndpointConfig
		callers int
		want    int
	}{
		{"with 100 ms latency and MaxInFlight 4, at most 4 requests reach the sandbox at once", protect.EndpointConfig{MaxInFlight: 4}, 16, 4},
		{"the default bulkhead lets 64 callers all be in flight at once", protect.EndpointConfig{}, 64, 64},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.sb.SetFault(sandbox.Fault{Endpoint: "mogs.getbalance", LatencyMS: 100})
			// Requests wait at the door until want of them are in: if the
			// guards let fewer through together, the peak stays below want.
			e.hits.holdUntilPeak("/mogs/getbalance", tc.want, 10*time.Second)
			obs := newObserver()
			w := protect.Wallet(e.mogs(30*time.Second), protect.Config{Observer: obs, Default: tc.cfg})
			var wg sync.WaitGroup
			errs := make(chan error, tc.callers)
			for c := range tc.callers {
				wg.Go(func() {
					if _, err := w.Balance(context.Background(), mogsAccount(fmt.Sprintf("p%d", c))); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if n := e.hits.count("/mogs/getbalance"); n != tc.callers {
				t.Fatalf("%d of %d calls reached the sandbox", n, tc.callers)
			}
			if p := e.hits.peakOf("/mogs/getbalance"); p != tc.want {
				t.Fatalf("%d requests in flight at the peak, want %d", p, tc.want)
			}
			_, _, waited := obs.snapshot()
			if queued := tc.callers > tc.want; queued != (waited["mogs.getbalance bulkhead"] > 0) {
				t.Errorf("bulkhead waits observed: %v", waited)
			}
		})
	}
}
