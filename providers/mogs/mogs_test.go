package mogs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/mogs"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

const appID = "10000" // the sandbox's default MOGS appid

// recorder is an Observer that keeps every observation.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) ObserveCall(provider, endpoint string, class providers.Class, elapsed time.Duration) {
	if elapsed < 0 {
		panic("negative elapsed")
	}
	r.mu.Lock()
	r.calls = append(r.calls, provider+" "+endpoint+" "+class.String())
	r.mu.Unlock()
}

func (r *recorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return ""
	}
	return r.calls[len(r.calls)-1]
}

type env struct {
	sb     *sandbox.Sandbox
	base   string
	client *mogs.Client
	obs    *recorder
}

// newEnv starts a sandbox on a loopback port and a client pointed at it.
func newEnv(t testing.TB) *env {
	t.Helper()
	sb := sandbox.New(sandbox.Config{Seed: 1})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	obs := &recorder{}
	base := srv.URL + "/mogs"
	return &env{sb: sb, base: base, obs: obs, client: mogs.New(mogs.Config{BaseURL: base, AppID: appID, Observer: obs, Timeout: 2 * time.Second})}
}

func account(openid string) providers.Account {
	return providers.Account{OpenID: openid, MOGS: providers.MOGSLogin{JSCode: "js-secret-" + openid, PayItem: "dice"}}
}

// wantErr checks err is a *providers.Error of the given class and code.
func wantErr(t *testing.T, err error, class providers.Class, code providers.Code) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *providers.Error %v/%s", err, class, code)
	}
	if pe.Class != class || pe.Code != code {
		t.Fatalf("err = %v, want %v/%s", err, class, code)
	}
	if pe.Provider != "mogs" {
		t.Errorf("Provider = %q, want mogs", pe.Provider)
	}
	return pe
}

func TestClientIsTheMOGSWallet(t *testing.T) {
	var w providers.Wallet = mogs.New(mogs.Config{BaseURL: "http://127.0.0.1:1", AppID: appID})
	if w.Provider() != "mogs" {
		t.Errorf("Provider() = %q", w.Provider())
	}
}

func TestAgainstTheSandbox(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client

	t.Run("a new account shows the initial balance", func(t *testing.T) {
		b, err := c.Balance(ctx, account("fresh"))
		if err != nil {
			t.Fatal(err)
		}
		if b.Balance != 1000000 || b.SaveAmt != 1000000 || b.CostSum != 0 {
			t.Errorf("balance = %+v", b)
		}
		if got := e.obs.last(); got != "mogs getbalance ok" {
			t.Errorf("observed %q", got)
		}
	})

	t.Run("a pay debits once and a repeat with the same bill_no is already done", func(t *testing.T) {
		a := account("payer")
		e.sb.SetAccount("mogs", appID, "payer", 1000, 100)
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
		if got := e.obs.last(); got != "mogs pay already_done" {
			t.Errorf("observed %q", got)
		}
		v, _ := e.sb.Account("mogs", appID, "payer")
		if v.Balance != 700 || v.CostSum != 300 {
			t.Errorf("account after two pays = %+v, want one debit of 300", v)
		}
	})

	t.Run("a cancel restores the coins and a second cancel is already done", func(t *testing.T) {
		a := account("canceller")
		e.sb.SetAccount("mogs", appID, "canceller", 500, 50)
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
		_, err := c.Cancel(ctx, account("canceller"), providers.Cancel{BillNo: "never-paid", Amount: 1})
		pe := wantErr(t, err, providers.Final, providers.CodeNotFound)
		if pe.Ret != 90000 || pe.Endpoint != "cancelpay" {
			t.Errorf("err = %+v", pe)
		}
	})

	t.Run("a present adds coins and a repeat is already done", func(t *testing.T) {
		a := account("giftee")
		e.sb.SetAccount("mogs", appID, "giftee", 10, 0)
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
		if b.Balance != 15 || b.GenBalance != 5 || b.PresentSums != 5 {
			t.Errorf("balance = %+v, want one present of 5", b)
		}
	})

	t.Run("a pay above the balance is final insufficient balance and charges nothing", func(t *testing.T) {
		e.sb.SetAccount("mogs", appID, "poor", 10, 0)
		_, err := c.Debit(ctx, account("poor"), providers.Debit{BillNo: "bill-poor", Amount: 11})
		wantErr(t, err, providers.Final, providers.CodeInsufficientBalance)
		if got := e.obs.last(); got != "mogs pay final" {
			t.Errorf("observed %q", got)
		}
		if v, _ := e.sb.Account("mogs", appID, "poor"); v.Balance != 10 {
			t.Errorf("balance = %d, want 10", v.Balance)
		}
	})

	t.Run("an expired login is final login failed on every endpoint", func(t *testing.T) {
		a := account("late")
		a.MOGS.JSCode = "expired"
		_, err := c.Balance(ctx, a)
		wantErr(t, err, providers.Final, providers.CodeLoginFailed)
		_, err = c.Debit(ctx, a, providers.Debit{BillNo: "b", Amount: 1})
		wantErr(t, err, providers.Final, providers.CodeLoginFailed)
		_, err = c.Cancel(ctx, a, providers.Cancel{BillNo: "b", Amount: 1})
		wantErr(t, err, providers.Final, providers.CodeLoginFailed)
		_, err = c.Present(ctx, a, providers.Present{BillNo: "b", Amount: 1})
		wantErr(t, err, providers.Final, providers.CodeLoginFailed)
	})

	t.Run("a parameter MOGS refuses is final param error", func(t *testing.T) {
		a := account("android-only")
		a.MOGS.OSPlatID = 2
		_, err := c.Debit(ctx, a, providers.Debit{BillNo: "b-ios", Amount: 1})
		pe := wantErr(t, err, providers.Final, providers.CodeParamError)
		if pe.Ret != 90018 || pe.Msg == "" {
			t.Errorf("err = %+v, want ret 90018 with the provider's message", pe)
		}
	})

	t.Run("an unknown appid is final param error", func(t *testing.T) {
		other := mogs.New(mogs.Config{BaseURL: e.base, AppID: "99999"})
		_, err := other.Balance(ctx, account("x"))
		wantErr(t, err, providers.Final, providers.CodeParamError)
	})
}

func TestFaultsAreRetryable(t *testing.T) {
	ctx := context.Background()
	calls := []struct {
		name     string
		endpoint string
		call     func(c *mogs.Client, a providers.Account) error
	}{
		{"getbalance", "mogs.getbalance", func(c *mogs.Client, a providers.Account) error {
			_, err := c.Balance(ctx, a)
			return err
		}},
		{"pay", "mogs.pay", func(c *mogs.Client, a providers.Account) error {
			_, err := c.Debit(ctx, a, providers.Debit{BillNo: "fault-pay", Amount: 1})
			return err
		}},
		{"cancelpay", "mogs.cancelpay", func(c *mogs.Client, a providers.Account) error {
			_, err := c.Cancel(ctx, a, providers.Cancel{BillNo: "fault-pay", Amount: 1})
			return err
		}},
		{"present", "mogs.present", func(c *mogs.Client, a providers.Account) error {
			_, err := c.Present(ctx, a, providers.Present{BillNo: "fault-gift", Amount: 1})
			return err
		}},
	}
	faults := []struct {
		name  string
		fault sandbox.Fault
		code  providers.Code
		ret   int
	}{
		{"busy (-1)", sandbox.Fault{BusyRate: 1}, providers.CodeBusy, -1},
		{"HTTP 500", sandbox.Fault{ErrorRate: 1}, providers.CodeUnavailable, 0},
		{"a dropped reply", sandbox.Fault{DropReplyRate: 1}, providers.CodeUnavailable, 0},
	}
	e := newEnv(t)
	for _, call := range calls {
		for _, f := range faults {
			t.Run(call.name+" answered with "+f.name+" is retryable", func(t *testing.T) {
				fault := f.fault
				fault.Endpoint = call.endpoint
				e.sb.SetFault(fault)
				defer e.sb.ClearFaults()
				a := account("faulty")
				err := call.call(e.client, a)
				pe := wantErr(t, err, providers.Retryable, f.code)
				// A busy cancelpay may also be 90016, order being processed.
				if pe.Ret != f.ret && !(call.name == "cancelpay" && f.ret == -1 && pe.Ret == 90016) {
					t.Errorf("Ret = %d, want %d", pe.Ret, f.ret)
				}
				if strings.Contains(err.Error(), a.MOGS.JSCode) {
					t.Errorf("the error leaks js_code: %v", err)
				}
				if got := e.obs.last(); got != "mogs "+call.name+" retryable" {
					t.Errorf("observed %q", got)
				}
			})
		}
	}
}

func TestARetryAfterADroppedPayReplyLeavesExactlyOneDebit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a := account("dropped")
	e.sb.SetAccount("mogs", appID, "dropped", 1000, 0)
	d := providers.Debit{BillNo: "order-42-pay", Amount: 250}

	e.sb.SetFault(sandbox.Fault{Endpoint: "mogs.pay", DropReplyRate: 1})
	_, err := e.client.Debit(ctx, a, d)
	wantErr(t, err, providers.Retryable, providers.CodeUnavailable)

	e.sb.ClearFaults()
	r, err := e.client.Debit(ctx, a, d)
	if err != nil {
		t.Fatal(err)
	}
	if r.Class != providers.AlreadyDone {
		t.Errorf("retry = %+v, want already done", r)
	}
	var bills int
	for _, b := range e.sb.Bills() {
		if b.Provider == "mogs" && b.OpenID == "dropped" {
			bills++
			if b.BillNo != d.BillNo || b.Amt != 250 || b.Cancelled {
				t.Errorf("bill = %+v", b)
			}
		}
	}
	if bills != 1 {
		t.Errorf("%d bills, want 1", bills)
	}
	if v, _ := e.sb.Account("mogs", appID, "dropped"); v.Balance != 750 || v.CostSum != 250 {
		t.Errorf("account = %+v, want one debit of 250", v)
	}
}

// capture is a MOGS stand-in that records the last request and answers
// with a fixed reply, for checks of the wire format and odd replies.
type capture struct {
	mu     sync.Mutex
	path   string
	query  map[string]string
	body   map[string]any
	ctype  string
	status int
	reply  string
	hits   atomic.Int32
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.hits.Add(1)
	raw, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.path = r.URL.Path
	c.query = map[string]string{}
	for k, v := range r.URL.Query() {
		c.query[k] = v[0]
	}
	c.body = nil
	_ = json.Unmarshal(raw, &c.body)
	c.ctype = r.Header.Get("Content-Type")
	status, reply := c.status, c.reply
	c.mu.Unlock()
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, reply)
}

func newCapture(t *testing.T, reply string) (*capture, *mogs.Client) {
	t.Helper()
	cp := &capture{reply: reply}
	srv := httptest.NewServer(cp)
	t.Cleanup(srv.Close)
	return cp, mogs.New(mogs.Config{BaseURL: srv.URL + "/", AppID: appID, Timeout: time.Second})
}

func TestWireFormat(t *testing.T) {
	ctx := context.Background()
	a := providers.Account{OpenID: "opvxI4y", MOGS: providers.MOGSLogin{JSCode: "js&=code", SessionKey: "sk", PayItem: "dice"}}

	t.Run("pay sends the seed's query and body with defaults for app_plat and os_plat_id", func(t *testing.T) {
		cp, c := newCapture(t, `{"ret":0,"errmsg":"ok","balance":9,"bill_no":"b1","used_gen_amt":0}`)
		if _, err := c.Debit(ctx, a, providers.Debit{BillNo: "b1", Amount: 10}); err != nil {
			t.Fatal(err)
		}
		if cp.path != "/pay" {
			t.Errorf("path = %q", cp.path)
		}
		wantQ := map[string]string{"appid": appID, "app_plat": "1", "openid": "opvxI4y", "js_code": "js&=code"}
		if !equal(cp.query, wantQ) {
			t.Errorf("query = %v, want %v", cp.query, wantQ)
		}
		wantB := map[string]any{"os_plat_id": 1.0, "session_key": "sk", "bill_no": "b1", "pay_item": "dice", "amt": 10.0}
		if !equal(cp.body, wantB) {
			t.Errorf("body = %v, want %v", cp.body, wantB)
		}
		if cp.ctype != "application/json" {
			t.Errorf("Content-Type = %q", cp.ctype)
		}
	})

	t.Run("a debit's own pay_item wins over the account's", func(t *testing.T) {
		cp, c := newCapture(t, `{"ret":0,"balance":9}`)
		if _, err := c.Debit(ctx, a, providers.Debit{BillNo: "b1", Amount: 10, PayItem: "rocket"}); err != nil {
			t.Fatal(err)
		}
		if cp.body["pay_item"] != "rocket" {
			t.Errorf("pay_item = %v", cp.body["pay_item"])
		}
	})

	t.Run("cancelpay sends the bill_no and no amount", func(t *testing.T) {
		cp, c := newCapture(t, `{"ret":0,"errmsg":"ok","bill_no":"b1"}`)
		if _, err := c.Cancel(ctx, a, providers.Cancel{BillNo: "b1", Amount: 10}); err != nil {
			t.Fatal(err)
		}
		if _, has := cp.body["amt"]; has || cp.body["bill_no"] != "b1" || cp.path != "/cancelpay" {
			t.Errorf("%s body = %v", cp.path, cp.body)
		}
	})

	t.Run("getbalance sends only os_plat_id and session_key", func(t *testing.T) {
		cp, c := newCapture(t, `{"ret":0,"balance":3}`)
		b := a
		b.MOGS.SessionKey = ""
		b.MOGS.AppPlat, b.MOGS.OSPlatID = 1, 1
		if _, err := c.Balance(ctx, b); err != nil {
			t.Fatal(err)
		}
		if !equal(cp.body, map[string]any{"os_plat_id": 1.0}) || cp.path != "/getbalance" {
			t.Errorf("%s body = %v", cp.path, cp.body)
		}
	})

	t.Run("present sends bill_no and amt", func(t *testing.T) {
		cp, c := newCapture(t, `{"ret":0,"balance":3,"bill_no":7}`)
		if _, err := c.Present(ctx, a, providers.Present{BillNo: "7", Amount: 2}); err != nil {
			t.Fatal(err)
		}
		if cp.body["bill_no"] != "7" || cp.body["amt"] != 2.0 || cp.path != "/present" {
			t.Errorf("%s body = %v", cp.path, cp.body)
		}
	})
}

func equal[V comparable](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestReplies(t *testing.T) {
	ctx := context.Background()
	a := account("r")

	t.Run("a bill_no echoed as a JSON number, as the seed types it, is accepted", func(t *testing.T) {
		_, c := newCapture(t, `{"ret":0,"errmsg":"ok","balance":5,"bill_no":123456789012345678901,"used_gen_amt":2}`)
		r, err := c.Debit(ctx, a, providers.Debit{BillNo: "123456789012345678901", Amount: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.BillNo != "123456789012345678901" || r.Balance != 5 || r.UsedGenAmt != 2 {
			t.Errorf("reply = %+v", r)
		}
	})

	t.Run("numbers sent as strings are read", func(t *testing.T) {
		_, c := newCapture(t, `{"ret":"0","balance":"42","gen_balance":"2","is_first":1,"save_amt":"40","save_sum":40,"cost_sum":"0","present_sums":"2"}`)
		b, err := c.Balance(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		want := providers.Balance{Balance: 42, GenBalance: 2, SaveAmt: 40, SaveSum: 40, PresentSums: 2, FirstSave: true}
		if b != want {
			t.Errorf("balance = %+v, want %+v", b, want)
		}
	})

	t.Run("a duplicate bill that repeats the balance makes it known", func(t *testing.T) {
		_, c := newCapture(t, `{"ret":90012,"errmsg":"bill_no exists","balance":77}`)
		r, err := c.Debit(ctx, a, providers.Debit{BillNo: "b", Amount: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.Class != providers.AlreadyDone || !r.BalanceKnown || r.Balance != 77 || r.BillNo != "b" {
			t.Errorf("reply = %+v", r)
		}
	})

	tests := []struct {
		name   string
		status int
		reply  string
		class  providers.Class
		code   providers.Code
	}{
		{"an unknown non-zero ret is final unknown", 200, `{"ret":12345,"errmsg":"what"}`, providers.Final, providers.CodeUnknown},
		{"90012 on cancelpay is not a success", 200, `{"ret":90012}`, providers.Final, providers.CodeUnknown},
		{"a reply that is not JSON is a retryable bad reply", 200, `<html>gateway</html>`, providers.Retryable, providers.CodeBadReply},
		{"a reply without ret is a retryable bad reply", 200, `{"errmsg":"ok"}`, providers.Retryable, providers.CodeBadReply},
		{"a ret that is not a number is a retryable bad reply", 200, `{"ret":"zero"}`, providers.Retryable, providers.CodeBadReply},
		{"a fractional amount is a retryable bad reply", 200, `{"ret":0,"balance":1.5}`, providers.Retryable, providers.CodeBadReply},
		{"a reply larger than 1 MiB is a retryable bad reply", 200, `{"ret":0,"errmsg":"` + strings.Repeat("x", 1<<20) + `"}`, providers.Retryable, providers.CodeBadReply},
		{"HTTP 502 is retryable unavailable", 502, ``, providers.Retryable, providers.CodeUnavailable},
		{"HTTP 404 is a final bad reply", 404, `not found`, providers.Final, providers.CodeBadReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp, c := newCapture(t, tt.reply)
			cp.status = tt.status
			_, err := c.Cancel(ctx, a, providers.Cancel{BillNo: "b", Amount: 1})
			wantErr(t, err, tt.class, tt.code)
		})
	}

	t.Run("a success of pay without a balance is a retryable bad reply", func(t *testing.T) {
		_, c := newCapture(t, `{"ret":0,"errmsg":"ok"}`)
		_, err := c.Debit(ctx, a, providers.Debit{BillNo: "b", Amount: 1})
		wantErr(t, err, providers.Retryable, providers.CodeBadReply)
	})

	t.Run("a provider message that echoes a secret is masked", func(t *testing.T) {
		_, c := newCapture(t, `{"ret":90010,"errmsg":"bad js_code js-secret-r"}`)
		_, err := c.Balance(ctx, a)
		pe := wantErr(t, err, providers.Final, providers.CodeLoginFailed)
		if strings.Contains(pe.Error(), "js-secret-r") {
			t.Errorf("error leaks js_code: %v", pe)
		}
	})
}

func TestCallsWithoutAnIdempotencyKeyNeverLeave(t *testing.T) {
	ctx := context.Background()
	cp, c := newCapture(t, `{"ret":0,"balance":1}`)
	a := account("k")
	tests := []struct {
		name string
		call func() error
	}{
		{"a pay without bill_no", func() error { _, err := c.Debit(ctx, a, providers.Debit{Amount: 1}); return err }},
		{"a pay of zero coins", func() error { _, err := c.Debit(ctx, a, providers.Debit{BillNo: "b"}); return err }},
		{"a present without bill_no", func() error { _, err := c.Present(ctx, a, providers.Present{Amount: 1}); return err }},
		{"a present of negative coins", func() error {
			_, err := c.Present(ctx, a, providers.Present{BillNo: "b", Amount: -1})
			return err
		}},
		{"a cancel without bill_no", func() error { _, err := c.Cancel(ctx, a, providers.Cancel{Amount: 1}); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused as a final param error", func(t *testing.T) {
			wantErr(t, tt.call(), providers.Final, providers.CodeParamError)
		})
	}
	if n := cp.hits.Load(); n != 0 {
		t.Errorf("%d requests reached the provider, want 0", n)
	}
}

func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	t.Run("a provider slower than the client timeout is a retryable timeout", func(t *testing.T) {
		c := mogs.New(mogs.Config{BaseURL: srv.URL, AppID: appID, Timeout: 50 * time.Millisecond})
		_, err := c.Debit(context.Background(), account("slow"), providers.Debit{BillNo: "b", Amount: 1})
		pe := wantErr(t, err, providers.Retryable, providers.CodeTimeout)
		if strings.Contains(pe.Error(), "js-secret") || strings.Contains(pe.Error(), "js_code") {
			t.Errorf("error leaks the query: %v", pe)
		}
	})

	t.Run("the caller's deadline bounds the call too", func(t *testing.T) {
		c := mogs.New(mogs.Config{BaseURL: srv.URL, AppID: appID, Timeout: time.Minute})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := c.Balance(ctx, account("slow"))
		wantErr(t, err, providers.Retryable, providers.CodeTimeout)
	})

	t.Run("a refused connection is retryable unavailable", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		url := dead.URL
		dead.Close()
		c := mogs.New(mogs.Config{BaseURL: url, AppID: appID})
		_, err := c.Balance(context.Background(), account("nobody"))
		wantErr(t, err, providers.Retryable, providers.CodeUnavailable)
	})
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		endpoint string
		ret      int
		class    providers.Class
		code     providers.Code
	}{
		{"0 is ok", "pay", 0, providers.OK, ""},
		{"90012 on pay is already done", "pay", 90012, providers.AlreadyDone, ""},
		{"90012 on present is already done", "present", 90012, providers.AlreadyDone, ""},
		{"90012 on getbalance is final unknown", "getbalance", 90012, providers.Final, providers.CodeUnknown},
		{"90015 on cancelpay is already done", "cancelpay", 90015, providers.AlreadyDone, ""},
		{"90015 on pay is final unknown", "pay", 90015, providers.Final, providers.CodeUnknown},
		{"90000 on cancelpay is final not found", "cancelpay", 90000, providers.Final, providers.CodeNotFound},
		{"90000 on pay is final unknown", "pay", 90000, providers.Final, providers.CodeUnknown},
		{"90016 on cancelpay is retryable busy, not final", "cancelpay", 90016, providers.Retryable, providers.CodeBusy},
		{"90016 on pay is final unknown", "pay", 90016, providers.Final, providers.CodeUnknown},
		{"-1 is retryable busy", "pay", -1, providers.Retryable, providers.CodeBusy},
		{"-1 on cancelpay is retryable busy", "cancelpay", -1, providers.Retryable, providers.CodeBusy},
		{"90010 is final login failed", "getbalance", 90010, providers.Final, providers.CodeLoginFailed},
		{"90013 is final insufficient balance", "pay", 90013, providers.Final, providers.CodeInsufficientBalance},
		{"90018 is a final param error", "present", 90018, providers.Final, providers.CodeParamError},
		{"an unknown code stays final unknown", "pay", 1, providers.Final, providers.CodeUnknown},
		{"an unknown code on cancelpay stays final unknown", "cancelpay", 90099, providers.Final, providers.CodeUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			class, code := mogs.Classify(tt.endpoint, tt.ret)
			if class != tt.class || code != tt.code {
				t.Errorf("Classify(%s, %d) = %v/%q, want %v/%q", tt.endpoint, tt.ret, class, code, tt.class, tt.code)
			}
		})
	}
}

// TestCodesTable holds the table to its own word: every row classifies as
// it states on each endpoint it applies to, and names a source.
func TestCodesTable(t *testing.T) {
	t.Parallel()
	if err := mogs.Codes.Check(); err != nil {
		t.Fatalf("the table is inconsistent: %v", err)
	}
	all := []string{mogs.EndpointGetBalance, mogs.EndpointPay, mogs.EndpointCancelPay, mogs.EndpointPresent}
	for _, row := range mogs.Codes {
		t.Run(fmt.Sprintf("ret %d names its source", row.Ret), func(t *testing.T) {
			t.Parallel()
			if !strings.HasPrefix(row.Source, "seed mogs-game-coin-api.md") && !strings.HasPrefix(row.Source, "assumption: ") &&
				!strings.HasPrefix(row.Source, "public production clients (providers.md, Learned since") {
				t.Errorf("source %q is neither the seed, a providers.md rule, nor an assumption", row.Source)
			}
		})
		eps := row.Endpoints
		if eps == nil {
			eps = all
		}
		for _, ep := range eps {
			if got, _ := mogs.Codes.Lookup(ep, row.Ret); row.Endpoints == nil && got.Endpoints != nil {
				continue // a row naming ep says what ret means there
			}
			t.Run(fmt.Sprintf("ret %d on %s is %v %s as its row states", row.Ret, ep, row.Class, row.Code), func(t *testing.T) {
				t.Parallel()
				class, code := mogs.Classify(ep, row.Ret)
				if class != row.Class || code != row.Code {
					t.Errorf("Classify(%s, %d) = %v/%q, want %v/%q", ep, row.Ret, class, code, row.Class, row.Code)
				}
			})
		}
	}
}
