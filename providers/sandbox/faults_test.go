package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers/providertest"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// debitCall makes one debit on a provider and reports the raw outcome.
type debitCall struct {
	name     string
	endpoint string
	do       func(e *env, bill string) (*http.Response, error)
	effect   func(e *env, bill string) bool // did the debit happen?
}

func debitCalls() []debitCall {
	billed := func(e *env, bill string) bool {
		for _, b := range e.sb.Bills() {
			if b.BillNo == bill {
				return true
			}
		}
		return false
	}
	return []debitCall{
		{"mogs pay", "mogs.pay", func(e *env, bill string) (*http.Response, error) {
			return e.mogsRaw("pay", e.mogsQuery("p1", nil), `{"os_plat_id":1,"amt":10,"bill_no":"`+bill+`"}`)
		}, billed},
		{"midas pay_m", "midas.pay_m", func(e *env, bill string) (*http.Response, error) {
			// A fresh transport: no reused connection, so Go does not retry.
			return rawMidas(e, "/mpay/pay_m", e.midasParams("o1", map[string]string{"amt": "10", "billno": bill}))
		}, billed},
		{"sud create_order", "sud.create_order", func(e *env, bill string) (*http.Response, error) {
			body, _ := json.Marshal(validOrder(bill))
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/sud/create_order", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json;charset=utf-8")
			req.Header.Set("Authorization", e.sudAuthHeader(e.cfg.SUDAppID, e.cfg.SUDAppSecret, body))
			return freshClient().Do(req)
		}, func(e *env, bill string) bool {
			for _, o := range e.sb.SUDOrders() {
				if o.OutOrderID == bill {
					return true
				}
			}
			return false
		}},
	}
}

func freshClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

func rawMidas(e *env, path string, params map[string]string) (*http.Response, error) {
	params["sig"] = providertest.MidasSig(e.cfg.MidasAppKey, "/v3/r"+path, params)
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path+"?"+encodeParams(params), nil)
	req.Header.Set("Cookie", midasCookie(path))
	return freshClient().Do(req)
}

func TestFaults(t *testing.T) {
	for _, dc := range debitCalls() {
		t.Run("error_rate on "+dc.name+" answers HTTP 500 and does nothing", func(t *testing.T) {
			e := newEnv(t)
			e.sb.SetFault(sandbox.Fault{Endpoint: dc.endpoint, ErrorRate: 1})
			resp, err := dc.do(e, "b1")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			if dc.effect(e, "b1") {
				t.Fatal("a failed call took effect")
			}
		})

		t.Run("drop_reply_rate on "+dc.name+" takes effect and closes the connection without a reply", func(t *testing.T) {
			e := newEnv(t)
			e.sb.SetFault(sandbox.Fault{Endpoint: dc.endpoint, DropReplyRate: 1})
			resp, err := dc.do(e, "b1")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("got a reply, HTTP %d", resp.StatusCode)
			}
			if !dc.effect(e, "b1") {
				t.Fatal("a dropped reply's call did not take effect")
			}
		})

		t.Run("latency on "+dc.name+" applies the effect before the reply", func(t *testing.T) {
			e := newEnv(t)
			e.sb.SetFault(sandbox.Fault{Endpoint: dc.endpoint, LatencyMS: 1000})
			done := make(chan error, 1)
			go func() {
				resp, err := dc.do(e, "b1")
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			waitFor(t, "the effect", func() bool { return dc.effect(e, "b1") })
			select {
			case err := <-done:
				t.Fatalf("the reply came with the effect (err %v), not after the latency", err)
			default:
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("a client that gives up during the latency was charged anyway", func(t *testing.T) {
		e := newEnv(t)
		e.sb.SetFault(sandbox.Fault{Endpoint: "mogs.pay", LatencyMS: 60000})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/mogs/pay?"+e.mogsQuery("p1", nil).Encode(),
			bytes.NewReader([]byte(`{"os_plat_id":1,"amt":10,"bill_no":"b1"}`)))
		_, err := http.DefaultClient.Do(req)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the client's deadline", err)
		}
		if v := e.account("mogs", "10000", "p1"); v.Balance != 1000000-10 {
			t.Fatalf("balance = %d", v.Balance)
		}
	})

	busy := []struct {
		name, endpoint string
		call           func(e *env) int
		want           map[int]bool
	}{
		{"mogs pay answers -1", "mogs.pay", func(e *env) int {
			return e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"}).Ret
		}, map[int]bool{-1: true}},
		{"mogs cancelpay answers -1 or 90016", "mogs.cancelpay", func(e *env) int {
			return e.mogs("cancelpay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b1"}).Ret
		}, map[int]bool{-1: true, 90016: true}},
		{"mogs getbalance answers -1", "mogs.getbalance", func(e *env) int {
			return e.mogs("getbalance", "p1", map[string]any{"os_plat_id": 1}).Ret
		}, map[int]bool{-1: true}},
		{"midas pay_m answers 1002 or 3000111", "midas.pay_m", func(e *env) int {
			return e.midas("/mpay/pay_m", "o1", map[string]string{"amt": "10", "billno": "b1"}).Ret
		}, map[int]bool{1002: true, 3000111: true}},
		{"sud create_order answers 10001", "sud.create_order", func(e *env) int {
			return e.sud("/sud/create_order", validOrder("b1")).RetCode
		}, map[int]bool{10001: true}},
		{"sud query_order answers 10001", "sud.query_order", func(e *env) int {
			return e.sud("/sud/query_order", map[string]string{"out_order_id": "b1"}).RetCode
		}, map[int]bool{10001: true}},
	}
	for _, tc := range busy {
		t.Run("busy_rate on "+tc.name+" and does nothing", func(t *testing.T) {
			e := newEnv(t)
			e.sb.SetFault(sandbox.Fault{Endpoint: tc.endpoint, BusyRate: 1})
			seen := map[int]bool{}
			for range 40 {
				code := tc.call(e)
				if !tc.want[code] {
					t.Fatalf("code = %d, want one of %v", code, tc.want)
				}
				seen[code] = true
			}
			if len(seen) != len(tc.want) {
				t.Fatalf("saw codes %v in 40 calls, want all of %v", seen, tc.want)
			}
			if len(e.sb.Bills()) != 0 || len(e.sb.SUDOrders()) != 0 {
				t.Fatal("a busy call took effect")
			}
			if _, ok := e.sb.Account("mogs", "10000", "p1"); ok {
				t.Fatal("a busy call touched the account")
			}
		})
	}

	t.Run("a busy Midas reply honours jsonp", func(t *testing.T) {
		e := newEnv(t)
		e.sb.SetFault(sandbox.Fault{Endpoint: "midas.get_balance_m", BusyRate: 1})
		resp, err := rawMidas(e, "/mpay/get_balance_m", e.midasParams("o1", map[string]string{"format": "jsonp_cb"}))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		if !bytes.HasPrefix(buf.Bytes(), []byte(`cb({"ret":`)) {
			t.Fatalf("body = %s", buf.Bytes())
		}
	})

	t.Run("a fault on * applies to every endpoint unless one has its own", func(t *testing.T) {
		e := newEnv(t)
		e.sb.SetFault(sandbox.Fault{Endpoint: "*", BusyRate: 1})
		e.sb.SetFault(sandbox.Fault{Endpoint: "mogs.getbalance"})
		if r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10}); r.Ret != -1 {
			t.Fatalf("pay under * = %+v", r)
		}
		if r := e.sud("/sud/create_order", validOrder("o1")); r.RetCode != 10001 {
			t.Fatalf("create_order under * = %+v", r)
		}
		if r := e.mogs("getbalance", "p1", map[string]any{"os_plat_id": 1}); r.Ret != 0 {
			t.Fatalf("getbalance with its own empty fault = %+v", r)
		}
		e.sb.ClearFaults()
		if r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10}); r.Ret != 0 {
			t.Fatalf("pay after ClearFaults = %+v", r)
		}
	})

	t.Run("an error rate of one half fails some calls and passes others", func(t *testing.T) {
		e := newEnv(t)
		e.sb.SetFault(sandbox.Fault{Endpoint: "mogs.getbalance", ErrorRate: 0.5})
		statuses := map[int]int{}
		for range 40 {
			resp, err := e.mogsRaw("getbalance", e.mogsQuery("p1", nil), `{"os_plat_id":1}`)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			statuses[resp.StatusCode]++
		}
		if statuses[200] == 0 || statuses[500] == 0 {
			t.Fatalf("statuses = %v", statuses)
		}
	})
}

func TestVisibilityDelay(t *testing.T) {
	t.Run("a MOGS debit shows in getbalance only after the delay", func(t *testing.T) {
		e := newEnv(t)
		e.sb.SetAccount("mogs", "10000", "p1", 100, 30)
		e.sb.SetFault(sandbox.Fault{Endpoint: "mogs.pay", VisibilityDelayMS: 20000})
		r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 50, "bill_no": "b1"})
		if r.Ret != 0 || r.Balance != 50 || r.UsedGenAmt != 30 {
			t.Fatalf("pay = %+v, want the true balance after the debit", r)
		}
		if g := e.mogs("getbalance", "p1", map[string]any{"os_plat_id": 1}); g.Balance != 100 || g.GenBalance != 30 || g.CostSum != 0 {
			t.Fatalf("getbalance during the delay = %+v", g)
		}
		if v := e.account("mogs", "10000", "p1"); v.Balance != 50 {
			t.Fatalf("admin shows %+v, want the true state", v)
		}
		e.clock.Advance(20 * time.Second)
		if g := e.mogs("getbalance", "p1", map[string]any{"os_plat_id": 1}); g.Balance != 50 || g.GenBalance != 0 || g.CostSum != 50 {
			t.Fatalf("getbalance after the delay = %+v", g)
		}
	})

	t.Run("a Midas debit shows in get_balance_m only after the delay", func(t *testing.T) {
		e := newEnv(t)
		e.sb.SetFault(sandbox.Fault{Endpoint: "*", VisibilityDelayMS: 1000})
		if r := e.midas("/mpay/pay_m", "o1", map[string]string{"amt": "10", "billno": "b1"}); r.Balance != 1000000-10 {
			t.Fatalf("pay_m = %+v", r)
		}
		if g := e.midas("/mpay/get_balance_m", "o1", nil); g.Balance != 1000000 {
			t.Fatalf("during the delay = %+v", g)
		}
		e.clock.Advance(time.Second)
		if g := e.midas("/mpay/get_balance_m", "o1", nil); g.Balance != 1000000-10 {
			t.Fatalf("after the delay = %+v", g)
		}
	})

	t.Run("a debit cancelled while hidden never shows", func(t *testing.T) {
		e := newEnv(t)
		e.sb.SetFault(sandbox.Fault{Endpoint: "mogs.pay", VisibilityDelayMS: 20000})
		e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"})
		e.mogs("cancelpay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b1"})
		for _, step := range []time.Duration{0, 20 * time.Second} {
			e.clock.Advance(step)
			if g := e.mogs("getbalance", "p1", map[string]any{"os_plat_id": 1}); g.Balance != 1000000 || g.CostSum != 0 {
				t.Fatalf("getbalance +%v = %+v", step, g)
			}
		}
	})
}
