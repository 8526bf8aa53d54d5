package sandbox_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers/sandbox"
)

func TestAdminClient(t *testing.T) {
	ctx := context.Background()

	t.Run("an account never touched is not found", func(t *testing.T) {
		e := newEnv(t)
		_, err := sandbox.NewAdminClient(e.srv.URL).Account(ctx, "mogs", "10000", "nobody")
		if !errors.Is(err, sandbox.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})

	t.Run("SetAccount then Account round-trips and the provider sees it", func(t *testing.T) {
		e := newEnv(t)
		a := sandbox.NewAdminClient(e.srv.URL + "/")
		if err := a.SetAccount(ctx, "midas", "1450000000", "o 1/x", 500, 200); err != nil {
			t.Fatal(err)
		}
		v, err := a.Account(ctx, "midas", "1450000000", "o 1/x")
		if err != nil {
			t.Fatal(err)
		}
		want := sandbox.AccountView{Balance: 500, GenBalance: 200, SaveAmt: 300, SaveSum: 300, PresentSums: 200}
		if v != want {
			t.Fatalf("account = %+v, want %+v", v, want)
		}
		if g := e.midas("/mpay/get_balance_m", "o 1/x", nil); g.Balance != 500 || g.GenBalance != 200 {
			t.Fatalf("get_balance_m = %+v", g)
		}
	})

	t.Run("SetAccount on a used account keeps its counters", func(t *testing.T) {
		e := newEnv(t)
		e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"})
		a := sandbox.NewAdminClient(e.srv.URL)
		if err := a.SetAccount(ctx, "mogs", "10000", "p1", 7, 0); err != nil {
			t.Fatal(err)
		}
		v, _ := a.Account(ctx, "mogs", "10000", "p1")
		if v.Balance != 7 || v.CostSum != 10 || v.SaveAmt != 1000000 {
			t.Fatalf("account = %+v", v)
		}
	})

	t.Run("impossible balances and unknown providers are refused", func(t *testing.T) {
		e := newEnv(t)
		a := sandbox.NewAdminClient(e.srv.URL)
		for _, c := range []struct {
			prov     string
			bal, gen int64
		}{{"mogs", -1, 0}, {"mogs", 5, 6}, {"mogs", 5, -1}, {"paypal", 5, 0}} {
			if err := a.SetAccount(ctx, c.prov, "10000", "p1", c.bal, c.gen); err == nil || !strings.Contains(err.Error(), "400") {
				t.Fatalf("SetAccount(%s, %d, %d) err = %v, want HTTP 400", c.prov, c.bal, c.gen, err)
			}
		}
		if _, err := a.Account(ctx, "paypal", "1", "p1"); err == nil {
			t.Fatal("an unknown provider was accepted")
		}
	})

	t.Run("bills list every pay and present and filter by provider and openid", func(t *testing.T) {
		e := newEnv(t)
		e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"})
		e.mogs("present", "p2", map[string]any{"os_plat_id": 1, "amt": 3, "bill_no": "g1"})
		e.midas("/mpay/pay_m", "p1", map[string]string{"amt": "4", "billno": "m1"})
		e.mogs("cancelpay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b1"})
		a := sandbox.NewAdminClient(e.srv.URL)
		all, err := a.Bills(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := sandbox.Bill{Provider: "mogs", AppID: "10000", OpenID: "p1", BillNo: "b1", Kind: "pay", Amt: 10, Cancelled: true, At: e.clock.Now()}
		if len(all) != 3 || !all[0].At.Equal(want.At) {
			t.Fatalf("bills = %+v", all)
		}
		all[0].At = want.At
		if all[0] != want {
			t.Fatalf("first bill = %+v, want %+v", all[0], want)
		}
		if got, _ := a.BillsOf(ctx, "", "p1"); len(got) != 2 {
			t.Fatalf("p1 bills = %+v", got)
		}
		if got, _ := a.BillsOf(ctx, "midas", "p1"); len(got) != 1 || got[0].BillNo != "m1" {
			t.Fatalf("midas p1 bills = %+v", got)
		}
		if got, _ := a.BillsOf(ctx, "midas", "p2"); got == nil || len(got) != 0 {
			t.Fatalf("midas p2 bills = %#v, want an empty list", got)
		}
	})

	t.Run("SUD orders are listed in creation order", func(t *testing.T) {
		e := newEnv(t)
		for _, id := range []string{"o-3", "o-1", "o-2"} {
			e.sud("/sud/create_order", validOrder(id))
		}
		got, err := sandbox.NewAdminClient(e.srv.URL).SUDOrders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].OutOrderID != "o-3" || got[2].OutOrderID != "o-2" || got[1].Status != "EXECUTE_SUCCESS" {
			t.Fatalf("orders = %+v", got)
		}
	})

	t.Run("faults are set, replaced, listed and cleared over HTTP", func(t *testing.T) {
		e := newEnv(t)
		a := sandbox.NewAdminClient(e.srv.URL)
		if err := a.SetFault(ctx, sandbox.Fault{Endpoint: "mogs.pay", ErrorRate: 0.3}); err != nil {
			t.Fatal(err)
		}
		f := sandbox.Fault{Endpoint: "mogs.pay", BusyRate: 1, LatencyMS: 5, VisibilityDelayMS: 20000}
		if err := a.SetFault(ctx, f); err != nil {
			t.Fatal(err)
		}
		if err := a.SetFault(ctx, sandbox.Fault{Endpoint: "*", DropReplyRate: 0.1}); err != nil {
			t.Fatal(err)
		}
		got, err := a.Faults(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Endpoint != "*" || got[1] != f {
			t.Fatalf("faults = %+v", got)
		}
		if r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 1}); r.Ret != -1 {
			t.Fatalf("pay under busy fault = %+v", r)
		}
		if err := a.ClearFaults(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := a.Faults(ctx); len(got) != 0 {
			t.Fatalf("faults after clear = %+v", got)
		}
	})

	t.Run("invalid faults are refused", func(t *testing.T) {
		e := newEnv(t)
		a := sandbox.NewAdminClient(e.srv.URL)
		for _, f := range []sandbox.Fault{
			{Endpoint: "mogs.teleport", ErrorRate: 1},
			{Endpoint: "mogs.pay", ErrorRate: 1.5},
			{Endpoint: "mogs.pay", BusyRate: -0.1},
			{Endpoint: "mogs.pay", LatencyMS: -1},
		} {
			if err := a.SetFault(ctx, f); err == nil {
				t.Fatalf("fault %+v accepted", f)
			}
		}
		resp, err := http.Post(e.srv.URL+"/_sandbox/faults", "application/json", strings.NewReader(`{"endpoint":"mogs.pay","eror_rate":1}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("misspelt field: status %d", resp.StatusCode)
		}
		if got := e.sb.Faults(); len(got) != 0 {
			t.Fatalf("faults = %+v", got)
		}
	})

	t.Run("a client whose context ends gets the context error", func(t *testing.T) {
		e := newEnv(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := sandbox.NewAdminClient(e.srv.URL).Bills(cctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestAdminLoopbackOnly(t *testing.T) {
	get := func(sb *sandbox.Sandbox, remote string) int {
		req := httptest.NewRequest(http.MethodGet, "/_sandbox/bills", nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		sb.ServeHTTP(rec, req)
		return rec.Code
	}
	cases := []struct {
		name   string
		allow  bool
		remote string
		want   int
	}{
		{"a remote peer is refused", false, "203.0.113.9:4000", http.StatusForbidden},
		{"IPv4 loopback is served", false, "127.0.0.1:4000", http.StatusOK},
		{"IPv6 loopback is served", false, "[::1]:4000", http.StatusOK},
		{"a remote peer is served when remote admin is allowed", true, "203.0.113.9:4000", http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sb := sandbox.New(sandbox.Config{AllowRemoteAdmin: tc.allow, Now: time.Now})
			if got := get(sb, tc.remote); got != tc.want {
				t.Fatalf("status = %d, want %d", got, tc.want)
			}
		})
	}

	t.Run("a remote peer still reaches the provider endpoints", func(t *testing.T) {
		sb := sandbox.New(sandbox.Config{})
		req := httptest.NewRequest(http.MethodPost, "/mogs/getbalance?appid=10000&app_plat=1&openid=p&js_code=x", strings.NewReader(`{"os_plat_id":1}`))
		req.RemoteAddr = "203.0.113.9:4000"
		rec := httptest.NewRecorder()
		sb.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"ret":0`) {
			t.Fatalf("status %d body %s", rec.Code, rec.Body)
		}
	})
}

func TestDefaults(t *testing.T) {
	t.Run("zero config fields take the contract's defaults", func(t *testing.T) {
		d := sandbox.DefaultConfig()
		if d.InitialBalance != 1000000 || d.MOGSAppID != "10000" || d.MidasAppID != "1450000000" ||
			d.MidasAppKey != "sandbox-midas-appkey" || d.SUDAppID != "sandbox-sud-app" || d.SUDAppSecret != "sandbox-sud-secret" {
			t.Fatalf("defaults = %+v", d)
		}
	})

	t.Run("a custom initial balance applies to new accounts", func(t *testing.T) {
		e := newEnv(t, func(c *sandbox.Config) { c.InitialBalance = 77 })
		if r := e.mogs("getbalance", "p1", map[string]any{"os_plat_id": 1}); r.Balance != 77 || r.SaveAmt != 77 {
			t.Fatalf("getbalance = %+v", r)
		}
	})
}
