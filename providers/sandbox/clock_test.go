package sandbox_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers/sandbox"
)

func postClock(t *testing.T, e *env, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(e.srv.URL+"/_sandbox/clock", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("reply is not JSON: %v", err)
	}
	return resp.StatusCode, out
}

func TestSandboxClock(t *testing.T) {
	t.Parallel()

	t.Run("POST /_sandbox/clock moves the clock and answers the new time", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		start := e.clock.Now()
		status, out := postClock(t, e, `{"advance":"49h"}`)
		want := start.Add(49 * time.Hour).UTC().Format(time.RFC3339Nano)
		if status != http.StatusOK || out["now"] != want {
			t.Fatalf("HTTP %d %v, want 200 with now %s", status, out, want)
		}
		if got := e.sb.Now(); !got.Equal(start.Add(49 * time.Hour)) {
			t.Fatalf("Now() = %v, want %v", got, start.Add(49*time.Hour))
		}
	})

	t.Run("advances add up, on top of Config.Now", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		start := e.clock.Now()
		e.sb.AdvanceClock(time.Hour)
		e.clock.Advance(time.Minute)
		if got := e.sb.AdvanceClock(30 * time.Second); !got.Equal(start.Add(time.Hour + time.Minute + 30*time.Second)) {
			t.Fatalf("AdvanceClock = %v", got)
		}
	})

	t.Run("the admin client advances the clock", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		got, err := sandbox.NewAdminClient(e.srv.URL).AdvanceClock(context.Background(), 90*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if want := e.clock.Now().Add(90 * time.Minute); !got.Equal(want) || !e.sb.Now().Equal(want) {
			t.Fatalf("AdvanceClock = %v, sandbox now %v, want %v", got, e.sb.Now(), want)
		}
	})

	bad := []struct{ name, body string }{
		{"a body without advance is refused", `{}`},
		{"an advance that is not a Go duration is refused", `{"advance":"two days"}`},
		{"an advance given as a number is refused", `{"advance":3600}`},
		{"a negative advance is refused", `{"advance":"-1h"}`},
		{"an unknown field is refused", `{"advance":"1h","rewind":"2h"}`},
	}
	for _, tc := range bad {
		t.Run(tc.name+" and the clock stays", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			status, out := postClock(t, e, tc.body)
			if status != http.StatusBadRequest || out["error"] == "" {
				t.Fatalf("HTTP %d %v, want 400 with an error", status, out)
			}
			if !e.sb.Now().Equal(e.clock.Now()) {
				t.Fatalf("the clock moved to %v", e.sb.Now())
			}
		})
	}

	t.Run("AdvanceClock panics on a negative duration", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		wantPanic(t, "no panic", func() { e.sb.AdvanceClock(-time.Second) })
	})

	t.Run("a remote peer may not move the clock", func(t *testing.T) {
		t.Parallel()
		sb := sandbox.New(sandbox.Config{Now: newClock().Now})
		before := sb.Now()
		req := httptest.NewRequest(http.MethodPost, "/_sandbox/clock", strings.NewReader(`{"advance":"49h"}`))
		req.RemoteAddr = "203.0.113.9:4000"
		rec := httptest.NewRecorder()
		sb.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden || !sb.Now().Equal(before) {
			t.Fatalf("HTTP %d, clock %v (was %v)", rec.Code, sb.Now(), before)
		}
	})
}

func TestBillsExpireOnTheSandboxClock(t *testing.T) {
	t.Parallel()
	pay := map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": "b1"}
	cancel := map[string]any{"os_plat_id": 1, "bill_no": "b1"}

	// Each wallet keeps its bills for 48 hours on the sandbox clock, moved
	// through the admin API or the Go one.
	midasBill := map[string]string{"amt": "10", "billno": "b1"}
	wallets := []struct {
		name, provider, appID, openid string
		key, notFound                 string // the bill number's field, the not-found answer's noun
		notFoundRet                   int
		pay                           func(e *env) (ret int, balance int64)
		cancel                        func(e *env) (ret int)
	}{
		{"MOGS", "mogs", "10000", "p1", "bill_no", "bill", 90000,
			func(e *env) (int, int64) { r := e.mogs("pay", "p1", pay); return r.Ret, r.Balance },
			func(e *env) int { return e.mogs("cancelpay", "p1", cancel).Ret }},
		{"Midas", "midas", "1450000000", "o1", "billno", "billno", 1003,
			func(e *env) (int, int64) { r := e.midas("/mpay/pay_m", "o1", midasBill); return r.Ret, r.Balance },
			func(e *env) int { return e.midas("/mpay/cancel_pay_m", "o1", midasBill).Ret }},
	}
	for _, w := range wallets {
		t.Run("a "+w.name+" bill can be cancelled 47 hours after the pay", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			w.pay(e)
			postClock(t, e, `{"advance":"47h"}`)
			if ret := w.cancel(e); ret != 0 {
				t.Fatalf("cancel ret = %d", ret)
			}
		})

		t.Run("a "+w.name+" cancel 49 hours after the pay is "+w.notFound+" not found and returns nothing", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			w.pay(e)
			postClock(t, e, `{"advance":"49h"}`)
			if ret := w.cancel(e); ret != w.notFoundRet {
				t.Fatalf("cancel ret = %d, want %d", ret, w.notFoundRet)
			}
			if v := e.account(w.provider, w.appID, w.openid); v.Balance != 1000000-10 {
				t.Fatalf("balance = %d, want the debit kept", v.Balance)
			}
		})

		t.Run("a "+w.name+" pay with a "+w.key+" expired 49 hours ago charges again as a new bill", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			w.pay(e)
			e.sb.AdvanceClock(49 * time.Hour)
			if ret, balance := w.pay(e); ret != 0 || balance != 1000000-20 {
				t.Fatalf("second pay = ret %d, balance %d, want a second debit", ret, balance)
			}
			b := e.sb.Bills()
			if len(b) != 2 || b[0].BillNo != "b1" || b[1].BillNo != "b1" || !b[1].At.Equal(e.sb.Now()) {
				t.Fatalf("bills = %+v, want the expired one and the new one at the moved clock", b)
			}
		})
	}

	t.Run("the bill list answers the documented fields, expired bills included", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.mogs("pay", "p1", pay)
		e.sb.AdvanceClock(49 * time.Hour)
		e.mogs("pay", "p1", pay) // expires the first
		resp, err := http.Get(e.srv.URL + "/_sandbox/bills")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var bills []map[string]any
		if err := json.Unmarshal(raw, &bills); err != nil || len(bills) != 2 {
			t.Fatalf("bills = %s (%v)", raw, err)
		}
		want := []string{"amt", "appid", "at", "bill_no", "cancelled", "kind", "openid", "provider", "used_gen_amt"}
		for _, b := range bills {
			var keys []string
			for k := range b {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if !reflect.DeepEqual(keys, want) {
				t.Fatalf("bill fields = %v, want %v", keys, want)
			}
		}
		first, second := bills[0]["at"].(string), bills[1]["at"].(string)
		if first != e.clock.Now().UTC().Format(time.RFC3339Nano) || second != e.sb.Now().UTC().Format(time.RFC3339Nano) {
			t.Fatalf("at = %s, %s", first, second)
		}
	})
}
