package providertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// WalletEndpoints names a wallet's four endpoints as its errors and
// observations report them, and as the sandbox's faults name them after
// the provider ("mogs.pay").
type WalletEndpoints struct{ Balance, Pay, Cancel, Present string }

// Wallet is a wallet client pointed at a sandbox of its own, as the
// contract suite needs it.
type Wallet struct {
	Client   providers.Wallet
	Sandbox  *sandbox.Sandbox
	Observed *Recorder // the client's Observer
}

// WalletContract describes a wallet client to the contract suite: what it
// is, how to start it against the HTTP sandbox, and the few answers in
// which the providers differ.
type WalletContract struct {
	Provider  string // "mogs" or "midas", as errors and the sandbox name it
	AppID     string // the sandbox's appid for it
	Endpoints WalletEndpoints
	// Start serves a sandbox over HTTP and returns a client for it.
	Start func(t testing.TB) Wallet
	// Account is a player whose login the sandbox accepts.
	Account func(openid string) providers.Account
	// Secrets are strings (the login's, the keys) no error may hold.
	Secrets []string
	// NotFoundRet is the provider's ret for a cancel of an unknown bill.
	NotFoundRet int
	// BusyRets are the rets a busy endpoint may answer with.
	BusyRets []int
	// CancelBusyRets are more rets a busy cancel may answer with.
	CancelBusyRets []int
	// FaultTries is how often each fault is tried, to see every busy ret
	// a provider picks at random.
	FaultTries int
	// Counters says the provider keeps cost_sum and present_sums (MOGS),
	// and the suite checks them too.
	Counters bool
	// Capture returns a client pointed at a stand-in that answers every
	// request with reply, and a count of the requests it got.
	Capture func(t testing.TB, reply string) (providers.Wallet, func() int32)
	// Dial returns a client for the provider at baseURL with timeout.
	Dial func(baseURL string, timeout time.Duration) providers.Wallet
	// CancelNeedsAmount says a cancel names the amount it gives back
	// (Midas), so a cancel without one is refused before any request.
	CancelNeedsAmount bool
	// QueryLeaks may never show in a timeout's error: a request's query
	// carries the login.
	QueryLeaks []string
}

// RunWalletContract checks the wallet contract every client must keep,
// over real HTTP against the sandbox: the balance of a new account, a pay
// charged once however often it is sent with its bill number (a lost
// reply included), a cancel that restores the coins once, a present, and
// the refusals (unknown bill, too little money, faults) with the class
// and code the saga decides on.
func RunWalletContract(t *testing.T, wc WalletContract) {
	t.Helper()
	ctx := context.Background()
	ep := wc.Endpoints
	fresh := func(t *testing.T) (Wallet, providers.Wallet) {
		t.Helper()
		t.Parallel()
		w := wc.Start(t)
		return w, w.Client
	}
	wantErr := func(t *testing.T, err error, class providers.Class, code providers.Code) *providers.Error {
		t.Helper()
		return WantErr(t, err, wc.Provider, class, code, wc.Secrets...)
	}
	observed := func(t *testing.T, w Wallet, endpoint, class string) {
		t.Helper()
		if got, want := w.Observed.Last(), wc.Provider+" "+endpoint+" "+class; got != want {
			t.Errorf("observed %q, want %q", got, want)
		}
	}

	t.Run("the client is a wallet that names its provider", func(t *testing.T) {
		t.Parallel()
		if got := wc.Dial("http://127.0.0.1:1", time.Second).Provider(); got != wc.Provider {
			t.Errorf("Provider() = %q, want %q", got, wc.Provider)
		}
	})

	t.Run("a new account shows the initial balance", func(t *testing.T) {
		w, c := fresh(t)
		b, err := c.Balance(ctx, wc.Account("fresh"))
		if err != nil {
			t.Fatal(err)
		}
		if b.Balance != 1000000 || b.SaveAmt != 1000000 || b.CostSum != 0 || b.FirstSave {
			t.Errorf("balance = %+v", b)
		}
		observed(t, w, ep.Balance, "ok")
	})

	t.Run("a pay debits once and a repeat with the same bill number is already done", func(t *testing.T) {
		w, c := fresh(t)
		a := wc.Account("payer")
		w.Sandbox.SetAccount(wc.Provider, wc.AppID, "payer", 1000, 100)
		r, err := c.Debit(ctx, a, providers.Debit{BillNo: "bill-pay-1", Amount: 300})
		if err != nil {
			t.Fatal(err)
		}
		want := providers.DebitReply{Class: providers.OK, BillNo: "bill-pay-1", Balance: 700, BalanceKnown: true, UsedGenAmt: 100}
		if r != want {
			t.Errorf("first pay = %+v, want %+v", r, want)
		}
		r, err = c.Debit(ctx, a, providers.Debit{BillNo: "bill-pay-1", Amount: 300})
		if err != nil {
			t.Fatal(err)
		}
		if r.Class != providers.AlreadyDone || r.BillNo != "bill-pay-1" || r.BalanceKnown {
			t.Errorf("repeat pay = %+v, want already done without a balance", r)
		}
		observed(t, w, ep.Pay, "already_done")
		v, _ := w.Sandbox.Account(wc.Provider, wc.AppID, "payer")
		if v.Balance != 700 || (wc.Counters && v.CostSum != 300) {
			t.Errorf("account after two pays = %+v, want one debit of 300", v)
		}
	})

	t.Run("a cancel restores the coins and a second cancel is already done", func(t *testing.T) {
		w, c := fresh(t)
		a := wc.Account("canceller")
		w.Sandbox.SetAccount(wc.Provider, wc.AppID, "canceller", 500, 50)
		if _, err := c.Debit(ctx, a, providers.Debit{BillNo: "bill-cancel-1", Amount: 200}); err != nil {
			t.Fatal(err)
		}
		r, err := c.Cancel(ctx, a, providers.Cancel{BillNo: "bill-cancel-1", Amount: 200})
		if err != nil {
			t.Fatal(err)
		}
		if r != (providers.CancelReply{Class: providers.OK, BillNo: "bill-cancel-1"}) {
			t.Errorf("cancel = %+v", r)
		}
		r, err = c.Cancel(ctx, a, providers.Cancel{BillNo: "bill-cancel-1", Amount: 200})
		if err != nil {
			t.Fatal(err)
		}
		if r.Class != providers.AlreadyDone {
			t.Errorf("second cancel = %+v, want already done", r)
		}
		b, err := c.Balance(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if b.Balance != 500 || b.GenBalance != 50 {
			t.Errorf("balance after cancel = %+v, want 500 with 50 gifted", b)
		}
	})

	t.Run("a cancel of an unknown bill is final not found", func(t *testing.T) {
		_, c := fresh(t)
		_, err := c.Cancel(ctx, wc.Account("canceller"), providers.Cancel{BillNo: "never-paid", Amount: 1})
		pe := wantErr(t, err, providers.Final, providers.CodeNotFound)
		if pe.Ret != wc.NotFoundRet || pe.Endpoint != ep.Cancel {
			t.Errorf("err = %+v, want ret %d from %s", pe, wc.NotFoundRet, ep.Cancel)
		}
	})

	t.Run("a present adds coins and a repeat is already done", func(t *testing.T) {
		w, c := fresh(t)
		a := wc.Account("giftee")
		w.Sandbox.SetAccount(wc.Provider, wc.AppID, "giftee", 10, 0)
		r, err := c.Present(ctx, a, providers.Present{BillNo: "gift-1", Amount: 5})
		if err != nil {
			t.Fatal(err)
		}
		if r != (providers.PresentReply{Class: providers.OK, BillNo: "gift-1", Balance: 15}) {
			t.Errorf("present = %+v", r)
		}
		r, err = c.Present(ctx, a, providers.Present{BillNo: "gift-1", Amount: 5})
		if err != nil {
			t.Fatal(err)
		}
		if r.Class != providers.AlreadyDone {
			t.Errorf("repeat present = %+v", r)
		}
		b, _ := c.Balance(ctx, a)
		if b.Balance != 15 || b.GenBalance != 5 || (wc.Counters && b.PresentSums != 5) {
			t.Errorf("balance = %+v, want one present of 5", b)
		}
	})

	t.Run("a pay above the balance is final insufficient balance and charges nothing", func(t *testing.T) {
		w, c := fresh(t)
		w.Sandbox.SetAccount(wc.Provider, wc.AppID, "poor", 10, 0)
		_, err := c.Debit(ctx, wc.Account("poor"), providers.Debit{BillNo: "bill-poor", Amount: 11})
		wantErr(t, err, providers.Final, providers.CodeInsufficientBalance)
		observed(t, w, ep.Pay, "final")
		if v, _ := w.Sandbox.Account(wc.Provider, wc.AppID, "poor"); v.Balance != 10 {
			t.Errorf("balance = %d, want 10", v.Balance)
		}
	})

	t.Run("a retry after a dropped pay reply leaves exactly one debit", func(t *testing.T) {
		w, c := fresh(t)
		a := wc.Account("dropped")
		w.Sandbox.SetAccount(wc.Provider, wc.AppID, "dropped", 1000, 0)
		d := providers.Debit{BillNo: "order-42-pay", Amount: 250}
		w.Sandbox.SetFault(sandbox.Fault{Endpoint: wc.Provider + "." + ep.Pay, DropReplyRate: 1})
		_, err := c.Debit(ctx, a, d)
		wantErr(t, err, providers.Retryable, providers.CodeUnavailable)

		w.Sandbox.ClearFaults()
		r, err := c.Debit(ctx, a, d)
		if err != nil {
			t.Fatal(err)
		}
		if r.Class != providers.AlreadyDone {
			t.Errorf("retry = %+v, want already done", r)
		}
		var bills int
		for _, b := range w.Sandbox.Bills() {
			if b.Provider == wc.Provider && b.OpenID == "dropped" {
				bills++
				if b.BillNo != d.BillNo || b.Amt != 250 || b.Cancelled {
					t.Errorf("bill = %+v", b)
				}
			}
		}
		if bills != 1 {
			t.Errorf("%d bills, want 1", bills)
		}
		if v, _ := w.Sandbox.Account(wc.Provider, wc.AppID, "dropped"); v.Balance != 750 || (wc.Counters && v.CostSum != 250) {
			t.Errorf("account = %+v, want one debit of 250", v)
		}
	})

	t.Run("bills expire after 48 hours", func(t *testing.T) {
		t.Parallel()
		billsExpireAfter48Hours(t, wc)
	})
	t.Run("calls without an idempotency key never leave", func(t *testing.T) {
		t.Parallel()
		callsWithoutAnIdempotencyKeyNeverLeave(t, wc)
	})
	t.Run("bill numbers the provider would refuse never leave", func(t *testing.T) {
		t.Parallel()
		BadBillNosNeverLeave(t, wc.Account("k"), Endpoints{Pay: ep.Pay, Cancel: ep.Cancel, Present: ep.Present},
			func(t *testing.T) (providers.Wallet, func() int32) { return wc.Capture(t, `{"ret":0,"balance":1}`) })
	})
	t.Run("a bill number of 63 characters is paid", func(t *testing.T) {
		_, c := fresh(t)
		bill := strings.Repeat("b", 62) + "1"
		if _, err := c.Debit(ctx, wc.Account("long"), providers.Debit{BillNo: bill, Amount: 1}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("timeouts", func(t *testing.T) {
		t.Parallel()
		timeouts(t, wc)
	})

	faults := []struct {
		name  string
		fault sandbox.Fault
		code  providers.Code
		busy  bool
	}{
		{"busy", sandbox.Fault{BusyRate: 1}, providers.CodeBusy, true},
		{"HTTP 500", sandbox.Fault{ErrorRate: 1}, providers.CodeUnavailable, false},
		{"a dropped reply", sandbox.Fault{DropReplyRate: 1}, providers.CodeUnavailable, false},
	}
	for _, op := range Ops {
		endpoint, billNo := ep.Endpoint(op), "fault-pay"
		if op == OpPresent {
			billNo = "fault-gift"
		}
		for _, f := range faults {
			t.Run(endpoint+" answered with "+f.name+" is retryable", func(t *testing.T) {
				w, c := fresh(t)
				fault := f.fault
				fault.Endpoint = wc.Provider + "." + endpoint
				w.Sandbox.SetFault(fault)
				for range max(1, wc.FaultTries) {
					_, err := op.Do(ctx, c, wc.Account("faulty"), billNo)
					pe := wantErr(t, err, providers.Retryable, f.code)
					want := []int{0} // an HTTP failure has no ret
					if f.busy {
						want = wc.BusyRets
						if op == OpCancel {
							want = append(append([]int(nil), want...), wc.CancelBusyRets...)
						}
					}
					if !contains(want, pe.Ret) {
						t.Errorf("Ret = %d, want one of %v", pe.Ret, want)
					}
					observed(t, w, endpoint, "retryable")
				}
			})
		}
	}
}

// billsExpireAfter48Hours is the hazard the saga must guard against: 48
// hours after the first pay the provider forgets the bill number, so a
// cancel finds nothing and a pay with the same number charges again.
func billsExpireAfter48Hours(t *testing.T, wc WalletContract) {
	ctx := context.Background()
	d := providers.Debit{BillNo: "order-48h", Amount: 100}
	paid := func(t *testing.T) (Wallet, providers.Account) {
		t.Helper()
		t.Parallel()
		w := wc.Start(t)
		w.Sandbox.SetAccount(wc.Provider, wc.AppID, "p", 1000, 0)
		a := wc.Account("p")
		if _, err := w.Client.Debit(ctx, a, d); err != nil {
			t.Fatal(err)
		}
		return w, a
	}

	t.Run("a cancel 47 hours after the pay restores the coins", func(t *testing.T) {
		w, a := paid(t)
		w.Sandbox.AdvanceClock(47 * time.Hour)
		if r, err := w.Client.Cancel(ctx, a, providers.Cancel{BillNo: d.BillNo, Amount: d.Amount}); err != nil || r.Class != providers.OK {
			t.Fatalf("cancel = %+v, %v", r, err)
		}
	})

	t.Run("a cancel 49 hours after the pay is final not found and the coins stay charged", func(t *testing.T) {
		w, a := paid(t)
		w.Sandbox.AdvanceClock(49 * time.Hour)
		_, err := w.Client.Cancel(ctx, a, providers.Cancel{BillNo: d.BillNo, Amount: d.Amount})
		if pe := WantErr(t, err, wc.Provider, providers.Final, providers.CodeNotFound); pe.Ret != wc.NotFoundRet {
			t.Errorf("Ret = %d, want %d", pe.Ret, wc.NotFoundRet)
		}
		if v, _ := w.Sandbox.Account(wc.Provider, wc.AppID, "p"); v.Balance != 900 {
			t.Errorf("balance = %d, want 900: not found does not mean not charged", v.Balance)
		}
	})

	t.Run("a pay 49 hours later with the same bill number charges a second time", func(t *testing.T) {
		w, a := paid(t)
		w.Sandbox.AdvanceClock(49 * time.Hour)
		r, err := w.Client.Debit(ctx, a, d)
		if err != nil || r.Class != providers.OK || r.Balance != 800 {
			t.Fatalf("second pay = %+v, %v; want OK with a second debit", r, err)
		}
	})

	t.Run("a repeated pay within 48 hours is already done and may carry no balance", func(t *testing.T) {
		w, a := paid(t)
		w.Sandbox.AdvanceClock(47 * time.Hour)
		r, err := w.Client.Debit(ctx, a, d)
		if err != nil || r.Class != providers.AlreadyDone || r.BalanceKnown {
			t.Fatalf("repeat = %+v, %v; want already done without a balance", r, err)
		}
		if v, _ := w.Sandbox.Account(wc.Provider, wc.AppID, "p"); v.Balance != 900 {
			t.Errorf("balance = %d, want one debit", v.Balance)
		}
	})
}

// callsWithoutAnIdempotencyKeyNeverLeave: a money call without a bill
// number, or without a positive amount, is refused before any request.
func callsWithoutAnIdempotencyKeyNeverLeave(t *testing.T, wc WalletContract) {
	ctx := context.Background()
	c, hits := wc.Capture(t, `{"ret":0,"balance":1}`)
	a := wc.Account("k")
	tests := []struct {
		name string
		call func() error
	}{
		{"a pay without a bill number", func() error { _, err := c.Debit(ctx, a, providers.Debit{Amount: 1}); return err }},
		{"a pay of zero coins", func() error { _, err := c.Debit(ctx, a, providers.Debit{BillNo: "b"}); return err }},
		{"a cancel without a bill number", func() error { _, err := c.Cancel(ctx, a, providers.Cancel{Amount: 1}); return err }},
		{"a present without a bill number", func() error { _, err := c.Present(ctx, a, providers.Present{Amount: 1}); return err }},
		{"a present of negative coins", func() error {
			_, err := c.Present(ctx, a, providers.Present{BillNo: "b", Amount: -1})
			return err
		}},
	}
	if wc.CancelNeedsAmount {
		tests = append(tests, struct {
			name string
			call func() error
		}{"a cancel without an amount", func() error { _, err := c.Cancel(ctx, a, providers.Cancel{BillNo: "b"}); return err }})
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused as a final param error", func(t *testing.T) {
			WantErr(t, tt.call(), wc.Provider, providers.Final, providers.CodeParamError)
		})
	}
	if n := hits(); n != 0 {
		t.Errorf("%d requests reached the provider, want 0", n)
	}
}

// timeouts: a slow provider, the caller's deadline and a refused
// connection are all retryable, and say nothing of the request.
func timeouts(t *testing.T, wc WalletContract) {
	hanging := Hanging(t)

	t.Run("a provider slower than the client timeout is a retryable timeout without secrets", func(t *testing.T) {
		c := wc.Dial(hanging, 50*time.Millisecond)
		_, err := c.Debit(context.Background(), wc.Account("slow"), providers.Debit{BillNo: "b", Amount: 1})
		pe := WantErr(t, err, wc.Provider, providers.Retryable, providers.CodeTimeout)
		for _, leak := range wc.QueryLeaks {
			if strings.Contains(pe.Error(), leak) {
				t.Errorf("error leaks the query (%s): %v", leak, pe)
			}
		}
	})

	t.Run("the caller's deadline bounds the call too", func(t *testing.T) {
		c := wc.Dial(hanging, time.Minute)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := c.Balance(ctx, wc.Account("slow"))
		WantErr(t, err, wc.Provider, providers.Retryable, providers.CodeTimeout)
	})

	t.Run("a refused connection is retryable unavailable", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		url := dead.URL
		dead.Close()
		_, err := wc.Dial(url, 2*time.Second).Balance(context.Background(), wc.Account("nobody"))
		WantErr(t, err, wc.Provider, providers.Retryable, providers.CodeUnavailable)
	})
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
