package mogs_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/mogs"
	"github.com/coinsaga/coinsaga/providers/providertest"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

const appID = "10000" // the sandbox's default MOGS appid

// env is a client of this provider against a sandbox of its own over
// HTTP, as the wallet contract takes it, and the client's own type.
type env struct {
	providertest.Wallet
	base   string
	client *mogs.Client
}

// newEnv starts a sandbox on a loopback port and a client pointed at it.
func newEnv(t testing.TB) *env {
	t.Helper()
	sb, url := providertest.Serve(t)
	obs := &providertest.Recorder{}
	base := url + "/mogs"
	c := mogs.New(mogs.Config{BaseURL: base, AppID: appID, Observer: obs, Timeout: 2 * time.Second})
	return &env{Wallet: providertest.Wallet{Client: c, Sandbox: sb, Observed: obs}, base: base, client: c}
}

func account(openid string) providers.Account {
	return providers.Account{OpenID: openid, MOGS: providers.MOGSLogin{JSCode: "js-secret-" + openid, PayItem: "dice"}}
}

// wantErr checks err is a *providers.Error of the given class and code.
func wantErr(t *testing.T, err error, class providers.Class, code providers.Code) *providers.Error {
	t.Helper()
	return providertest.WantErr(t, err, "mogs", class, code)
}

// TestTheWalletContract runs the contract every wallet keeps (providertest)
// against the MOGS client and the sandbox over HTTP.
func TestTheWalletContract(t *testing.T) {
	providertest.RunWalletContract(t, providertest.WalletContract{
		Provider: "mogs", AppID: appID,
		Endpoints: providertest.WalletEndpoints{Balance: "getbalance", Pay: "pay", Cancel: "cancelpay", Present: "present"},
		Start:     func(t testing.TB) providertest.Wallet { return newEnv(t).Wallet },
		Account:   account, Secrets: []string{"js-secret-"},
		NotFoundRet: 90000,
		// A busy cancelpay may also be 90016, order being processed.
		BusyRets: []int{-1}, CancelBusyRets: []int{90016}, FaultTries: 1,
		Counters: true,
		Capture: func(t testing.TB, reply string) (providers.Wallet, func() int32) {
			cp, c := newCapture(t, reply)
			return c, cp.Hits
		},
		Dial: func(url string, timeout time.Duration) providers.Wallet {
			return mogs.New(mogs.Config{BaseURL: url, AppID: appID, Timeout: timeout})
		},
		QueryLeaks: []string{"js-secret", "js_code"},
	})
}

// TestAgainstTheSandbox is what MOGS alone does, beyond the contract.
func TestAgainstTheSandbox(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client

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

// capture is a MOGS stand-in that records the last request and answers
// with a fixed reply, for checks of the wire format and odd replies; it
// reads the request as MOGS's query and JSON body.
type capture struct{ *providertest.Stub }

func (c capture) path() string { return c.Request().URL.Path }

func (c capture) query() map[string]string {
	q := map[string]string{}
	for k, v := range c.Request().URL.Query() {
		q[k] = v[0]
	}
	return q
}

func (c capture) body() map[string]any {
	var body map[string]any
	_ = json.Unmarshal(c.Body(), &body)
	return body
}

func (c capture) ctype() string { return c.Request().Header.Get("Content-Type") }

func newCapture(t testing.TB, reply string) (capture, *mogs.Client) {
	t.Helper()
	cp := capture{providertest.NewStub(t, reply)}
	return cp, mogs.New(mogs.Config{BaseURL: cp.URL + "/", AppID: appID, Timeout: time.Second})
}

func TestWireFormat(t *testing.T) {
	ctx := context.Background()
	a := providers.Account{OpenID: "opvxI4y", MOGS: providers.MOGSLogin{JSCode: "js&=code", SessionKey: "sk", PayItem: "dice"}}

	t.Run("pay sends the seed's query and body with defaults for app_plat and os_plat_id", func(t *testing.T) {
		cp, c := newCapture(t, `{"ret":0,"errmsg":"ok","balance":9,"bill_no":"b1","used_gen_amt":0}`)
		if _, err := c.Debit(ctx, a, providers.Debit{BillNo: "b1", Amount: 10}); err != nil {
			t.Fatal(err)
		}
		if cp.path() != "/pay" {
			t.Errorf("path = %q", cp.path())
		}
		wantQ := map[string]string{"appid": appID, "app_plat": "1", "openid": "opvxI4y", "js_code": "js&=code"}
		if !equal(cp.query(), wantQ) {
			t.Errorf("query = %v, want %v", cp.query(), wantQ)
		}
		wantB := map[string]any{"os_plat_id": 1.0, "session_key": "sk", "bill_no": "b1", "pay_item": "dice", "amt": 10.0}
		if !equal(cp.body(), wantB) {
			t.Errorf("body = %v, want %v", cp.body(), wantB)
		}
		if cp.ctype() != "application/json" {
			t.Errorf("Content-Type = %q", cp.ctype())
		}
	})

	t.Run("a debit's own pay_item wins over the account's", func(t *testing.T) {
		cp, c := newCapture(t, `{"ret":0,"balance":9}`)
		if _, err := c.Debit(ctx, a, providers.Debit{BillNo: "b1", Amount: 10, PayItem: "rocket"}); err != nil {
			t.Fatal(err)
		}
		if cp.body()["pay_item"] != "rocket" {
			t.Errorf("pay_item = %v", cp.body()["pay_item"])
		}
	})

	t.Run("cancelpay sends the bill_no and no amount", func(t *testing.T) {
		cp, c := newCapture(t, `{"ret":0,"errmsg":"ok","bill_no":"b1"}`)
		if _, err := c.Cancel(ctx, a, providers.Cancel{BillNo: "b1", Amount: 10}); err != nil {
			t.Fatal(err)
		}
		if _, has := cp.body()["amt"]; has || cp.body()["bill_no"] != "b1" || cp.path() != "/cancelpay" {
			t.Errorf("%s body = %v", cp.path(), cp.body())
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
		if !equal(cp.body(), map[string]any{"os_plat_id": 1.0}) || cp.path() != "/getbalance" {
			t.Errorf("%s body = %v", cp.path(), cp.body())
		}
	})

	t.Run("present sends bill_no and amt", func(t *testing.T) {
		cp, c := newCapture(t, `{"ret":0,"balance":3,"bill_no":7}`)
		if _, err := c.Present(ctx, a, providers.Present{BillNo: "7", Amount: 2}); err != nil {
			t.Fatal(err)
		}
		if cp.body()["bill_no"] != "7" || cp.body()["amt"] != 2.0 || cp.path() != "/present" {
			t.Errorf("%s body = %v", cp.path(), cp.body())
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
			cp.Answer(tt.status, tt.reply)
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

func TestClassify(t *testing.T) {
	t.Parallel()
	providertest.Classifies(t, mogs.Classify, providertest.ClassifyCases{
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
	})
}

// TestCodesTable holds the table to its own word: every row classifies as
// it states on each endpoint it applies to, and names a source.
func TestCodesTable(t *testing.T) {
	t.Parallel()
	providertest.CodeTableHolds(t, mogs.Codes,
		[]string{mogs.EndpointGetBalance, mogs.EndpointPay, mogs.EndpointCancelPay, mogs.EndpointPresent}, mogs.Classify,
		"seed mogs-game-coin-api.md", "assumption: ", "public production clients (providers.md, Learned since")
}

func TestABusyCancelpayIsRetryableWhicheverCodeSaysSo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.Sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.cancelpay", BusyRate: 1})
	seen := map[int]bool{}
	for range 40 {
		_, err := e.client.Cancel(ctx, account("p"), providers.Cancel{BillNo: "busy-1", Amount: 1})
		pe := wantErr(t, err, providers.Retryable, providers.CodeBusy)
		seen[pe.Ret] = true
	}
	if !seen[-1] || !seen[90016] || len(seen) != 2 {
		t.Fatalf("saw rets %v in 40 busy cancels, want -1 and 90016", seen)
	}
}
