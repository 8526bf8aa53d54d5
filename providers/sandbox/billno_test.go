package sandbox_test

import (
	"strings"
	"testing"
)

// The bill-number rule (providers.md, Learned since: bill numbers): 1 to 63
// characters of [0-9A-Za-z_-], no leading "_", on every call that carries
// one. MOGS refuses with 90018, Midas with 1001.

var badBillNos = []struct{ name, bill string }{
	{"a bill number with a dot, as generation 1 used to be", "order-1.1"},
	{"a bill number with a leading underscore", "_order"},
	{"a bill number of 64 characters", strings.Repeat("b", 64)},
	{"a bill number with a space", "order 1"},
	{"a bill number with a tilde", "order~1"},
	{"a bill number with a non-ASCII letter", "订单1"},
}

var goodBillNos = []struct{ name, bill string }{
	{"a bill number of 63 characters", strings.Repeat("b", 63)},
	{"a bill number with an underscore inside and a leading dash", "-order_1"},
	{"a bill number of one digit", "7"},
}

func TestMOGSBillNumberRule(t *testing.T) {
	t.Parallel()
	for _, bn := range badBillNos {
		for _, ep := range []string{"pay", "present", "cancelpay"} {
			t.Run(ep+" with "+bn.name+" is a parameter error and records nothing", func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				if ep == "cancelpay" {
					e.sb.SetAccount("mogs", "10000", "p1", 1000000, 0)
				}
				r := e.mogs(ep, "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": bn.bill})
				if r.Ret != 90018 || !strings.Contains(r.ErrMsg, "bill_no") {
					t.Fatalf("reply = %+v, want 90018 naming bill_no", r)
				}
				if n := len(e.sb.Bills()); n != 0 {
					t.Fatalf("%d bills recorded", n)
				}
				if v, ok := e.sb.Account("mogs", "10000", "p1"); ok && v.Balance != 1000000 {
					t.Fatalf("account changed: %+v", v)
				}
			})
		}
	}
	for _, bn := range goodBillNos {
		t.Run(bn.name+" pays and cancels", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "amt": 10, "bill_no": bn.bill}); r.Ret != 0 || r.BillNo != bn.bill {
				t.Fatalf("pay = %+v", r)
			}
			if c := e.mogs("cancelpay", "p1", map[string]any{"os_plat_id": 1, "bill_no": bn.bill}); c.Ret != 0 {
				t.Fatalf("cancel = %+v", c)
			}
		})
	}
}

func TestMidasBillNumberRule(t *testing.T) {
	t.Parallel()
	calls := []struct {
		path  string
		extra func(bill string) map[string]string
	}{
		{"/mpay/pay_m", func(b string) map[string]string { return map[string]string{"amt": "10", "billno": b} }},
		{"/mpay/present_m", func(b string) map[string]string { return map[string]string{"presenttimes": "10", "billno": b} }},
		{"/mpay/cancel_pay_m", func(b string) map[string]string { return map[string]string{"amt": "10", "billno": b} }},
	}
	for _, bn := range badBillNos {
		for _, call := range calls {
			t.Run(call.path+" with "+bn.name+" is a parameter error and records nothing", func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				r := e.midas(call.path, "o1", call.extra(bn.bill))
				if r.Ret != 1001 || !strings.Contains(r.Msg, "billno") {
					t.Fatalf("reply = %+v, want 1001 naming billno", r)
				}
				if n := len(e.sb.Bills()); n != 0 {
					t.Fatalf("%d bills recorded", n)
				}
			})
		}
	}
	for _, bn := range goodBillNos {
		t.Run(bn.name+" pays, cancels and presents", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for _, call := range calls { // a present shares the bill numbers: it gets its own sandbox
				if call.path == "/mpay/present_m" {
					if r := newEnv(t).midas(call.path, "o1", call.extra(bn.bill)); r.Ret != 0 || r.BillNo != bn.bill {
						t.Fatalf("%s = %+v", call.path, r)
					}
					continue
				}
				if r := e.midas(call.path, "o1", call.extra(bn.bill)); r.Ret != 0 || r.BillNo != bn.bill {
					t.Fatalf("%s = %+v", call.path, r)
				}
			}
		})
	}
}
