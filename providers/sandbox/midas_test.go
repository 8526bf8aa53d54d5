package sandbox_test

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers/providertest"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

func TestMidasSignatureVector(t *testing.T) {
	// Public OpenAPI V3.0 vector: the path is signed as is, no /v3/r prefix.
	params := map[string]string{
		"openid": "11111111111111111", "openkey": "2222222222222222", "appid": "123456",
		"pf": "qzone", "format": "json", "userip": "112.90.139.30",
	}
	got := sandboxSig("228bf094169a40a3bd188ba37ebe8723", "/v3/user/get_info", params)
	if want := "FdJkiDYwMj5Aj1UG2RUPc83iokk="; got != want {
		t.Fatalf("sandbox sig = %s, want %s", got, want)
	}
	if got := providertest.MidasSig("228bf094169a40a3bd188ba37ebe8723", "/v3/user/get_info", params); got != "FdJkiDYwMj5Aj1UG2RUPc83iokk=" {
		t.Fatalf("the test's own signer gives %s", got)
	}
}

func TestMidasSignatureCheck(t *testing.T) {
	// Values that differ between strict RFC 3986 and form encoding.
	odd := func() map[string]string {
		return map[string]string{"pf": "a b~c*d=e", "userip": "1.2.3.4", "payitem": "x+y/z&w b~1*", "billno": "b_1-x", "amt": "10"}
	}

	t.Run("a request signed by an independent implementation is accepted", func(t *testing.T) {
		e := newEnv(t)
		r := e.midas("/mpay/pay_m", "o1", odd())
		if r.Ret != 0 || r.BillNo != "b_1-x" || r.Balance != 1000000-10 {
			t.Fatalf("pay_m = %+v", r)
		}
	})

	t.Run("a sig with one character changed is refused and changes nothing", func(t *testing.T) {
		e := newEnv(t)
		r := e.midasReq(midasReq{path: "/mpay/pay_m", params: e.midasParams("o1", odd()), sig: func(s string) string {
			c := byte('A')
			if s[0] == 'A' {
				c = 'B'
			}
			return string(c) + s[1:]
		}})
		if r.Ret == 0 || r.Ret != 1001 || r.Msg != "sig check failed" {
			t.Fatalf("reply = %+v, want 1001 sig check failed", r)
		}
		if len(e.sb.Bills()) != 0 {
			t.Fatal("a refused pay recorded a bill")
		}
	})

	t.Run("a sig made with another appkey is refused", func(t *testing.T) {
		e := newEnv(t)
		p := e.midasParams("o1", nil)
		p["sig"] = providertest.MidasSig("wrong-key", "/v3/r/mpay/get_balance_m", p)
		if r := e.midasReq(midasReq{path: "/mpay/get_balance_m", params: p}); r.Ret != 1001 || r.Msg != "sig check failed" {
			t.Fatalf("reply = %+v", r)
		}
	})

	t.Run("a sig over the path without /v3/r is refused", func(t *testing.T) {
		e := newEnv(t)
		p := e.midasParams("o1", nil)
		p["sig"] = providertest.MidasSig(e.cfg.MidasAppKey, "/mpay/get_balance_m", p)
		if r := e.midasReq(midasReq{path: "/mpay/get_balance_m", params: p}); r.Ret != 1001 {
			t.Fatalf("reply = %+v", r)
		}
	})
}

func TestMidasBalances(t *testing.T) {
	t.Run("get_balance_m shows a new account with every documented field", func(t *testing.T) {
		e := newEnv(t)
		resp := e.midasDo(midasReq{path: "/mpay/get_balance_m", params: e.midasParams("o1", nil)})
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Fatalf("Content-Type = %q", ct)
		}
		want := `{"ret":0,"balance":1000000,"gen_balance":0,"first_save":0,"save_amt":1000000,"gen_expire":0,"tss_list":[]}`
		if string(raw) != want {
			t.Fatalf("body = %s\nwant   %s", raw, want)
		}
	})

	t.Run("an account with no purchase is a first save", func(t *testing.T) {
		e := newEnv(t)
		e.sb.SetAccount("midas", "1450000000", "o1", 10, 10)
		if r := e.midas("/mpay/get_balance_m", "o1", nil); r.FirstSave != 1 || r.Balance != 10 || r.GenBalance != 10 {
			t.Fatalf("reply = %+v", r)
		}
	})

	t.Run("format jsonp wraps the reply in the function", func(t *testing.T) {
		e := newEnv(t)
		resp := e.midasDo(midasReq{path: "/mpay/get_balance_m", params: e.midasParams("o1", map[string]string{"format": "jsonp_sample_pay"})})
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(raw), `sample_pay({"ret":0,`) || !strings.HasSuffix(string(raw), "})") {
			t.Fatalf("body = %s", raw)
		}
	})

	t.Run("pay_m spends gifted coins first and cancel_pay_m gives both back", func(t *testing.T) {
		e := newEnv(t)
		e.sb.SetAccount("midas", "1450000000", "o1", 100, 30)
		r := e.midas("/mpay/pay_m", "o1", map[string]string{"amt": "50", "billno": "b1", "payitem": "dice*1*50"})
		if r.Ret != 0 || r.BillNo != "b1" || r.Balance != 50 || r.UsedGenAmt != 30 || r.Msg != "" {
			t.Fatalf("pay_m = %+v", r)
		}
		if g := e.midas("/mpay/get_balance_m", "o1", nil); g.Balance != 50 || g.GenBalance != 0 {
			t.Fatalf("get_balance_m = %+v", g)
		}
		if c := e.midas("/mpay/cancel_pay_m", "o1", map[string]string{"amt": "50", "billno": "b1"}); c.Ret != 0 || c.BillNo != "b1" {
			t.Fatalf("cancel_pay_m = %+v", c)
		}
		if g := e.midas("/mpay/get_balance_m", "o1", nil); g.Balance != 100 || g.GenBalance != 30 {
			t.Fatalf("get_balance_m after cancel = %+v", g)
		}
	})

	t.Run("a repeated pay_m is a duplicate billno and never debits twice", func(t *testing.T) {
		e := newEnv(t)
		e.midas("/mpay/pay_m", "o1", map[string]string{"amt": "10", "billno": "b1"})
		r := e.midas("/mpay/pay_m", "o1", map[string]string{"amt": "10", "billno": "b1"})
		if r.Ret != 1002215 || r.Msg != "duplicate billno" {
			t.Fatalf("repeat = %+v", r)
		}
		if v := e.account("midas", "1450000000", "o1"); v.Balance != 1000000-10 {
			t.Fatalf("balance = %d", v.Balance)
		}
	})

	t.Run("a second cancel_pay_m is a duplicate billno and returns nothing twice", func(t *testing.T) {
		e := newEnv(t)
		e.midas("/mpay/pay_m", "o1", map[string]string{"amt": "10", "billno": "b1"})
		e.midas("/mpay/cancel_pay_m", "o1", map[string]string{"amt": "10", "billno": "b1"})
		if c := e.midas("/mpay/cancel_pay_m", "o1", map[string]string{"amt": "10", "billno": "b1"}); c.Ret != 1002215 {
			t.Fatalf("second cancel = %+v", c)
		}
		if p := e.midas("/mpay/pay_m", "o1", map[string]string{"amt": "10", "billno": "b1"}); p.Ret != 1002215 {
			t.Fatalf("pay after cancel = %+v", p)
		}
		if v := e.account("midas", "1450000000", "o1"); v.Balance != 1000000 {
			t.Fatalf("balance = %d", v.Balance)
		}
	})

	t.Run("cancel_pay_m of an unknown or another player's billno is not found", func(t *testing.T) {
		e := newEnv(t)
		e.midas("/mpay/pay_m", "o1", map[string]string{"amt": "10", "billno": "b1"})
		if c := e.midas("/mpay/cancel_pay_m", "o1", map[string]string{"amt": "10", "billno": "nope"}); c.Ret != 1003 || c.Msg != "billno not found" {
			t.Fatalf("unknown = %+v", c)
		}
		if c := e.midas("/mpay/cancel_pay_m", "o2", map[string]string{"amt": "10", "billno": "b1"}); c.Ret != 1003 {
			t.Fatalf("other player's = %+v", c)
		}
	})

	t.Run("cancel_pay_m with another amount is a parameter error", func(t *testing.T) {
		e := newEnv(t)
		e.midas("/mpay/pay_m", "o1", map[string]string{"amt": "10", "billno": "b1"})
		if c := e.midas("/mpay/cancel_pay_m", "o1", map[string]string{"amt": "9", "billno": "b1"}); c.Ret != 1001 {
			t.Fatalf("reply = %+v", c)
		}
		if v := e.account("midas", "1450000000", "o1"); v.Balance != 1000000-10 {
			t.Fatalf("balance = %d", v.Balance)
		}
	})

	t.Run("insufficient balance records nothing and the billno succeeds later", func(t *testing.T) {
		e := newEnv(t)
		e.sb.SetAccount("midas", "1450000000", "o1", 5, 0)
		if r := e.midas("/mpay/pay_m", "o1", map[string]string{"amt": "10", "billno": "b1"}); r.Ret != 1004 {
			t.Fatalf("reply = %+v", r)
		}
		e.sb.SetAccount("midas", "1450000000", "o1", 50, 0)
		if r := e.midas("/mpay/pay_m", "o1", map[string]string{"amt": "10", "billno": "b1"}); r.Ret != 0 || r.Balance != 40 {
			t.Fatalf("retry = %+v", r)
		}
	})

	t.Run("present_m adds gifted coins once", func(t *testing.T) {
		e := newEnv(t)
		r := e.midas("/mpay/present_m", "o1", map[string]string{"billno": "g1", "presenttimes": "7"})
		if r.Ret != 0 || r.BillNo != "g1" || r.Balance != 1000007 {
			t.Fatalf("present_m = %+v", r)
		}
		if d := e.midas("/mpay/present_m", "o1", map[string]string{"billno": "g1", "presenttimes": "7"}); d.Ret != 1002215 {
			t.Fatalf("repeat = %+v", d)
		}
		v := e.account("midas", "1450000000", "o1")
		if v.Balance != 1000007 || v.GenBalance != 7 || v.PresentSums != 7 {
			t.Fatalf("account = %+v", v)
		}
		if b := e.sb.Bills(); len(b) != 1 || b[0].Kind != "present" || b[0].Provider != "midas" {
			t.Fatalf("bills = %+v", b)
		}
	})
}

func TestMidasRefusals(t *testing.T) {
	validCookie := func(path string) map[string]string {
		return map[string]string{"session_id": "hy_gameid", "session_type": "wc_actoken", "org_loc": path}
	}
	cases := []struct {
		name    string
		path    string
		params  map[string]string
		cookies func(path string) map[string]string
		ret     int
	}{
		{"a missing openkey is a parameter error", "/mpay/pay_m", map[string]string{"openkey": "", "amt": "1", "billno": "b"}, nil, 1001},
		{"a missing ts is a parameter error", "/mpay/get_balance_m", map[string]string{"ts": ""}, nil, 1001},
		{"a ts that is not a number is a parameter error", "/mpay/get_balance_m", map[string]string{"ts": "yesterday"}, nil, 1001},
		{"a missing pfkey is a parameter error", "/mpay/get_balance_m", map[string]string{"pfkey": ""}, nil, 1001},
		{"a missing zoneid is a parameter error", "/mpay/get_balance_m", map[string]string{"zoneid": ""}, nil, 1001},
		{"a missing billno is a parameter error", "/mpay/pay_m", map[string]string{"amt": "1"}, nil, 1001},
		{"a missing amt is a parameter error", "/mpay/pay_m", map[string]string{"billno": "b"}, nil, 1001},
		{"amt 0 is a parameter error", "/mpay/pay_m", map[string]string{"amt": "0", "billno": "b"}, nil, 1001},
		{"a negative amt is a parameter error", "/mpay/pay_m", map[string]string{"amt": "-3", "billno": "b"}, nil, 1001},
		{"presenttimes 0 is a parameter error", "/mpay/present_m", map[string]string{"presenttimes": "0", "billno": "b"}, nil, 1001},
		{"a cancel without amt is a parameter error", "/mpay/cancel_pay_m", map[string]string{"billno": "b"}, nil, 1001},
		{"a wrong appid is a parameter error", "/mpay/get_balance_m", map[string]string{"appid": "1450000001"}, nil, 1001},
		{"an unknown accounttype is a parameter error", "/mpay/get_balance_m", map[string]string{"accounttype": "gold"}, nil, 1001},
		{"an unknown format is a parameter error", "/mpay/get_balance_m", map[string]string{"format": "xml"}, nil, 1001},
		{"no cookie is a parameter error", "/mpay/get_balance_m", nil, func(string) map[string]string { return map[string]string{} }, 1001},
		{"a cookie without session_type is a parameter error", "/mpay/get_balance_m", nil, func(p string) map[string]string {
			return map[string]string{"session_id": "openid", "org_loc": p}
		}, 1001},
		{"a cookie with an unknown session_type is a parameter error", "/mpay/get_balance_m", nil, func(p string) map[string]string {
			return map[string]string{"session_id": "openid", "session_type": "cookie_monster", "org_loc": p}
		}, 1001},
		{"a cookie whose org_loc is another path is a parameter error", "/mpay/pay_m", map[string]string{"amt": "1", "billno": "b"}, func(string) map[string]string {
			return map[string]string{"session_id": "openid", "session_type": "kp_actoken", "org_loc": "/mpay/get_balance_m"}
		}, 1001},
		{"an expired openkey is a login failure", "/mpay/pay_m", map[string]string{"openkey": "expired", "amt": "1", "billno": "b"}, nil, 1018},
		{"openkey risk is refused by risk control", "/mpay/pay_m", map[string]string{"openkey": "risk", "amt": "1", "billno": "b"}, nil, 1145},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			req := midasReq{path: tc.path, params: e.midasParams("o1", tc.params)}
			if tc.cookies != nil {
				req.cookies = tc.cookies(tc.path)
			}
			r := e.midasReq(req)
			if r.Ret != tc.ret || r.Msg == "" {
				t.Fatalf("reply = %+v, want ret %d with a msg", r, tc.ret)
			}
			if len(e.sb.Bills()) != 0 {
				t.Fatal("a refused call recorded a bill")
			}
		})
	}

	t.Run("WeChat session cookies are accepted", func(t *testing.T) {
		e := newEnv(t)
		r := e.midasReq(midasReq{path: "/mpay/get_balance_m", params: e.midasParams("o1", nil), cookies: validCookie("/mpay/get_balance_m")})
		if r.Ret != 0 {
			t.Fatalf("reply = %+v", r)
		}
	})

	t.Run("a parameter given twice is a parameter error", func(t *testing.T) {
		e := newEnv(t)
		p := e.midasParams("o1", nil)
		p["sig"] = providertest.MidasSig(e.cfg.MidasAppKey, "/v3/r/mpay/get_balance_m", p)
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/mpay/get_balance_m?zoneid=2&"+encodeParams(p), nil)
		req.Header.Set("Cookie", "session_id=openid; session_type=kp_actoken; org_loc=%2Fmpay%2Fget_balance_m")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var r midasResp
		decodeReply(t, resp, &r)
		if r.Ret != 1001 {
			t.Fatalf("reply = %+v", r)
		}
	})

	t.Run("a POST is refused with 405", func(t *testing.T) {
		e := newEnv(t)
		resp, err := http.Post(e.srv.URL+"/mpay/pay_m", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})
}

func encodeParams(p map[string]string) string {
	var parts []string
	for k, v := range p {
		parts = append(parts, providertest.RFC3986(k)+"="+providertest.RFC3986(v))
	}
	return strings.Join(parts, "&")
}

func sandboxSig(appKey, path string, p map[string]string) string {
	v := url.Values{}
	for k, s := range p {
		v.Set(k, s)
	}
	return sandbox.MidasSig(appKey, http.MethodGet, path, v)
}

func TestMidasTimestamp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		skew time.Duration
		ret  int
	}{
		{"a ts equal to the sandbox clock is accepted", 0, 0},
		{"a ts 5 minutes behind the sandbox clock is accepted", -5 * time.Minute, 0},
		{"a ts 5 minutes ahead of the sandbox clock is accepted", 5 * time.Minute, 0},
		{"a ts 5 minutes and 1 second behind is refused as a parameter error", -5*time.Minute - time.Second, 1001},
		{"a ts 5 minutes and 1 second ahead is refused as a parameter error", 5*time.Minute + time.Second, 1001},
		{"a ts in milliseconds is refused as a parameter error", -1, 1001},
	}
	for _, tc := range cases {
		for _, path := range []string{"/mpay/get_balance_m", "/mpay/pay_m"} {
			t.Run(path+": "+tc.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				ts := e.sb.Now().Add(tc.skew).Unix()
				if tc.skew == -1 {
					ts = e.sb.Now().UnixMilli()
				}
				r := e.midas(path, "o1", map[string]string{"ts": strconv.FormatInt(ts, 10), "amt": "1", "billno": "b1"})
				if r.Ret != tc.ret || (tc.ret != 0 && !strings.Contains(r.Msg, "ts")) {
					t.Fatalf("reply = %+v, want ret %d", r, tc.ret)
				}
				if tc.ret != 0 && len(e.sb.Bills()) != 0 {
					t.Fatal("a refused pay recorded a bill")
				}
			})
		}
	}

	t.Run("after the clock moves, a ts from the old time is refused and one from the new time accepted", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		old := strconv.FormatInt(e.sb.Now().Unix(), 10)
		postClock(t, e, `{"advance":"49h"}`)
		if r := e.midas("/mpay/get_balance_m", "o1", map[string]string{"ts": old}); r.Ret != 1001 {
			t.Fatalf("old ts: %+v", r)
		}
		if r := e.midas("/mpay/get_balance_m", "o1", nil); r.Ret != 0 {
			t.Fatalf("new ts: %+v", r)
		}
	})
}

func TestMidasCookie(t *testing.T) {
	t.Parallel()
	const path = "/mpay/get_balance_m"
	enc := url.QueryEscape(path)
	cases := []struct {
		name   string
		cookie string
		ret    int
	}{
		{"QQ: session_id openid with session_type kp_actoken is accepted", "session_id=openid; session_type=kp_actoken; org_loc=" + enc, 0},
		{"H5: session_id openid with session_type openkey is accepted", "session_id=openid; session_type=openkey; org_loc=" + enc, 0},
		{"WeChat: session_id hy_gameid with session_type wc_actoken is accepted", "session_id=hy_gameid; session_type=wc_actoken; org_loc=" + enc, 0},
		{"guest: session_id hy_gameid with session_type st_dummy is accepted", "session_id=hy_gameid; session_type=st_dummy; org_loc=" + enc, 0},
		{"an org_loc in strict RFC 3986 form is accepted", "session_id=openid; session_type=kp_actoken; org_loc=%2Fmpay%2Fget_balance_m", 0},
		{"an org_loc escaped with lower-case hex is accepted", "session_id=openid; session_type=kp_actoken; org_loc=%2fmpay%2fget_balance_m", 0},
		{"an appip that needs no escaping is accepted", "session_id=openid; session_type=kp_actoken; org_loc=" + enc + "; appip=10.0.0.1", 0},
		{"a raw org_loc with slashes is refused as a parameter error", "session_id=openid; session_type=kp_actoken; org_loc=" + path, 1001},
		{"a raw appip with colons is refused as a parameter error", "session_id=openid; session_type=kp_actoken; org_loc=" + enc + "; appip=::1", 1001},
		{"a broken escape is refused as a parameter error", "session_id=openid; session_type=kp_actoken; org_loc=%2Fmpay%2", 1001},
		{"QQ with session_id hy_gameid is refused as a parameter error", "session_id=hy_gameid; session_type=kp_actoken; org_loc=" + enc, 1001},
		{"H5 with session_id hy_gameid is refused as a parameter error", "session_id=hy_gameid; session_type=openkey; org_loc=" + enc, 1001},
		{"WeChat with session_id openid is refused as a parameter error", "session_id=openid; session_type=wc_actoken; org_loc=" + enc, 1001},
		{"guest with session_id openid is refused as a parameter error", "session_id=openid; session_type=st_dummy; org_loc=" + enc, 1001},
		{"the player's openid as session_id is refused as a parameter error", "session_id=o1; session_type=kp_actoken; org_loc=" + enc, 1001},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := e.midasReq(midasReq{path: path, params: e.midasParams("o1", nil), rawCookie: tc.cookie})
			if r.Ret != tc.ret || (tc.ret != 0 && !strings.Contains(r.Msg, "cookie")) {
				t.Fatalf("reply = %+v, want ret %d", r, tc.ret)
			}
		})
	}
}
