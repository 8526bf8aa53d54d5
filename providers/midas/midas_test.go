package midas_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/midas"
	"github.com/coinsaga/coinsaga/providers/providertest"
)

// The sandbox's default Midas credentials.
const (
	appID  = "1450000000"
	appKey = "sandbox-midas-appkey"
)

// env is a client of this provider against a sandbox of its own over
// HTTP, as the wallet contract takes it, and the client's own type.
type env struct {
	providertest.Wallet
	base   string
	client *midas.Client
}

func newEnv(t testing.TB) *env {
	t.Helper()
	sb, url := providertest.Serve(t)
	obs := &providertest.Recorder{}
	// The client signs with the sandbox's clock, so that tests may move it.
	c := midas.New(midas.Config{BaseURL: url, AppID: appID, AppKey: appKey, Observer: obs, Timeout: 2 * time.Second, Now: sb.Now})
	return &env{Wallet: providertest.Wallet{Client: c, Sandbox: sb, Observed: obs}, base: url, client: c}
}

func account(openid string) providers.Account {
	return providers.Account{OpenID: openid, Midas: providers.MidasLogin{
		OpenKey: "openkey-secret-" + openid, PF: "myapp_m_qq-00000000-android-00000000-ysdk", PFKey: "pfkey-secret",
		SessionType: "kp_actoken", UserIP: "10.0.0.1", AccountType: "common", PayItem: "dice*1",
	}}
}

func wantErr(t *testing.T, err error, class providers.Class, code providers.Code) *providers.Error {
	t.Helper()
	return providertest.WantErr(t, err, "midas", class, code, midasSecrets...)
}

// midasSecrets may never show in an error.
var midasSecrets = []string{"openkey-secret", "pfkey-secret", appKey}

// TestTheWalletContract runs the contract every wallet keeps (providertest)
// against the Midas client and the sandbox over HTTP.
func TestTheWalletContract(t *testing.T) {
	providertest.RunWalletContract(t, providertest.WalletContract{
		Provider: "midas", AppID: appID,
		Endpoints: providertest.WalletEndpoints{Balance: "get_balance_m", Pay: "pay_m", Cancel: "cancel_pay_m", Present: "present_m"},
		Start:     func(t testing.TB) providertest.Wallet { return newEnv(t).Wallet },
		Account:   account, Secrets: midasSecrets,
		NotFoundRet: 1003,
		// The sandbox answers busy with 1002 or 3000111 at random; both
		// must be busy, so each fault is tried often enough to see both.
		BusyRets: []int{1002, 3000111}, FaultTries: 4,
		Capture: func(t testing.TB, reply string) (providers.Wallet, func() int32) {
			cp, c := newCapture(t, reply)
			return c, cp.Hits
		},
		Dial: func(url string, timeout time.Duration) providers.Wallet {
			return midas.New(midas.Config{BaseURL: url, AppID: appID, AppKey: appKey, Timeout: timeout})
		},
		CancelNeedsAmount: true,
		QueryLeaks:        []string{"sig=", "openkey"},
	})
}

// TestAgainstTheSandbox is what Midas alone does, beyond the contract.
func TestAgainstTheSandbox(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client

	t.Run("every session type is accepted with its session_id", func(t *testing.T) {
		for _, st := range []string{"kp_actoken", "wc_actoken", "st_dummy", "openkey"} {
			a := account("session-" + st)
			a.Midas.SessionType = st
			if _, err := c.Balance(ctx, a); err != nil {
				t.Errorf("%s: %v", st, err)
			}
		}
	})

	// The sandbox's refusals, each from the openkey it answers so (or a
	// client with the wrong key); ret 0 leaves the ret unchecked.
	wrongKey := midas.New(midas.Config{BaseURL: e.base, AppID: appID, AppKey: "not-the-key"})
	for _, tt := range []struct {
		name            string
		client          *midas.Client
		openid, openKey string
		op              providertest.Op
		code            providers.Code
		ret             int
	}{
		{"a failed login is final login failed", c, "late", "expired", providertest.OpPay, providers.CodeLoginFailed, 1018},
		{"a risk-control refusal is final risk control", c, "risky", "risk", providertest.OpPay, providers.CodeRiskControl, 0},
		{"a wrong app key fails the sig check as a final param error", wrongKey, "x", "", providertest.OpBalance, providers.CodeParamError, 1001},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := account(tt.openid)
			if tt.openKey != "" {
				a.Midas.OpenKey = tt.openKey
			}
			_, err := tt.op.Do(ctx, tt.client, a, "b")
			pe := wantErr(t, err, providers.Final, tt.code)
			if tt.ret != 0 && pe.Ret != tt.ret {
				t.Errorf("Ret = %d, want %d", pe.Ret, tt.ret)
			}
		})
	}

	t.Run("values that need escaping are signed and sent intact", func(t *testing.T) {
		a := account("escapes")
		a.Midas.OpenKey = "a+b/c=d~e f*g&h"
		a.Midas.ZoneID = "1_role 7"
		a.Midas.PF = "qq_m_qq-2001-android~x*y"
		// A billno may hold none of these (the client refuses it); payitem can.
		if _, err := c.Debit(ctx, a, providers.Debit{BillNo: "bill-escapes_1", Amount: 1, PayItem: "item*2 ~x+/&=%"}); err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, b := range e.Sandbox.Bills() {
			found = found || (b.OpenID == "escapes" && b.BillNo == "bill-escapes_1")
		}
		if !found {
			t.Error("the sandbox has no bill from the escaped request")
		}
	})

	t.Run("an unknown session type is refused before any request", func(t *testing.T) {
		a := account("nosession")
		a.Midas.SessionType = "qq"
		_, err := c.Balance(ctx, a)
		wantErr(t, err, providers.Final, providers.CodeParamError)
		if _, touched := e.Sandbox.Account("midas", appID, "nosession"); touched {
			t.Error("the request reached the provider")
		}
	})
}

// newCapture is a Midas stand-in that records the last request and
// answers with a fixed reply, as Midas does, labelled as HTML.
func newCapture(t testing.TB, reply string) (*providertest.Stub, *midas.Client) {
	t.Helper()
	cp := providertest.NewStub(t, reply)
	cp.ContentType("text/html; charset=utf-8")
	at := time.Unix(1700000000, 0)
	return cp, midas.New(midas.Config{BaseURL: cp.URL + "/", AppID: appID, AppKey: appKey, Timeout: time.Second, Now: func() time.Time { return at }})
}

func TestWireFormat(t *testing.T) {
	ctx := context.Background()
	a := account("o1")

	tests := []struct {
		name  string
		call  func(c *midas.Client) error
		path  string
		extra map[string]string
	}{
		{"get_balance_m sends only the common parameters", func(c *midas.Client) error {
			_, err := c.Balance(ctx, a)
			return err
		}, "/mpay/get_balance_m", nil},
		{"pay_m adds amt, billno and payitem", func(c *midas.Client) error {
			_, err := c.Debit(ctx, a, providers.Debit{BillNo: "b1", Amount: 10})
			return err
		}, "/mpay/pay_m", map[string]string{"amt": "10", "billno": "b1", "payitem": "dice*1"}},
		{"cancel_pay_m adds amt and billno", func(c *midas.Client) error {
			_, err := c.Cancel(ctx, a, providers.Cancel{BillNo: "b1", Amount: 10})
			return err
		}, "/mpay/cancel_pay_m", map[string]string{"amt": "10", "billno": "b1"}},
		{"present_m adds billno and presenttimes", func(c *midas.Client) error {
			_, err := c.Present(ctx, a, providers.Present{BillNo: "g1", Amount: 3})
			return err
		}, "/mpay/present_m", map[string]string{"billno": "g1", "presenttimes": "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp, c := newCapture(t, `{"ret":0,"balance":1}`)
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			r := cp.Request()
			if r.Method != http.MethodGet || r.URL.Path != tt.path {
				t.Fatalf("%s %s", r.Method, r.URL.Path)
			}
			q := r.URL.Query()
			want := map[string]string{
				"openid": "o1", "openkey": "openkey-secret-o1", "appid": appID, "ts": "1700000000",
				"pf": a.Midas.PF, "pfkey": "pfkey-secret", "zoneid": "1", "userip": "10.0.0.1",
				"accounttype": "common", "format": "json",
			}
			for k, v := range tt.extra {
				want[k] = v
			}
			for k, v := range want {
				if q.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, q.Get(k), v)
				}
			}
			if len(q) != len(want)+1 {
				t.Errorf("query has %d parameters, want %d plus sig: %v", len(q), len(want), keys(q))
			}
			if got, wantSig := q.Get("sig"), midas.Sign("GET", "/v3/r"+tt.path, q, appKey); got != wantSig {
				t.Errorf("sig = %q, want %q", got, wantSig)
			}
			for name, want := range map[string]string{"session_id": "openid", "session_type": "kp_actoken", "org_loc": tt.path} {
				ck, err := r.Cookie(name)
				if err != nil {
					t.Errorf("cookie %s: %v", name, err)
					continue
				}
				if v, _ := url.QueryUnescape(ck.Value); v != want {
					t.Errorf("cookie %s = %q, want %q", name, v, want)
				}
			}
		})
	}

	t.Run("optional parameters are left out when unset and zoneid is kept when set", func(t *testing.T) {
		cp, c := newCapture(t, `{"ret":0,"balance":1}`)
		b := a
		b.Midas.UserIP, b.Midas.AccountType, b.Midas.PayItem, b.Midas.ZoneID = "", "", "", "2_r1"
		if _, err := c.Debit(ctx, b, providers.Debit{BillNo: "b1", Amount: 10}); err != nil {
			t.Fatal(err)
		}
		q := cp.Request().URL.Query()
		for _, k := range []string{"userip", "accounttype", "payitem"} {
			if _, has := q[k]; has {
				t.Errorf("%s sent although unset", k)
			}
		}
		if q.Get("zoneid") != "2_r1" {
			t.Errorf("zoneid = %q", q.Get("zoneid"))
		}
	})

	t.Run("WeChat and guest sessions use hy_gameid", func(t *testing.T) {
		for _, st := range []string{"wc_actoken", "st_dummy"} {
			cp, c := newCapture(t, `{"ret":0,"balance":1}`)
			b := a
			b.Midas.SessionType = st
			if _, err := c.Balance(ctx, b); err != nil {
				t.Fatal(err)
			}
			if ck, _ := cp.Request().Cookie("session_id"); ck == nil || ck.Value != "hy_gameid" {
				t.Errorf("%s: session_id = %v", st, ck)
			}
		}
	})
}

func keys(q url.Values) []string {
	var out []string
	for k := range q {
		out = append(out, k)
	}
	return out
}

func TestReplies(t *testing.T) {
	ctx := context.Background()
	a := account("r")

	t.Run("a jsonp reply is unwrapped", func(t *testing.T) {
		_, c := newCapture(t, `sample_pay({"ret":0,"balance":3989,"gen_balance":256,"first_save":1,"save_amt":4000,"tss_list":[]});`)
		b, err := c.Balance(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if b != (providers.Balance{Balance: 3989, GenBalance: 256, SaveAmt: 4000, FirstSave: true}) {
			t.Errorf("balance = %+v", b)
		}
	})

	t.Run("the seed's balance reply with tss_list is read", func(t *testing.T) {
		_, c := newCapture(t, `{"ret":0,"balance":3989,"gen_balance":256,"first_save":0,"save_amt":4000,"gen_expire":0,
			"tss_list":[{"innerproductid":"1450000594-1001","begintime":"2014-08-21 18:15:24","paysubchan":1}]}`)
		b, err := c.Balance(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if b.Balance != 3989 || b.SaveAmt != 4000 || b.FirstSave {
			t.Errorf("balance = %+v", b)
		}
	})

	t.Run("ret and amounts sent as strings are read", func(t *testing.T) {
		_, c := newCapture(t, `{"ret":"0","billno":"b","balance":"12","used_gen_amt":"3"}`)
		r, err := c.Debit(ctx, a, providers.Debit{BillNo: "b", Amount: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r != (providers.DebitReply{Class: providers.OK, BillNo: "b", Balance: 12, BalanceKnown: true, UsedGenAmt: 3}) {
			t.Errorf("reply = %+v", r)
		}
	})

	tests := []struct {
		name   string
		op     providertest.Op
		status int
		reply  string
		class  providers.Class
		code   providers.Code
	}{
		{"1002215 on cancel_pay_m is already done", providertest.OpCancel, 200, `{"ret":1002215,"msg":"duplicate billno"}`, providers.AlreadyDone, ""},
		{"1002215 on present_m is already done", providertest.OpPresent, 200, `{"ret":1002215}`, providers.AlreadyDone, ""},
		{"1002215 as a string on pay_m is already done", providertest.OpPay, 200, `{"ret":"1002215"}`, providers.AlreadyDone, ""},
		{"1001 is a final param error", providertest.OpPay, 200, `{"ret":1001,"msg":"param"}`, providers.Final, providers.CodeParamError},
		{"1004 is final insufficient balance", providertest.OpPay, 200, `{"ret":1004}`, providers.Final, providers.CodeInsufficientBalance},
		{"1018 is final login failed", providertest.OpBalance, 200, `{"ret":1018,"msg":"请先登录"}`, providers.Final, providers.CodeLoginFailed},
		{"1147 is final risk control", providertest.OpPay, 200, `{"ret":1147}`, providers.Final, providers.CodeRiskControl},
		{"1002 is retryable busy", providertest.OpPay, 200, `{"ret":1002}`, providers.Retryable, providers.CodeBusy},
		{"3000111 is retryable busy", providertest.OpPay, 200, `{"ret":3000111}`, providers.Retryable, providers.CodeBusy},
		{"1003 on pay_m is final unknown", providertest.OpPay, 200, `{"ret":1003}`, providers.Final, providers.CodeUnknown},
		{"1003 on cancel_pay_m is final not found", providertest.OpCancel, 200, `{"ret":1003}`, providers.Final, providers.CodeNotFound},
		{"an unknown ret is final unknown", providertest.OpBalance, 200, `{"ret":-7}`, providers.Final, providers.CodeUnknown},
		{"a jsonp reply that does not close is a retryable bad reply", providertest.OpPay, 200, `cb({"ret":0`, providers.Retryable, providers.CodeBadReply},
		{"an HTML page is a retryable bad reply", providertest.OpPay, 200, `<html>proxy error</html>`, providers.Retryable, providers.CodeBadReply},
		{"a reply without ret is a retryable bad reply", providertest.OpPay, 200, `{"balance":1}`, providers.Retryable, providers.CodeBadReply},
		{"a success of get_balance_m without balance is a retryable bad reply", providertest.OpBalance, 200, `{"ret":0}`, providers.Retryable, providers.CodeBadReply},
		{"HTTP 503 is retryable unavailable", providertest.OpPay, 503, ``, providers.Retryable, providers.CodeUnavailable},
		{"HTTP 403 is a final bad reply", providertest.OpPay, 403, `forbidden`, providers.Final, providers.CodeBadReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp, c := newCapture(t, tt.reply)
			cp.Answer(tt.status, tt.reply)
			class, err := tt.op.Do(ctx, c, a, "b")
			if tt.class == providers.AlreadyDone {
				if err != nil || class != providers.AlreadyDone {
					t.Fatalf("class %v, err %v; want already done", class, err)
				}
				return
			}
			wantErr(t, err, tt.class, tt.code)
		})
	}

	t.Run("a provider message that echoes a secret is masked", func(t *testing.T) {
		_, c := newCapture(t, `{"ret":1018,"msg":"bad openkey openkey-secret-r"}`)
		_, err := c.Balance(ctx, a)
		wantErr(t, err, providers.Final, providers.CodeLoginFailed)
	})
}

func TestClassify(t *testing.T) {
	t.Parallel()
	providertest.Classifies(t, midas.Classify, providertest.ClassifyCases{
		{"0 is ok", "pay_m", 0, providers.OK, ""},
		{"1002215 on pay_m is already done: already charged with this billno", "pay_m", 1002215, providers.AlreadyDone, ""},
		{"1002215 on present_m is already done", "present_m", 1002215, providers.AlreadyDone, ""},
		{"1002215 on cancel_pay_m is already done: already cancelled", "cancel_pay_m", 1002215, providers.AlreadyDone, ""},
		{"1002215 on get_balance_m is final unknown", "get_balance_m", 1002215, providers.Final, providers.CodeUnknown},
		{"1002 is retryable busy", "pay_m", 1002, providers.Retryable, providers.CodeBusy},
		{"3000111 is retryable with the same billno", "pay_m", 3000111, providers.Retryable, providers.CodeBusy},
		{"3000111 on cancel_pay_m is retryable too", "cancel_pay_m", 3000111, providers.Retryable, providers.CodeBusy},
		{"1001 is a final param error", "pay_m", 1001, providers.Final, providers.CodeParamError},
		{"1004 is final insufficient balance", "pay_m", 1004, providers.Final, providers.CodeInsufficientBalance},
		{"1018 is final login failed", "get_balance_m", 1018, providers.Final, providers.CodeLoginFailed},
		{"1144 is final unknown", "pay_m", 1144, providers.Final, providers.CodeUnknown},
		{"1145 is final risk control", "pay_m", 1145, providers.Final, providers.CodeRiskControl},
		{"1149 is final risk control", "pay_m", 1149, providers.Final, providers.CodeRiskControl},
		{"1150 is final unknown", "pay_m", 1150, providers.Final, providers.CodeUnknown},
		{"1003 on cancel_pay_m is final not found", "cancel_pay_m", 1003, providers.Final, providers.CodeNotFound},
		{"1003 on pay_m is final unknown", "pay_m", 1003, providers.Final, providers.CodeUnknown},
		{"an unknown ret stays final unknown", "pay_m", -7, providers.Final, providers.CodeUnknown},
	})
}

// TestCodesTable holds the table to its own word: every row classifies as
// it states on each endpoint it applies to, and names a source.
func TestCodesTable(t *testing.T) {
	t.Parallel()
	providertest.CodeTableHolds(t, midas.Codes,
		[]string{midas.EndpointGetBalance, midas.EndpointPay, midas.EndpointCancelPay, midas.EndpointPresent}, midas.Classify,
		"seed ysdk-midas-get-balance.md", "assumption: ", "public mpay documentation (providers.md",
		"public production clients (providers.md, Learned since")
}
