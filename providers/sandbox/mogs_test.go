package sandbox_test

import (
	"net/http"
	"regexp"
	"testing"
	"time"
)

func TestMOGSBalances(t *testing.T) {
	t.Run("a new account starts with the initial balance, all of it purchased", func(t *testing.T) {
		e := newEnv(t)
		r := e.mogs("getbalance", "p-new", map[string]any{"os_plat_id": 1})
		want := mogsResp{Ret: 0, ErrMsg: "ok", Balance: 1000000, SaveAmt: 1000000, SaveSum: 1000000}
		if r != want {
			t.Fatalf("getbalance = %+v, want %+v", r, want)
		}
	})

	t.Run("pay spends gifted coins first and cancel gives both parts back", func(t *testing.T) {
		e := newEnv(t)
		e.sb.SetAccount("mogs", "10000", "p1", 100, 30)
		r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 50, "bill_no": "b1", "pay_item": "dice"})
		if r.Ret != 0 || r.ErrMsg != "ok" || r.Balance != 50 || r.UsedGenAmt != 30 || r.BillNo != "b1" {
			t.Fatalf("pay = %+v", r)
		}
		g := e.mogs("getbalance", "p1", map[string]any{"os_plat_id": 1})
		if g.Balance != 50 || g.GenBalance != 0 || g.CostSum != 50 {
			t.Fatalf("after pay getbalance = %+v", g)
		}
		c := e.mogs("cancelpay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b1"})
		if c.Ret != 0 || c.BillNo != "b1" || c.ErrMsg != "ok" {
			t.Fatalf("cancelpay = %+v", c)
		}
		g = e.mogs("getbalance", "p1", map[string]any{"os_plat_id": 1})
		if g.Balance != 100 || g.GenBalance != 30 || g.CostSum != 0 {
			t.Fatalf("after cancel getbalance = %+v", g)
		}
		bills := e.sb.Bills()
		if len(bills) != 1 || !bills[0].Cancelled || bills[0].UsedGenAmt != 30 || bills[0].Kind != "pay" {
			t.Fatalf("bills = %+v", bills)
		}
	})

	t.Run("a second cancel answers already cancelled and changes nothing", func(t *testing.T) {
		e := newEnv(t)
		e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"})
		e.mogs("cancelpay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b1"})
		c := e.mogs("cancelpay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b1"})
		if c.Ret != 90015 {
			t.Fatalf("second cancel ret = %d, want 90015", c.Ret)
		}
		if v := e.account("mogs", "10000", "p1"); v.Balance != 1000000 || v.CostSum != 0 {
			t.Fatalf("account = %+v", v)
		}
	})

	t.Run("a repeated pay is a duplicate and never debits twice", func(t *testing.T) {
		e := newEnv(t)
		e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"})
		r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"})
		if r.Ret != 90012 || r.ErrMsg != "bill_no already exists" || r.BillNo != "b1" {
			t.Fatalf("repeat pay = %+v", r)
		}
		if v := e.account("mogs", "10000", "p1"); v.Balance != 1000000-10 {
			t.Fatalf("balance = %d, want one debit", v.Balance)
		}
	})

	t.Run("a pay with the bill_no of a cancelled pay is still a duplicate", func(t *testing.T) {
		e := newEnv(t)
		e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"})
		e.mogs("cancelpay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b1"})
		if r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"}); r.Ret != 90012 {
			t.Fatalf("pay after cancel ret = %d, want 90012", r.Ret)
		}
		if v := e.account("mogs", "10000", "p1"); v.Balance != 1000000 {
			t.Fatalf("balance = %d", v.Balance)
		}
	})

	t.Run("a pay refused for balance records no bill so the bill_no succeeds later", func(t *testing.T) {
		e := newEnv(t)
		e.sb.SetAccount("mogs", "10000", "p1", 5, 0)
		if r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"}); r.Ret != 90013 {
			t.Fatalf("pay ret = %d, want 90013", r.Ret)
		}
		if n := len(e.sb.Bills()); n != 0 {
			t.Fatalf("%d bills after a refused pay", n)
		}
		e.sb.SetAccount("mogs", "10000", "p1", 50, 0)
		if r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"}); r.Ret != 0 || r.Balance != 40 {
			t.Fatalf("retry = %+v", r)
		}
	})

	t.Run("a pay without bill_no gets a numeric one from the server", func(t *testing.T) {
		e := newEnv(t)
		r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10})
		if r.Ret != 0 || !regexp.MustCompile(`^[0-9]+$`).MatchString(r.BillNo) {
			t.Fatalf("pay = %+v", r)
		}
		r2 := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10})
		if r2.Ret != 0 || r2.BillNo == r.BillNo {
			t.Fatalf("second pay = %+v, first bill %s", r2, r.BillNo)
		}
		if b := e.sb.Bills(); len(b) != 2 || b[0].BillNo != r.BillNo {
			t.Fatalf("bills = %+v", b)
		}
	})

	t.Run("present adds gifted coins once and is recorded as a present", func(t *testing.T) {
		e := newEnv(t)
		r := e.mogs("present", "p1", map[string]any{"os_plat_id": 1, "amt": 20, "bill_no": "g1"})
		if r.Ret != 0 || r.Balance != 1000020 || r.BillNo != "g1" {
			t.Fatalf("present = %+v", r)
		}
		if d := e.mogs("present", "p1", map[string]any{"os_plat_id": 1, "amt": 20, "bill_no": "g1"}); d.Ret != 90012 || d.BillNo != "g1" {
			t.Fatalf("repeat present = %+v", d)
		}
		g := e.mogs("getbalance", "p1", map[string]any{"os_plat_id": 1})
		if g.Balance != 1000020 || g.GenBalance != 20 || g.PresentSums != 20 {
			t.Fatalf("getbalance = %+v", g)
		}
		if b := e.sb.Bills(); len(b) != 1 || b[0].Kind != "present" || b[0].Amt != 20 {
			t.Fatalf("bills = %+v", b)
		}
		if c := e.mogs("cancelpay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "g1"}); c.Ret != 90000 {
			t.Fatalf("cancel of a present ret = %d, want 90000", c.Ret)
		}
	})

	t.Run("cancel of an unknown bill or of another player's bill is not found", func(t *testing.T) {
		e := newEnv(t)
		e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"})
		if c := e.mogs("cancelpay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "nope"}); c.Ret != 90000 {
			t.Fatalf("unknown bill ret = %d", c.Ret)
		}
		if c := e.mogs("cancelpay", "p2", map[string]any{"os_plat_id": 1, "bill_no": "b1"}); c.Ret != 90000 {
			t.Fatalf("other player's bill ret = %d", c.Ret)
		}
		if v := e.account("mogs", "10000", "p1"); v.Balance != 1000000-10 {
			t.Fatalf("p1 balance = %d", v.Balance)
		}
	})

	t.Run("a bill_no is forgotten after 48 hours", func(t *testing.T) {
		e := newEnv(t)
		e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"})
		e.clock.Advance(48*time.Hour - time.Second)
		if r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"}); r.Ret != 90012 {
			t.Fatalf("pay just inside 48h ret = %d, want 90012", r.Ret)
		}
		e.clock.Advance(time.Second)
		if c := e.mogs("cancelpay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b1"}); c.Ret != 90000 {
			t.Fatalf("cancel after 48h ret = %d, want 90000", c.Ret)
		}
		if r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"}); r.Ret != 0 {
			t.Fatalf("pay after 48h = %+v", r)
		}
		if b := e.sb.Bills(); len(b) != 2 || b[0].BillNo != "b1" || b[1].BillNo != "b1" {
			t.Fatalf("bills = %+v, want the expired and the new one", b)
		}
	})
}

func TestMOGSRefusals(t *testing.T) {
	pay := `{"os_plat_id":1,"amt":10,"bill_no":"b1"}`
	cases := []struct {
		name     string
		endpoint string
		query    map[string]string
		body     string
		ret      int
	}{
		{"a missing openid is a parameter error", "pay", map[string]string{"openid": ""}, pay, 90018},
		{"a missing js_code is a parameter error", "pay", map[string]string{"js_code": ""}, pay, 90018},
		{"a missing appid is a parameter error", "getbalance", map[string]string{"appid": ""}, `{"os_plat_id":1}`, 90018},
		{"an unknown appid is a parameter error", "pay", map[string]string{"appid": "99999"}, pay, 90018},
		{"app_plat 2 is a parameter error", "pay", map[string]string{"app_plat": "2"}, pay, 90018},
		{"os_plat_id 2 is a parameter error", "pay", nil, `{"os_plat_id":2,"amt":10,"bill_no":"b1"}`, 90018},
		{"a missing os_plat_id is a parameter error", "getbalance", nil, `{}`, 90018},
		{"amt 0 is a parameter error", "pay", nil, `{"os_plat_id":1,"amt":0,"bill_no":"b1"}`, 90018},
		{"a negative amt is a parameter error", "pay", nil, `{"os_plat_id":1,"amt":-5,"bill_no":"b1"}`, 90018},
		{"an amt over 2^31-1 is a parameter error", "pay", nil, `{"os_plat_id":1,"amt":2147483648,"bill_no":"b1"}`, 90018},
		{"a present of 0 is a parameter error", "present", nil, `{"os_plat_id":1,"amt":0,"bill_no":"g1"}`, 90018},
		{"bad JSON is a parameter error", "pay", nil, `{"os_plat_id":1,`, 90018},
		{"an amt of the wrong type is a parameter error", "pay", nil, `{"os_plat_id":1,"amt":"10"}`, 90018},
		{"an empty body is a parameter error", "getbalance", nil, ``, 90018},
		{"a cancel without bill_no is a parameter error", "cancelpay", nil, `{"os_plat_id":1}`, 90018},
		{"an expired js_code is a login failure", "pay", map[string]string{"js_code": "expired"}, pay, 90010},
		{"an expired js_code fails getbalance too", "getbalance", map[string]string{"js_code": "expired"}, `{"os_plat_id":1}`, 90010},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.mogsWith(tc.endpoint, e.mogsQuery("p1", tc.query), tc.body)
			if r.Ret != tc.ret || r.ErrMsg == "" || r.ErrMsg == "ok" {
				t.Fatalf("reply = %+v, want ret %d with a message", r, tc.ret)
			}
			if n := len(e.sb.Bills()); n != 0 {
				t.Fatalf("%d bills recorded by a refused call", n)
			}
			if v, ok := e.sb.Account("mogs", "10000", "p1"); ok && v.Balance != 1000000 {
				t.Fatalf("refused call changed the account: %+v", v)
			}
		})
	}

	t.Run("a GET is refused with 405", func(t *testing.T) {
		e := newEnv(t)
		resp, err := http.Get(e.srv.URL + "/mogs/getbalance?" + e.mogsQuery("p1", nil).Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})

	t.Run("replies are JSON", func(t *testing.T) {
		e := newEnv(t)
		resp, err := e.mogsRaw("getbalance", e.mogsQuery("p1", nil), `{"os_plat_id":1}`)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("Content-Type = %q", ct)
		}
	})
}
