package sandbox_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// statusOf asks query_order for an order's status.
func (e *env) statusOf(outOrderID string) string {
	e.t.Helper()
	r := e.sud("/sud/query_order", map[string]string{"out_order_id": outOrderID})
	if r.RetCode != 0 {
		e.t.Fatalf("query_order %s: %+v", outOrderID, r)
	}
	return dataOf(e.t, r).Status
}

// listedStatus is an order's status in the admin list, over HTTP.
func (e *env) listedStatus(outOrderID string) string {
	e.t.Helper()
	orders, err := sandbox.NewAdminClient(e.srv.URL).SUDOrders(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, o := range orders {
		if o.OutOrderID == outOrderID {
			return o.Status
		}
	}
	e.t.Fatalf("order %s is not listed", outOrderID)
	return ""
}

func TestSUDExecution(t *testing.T) {
	t.Parallel()

	// One order, created under a fault (or none), ends at once.
	for _, tt := range []struct {
		name   string
		faults []sandbox.Fault
		want   string
	}{
		{"without a fault an order is EXECUTE_SUCCESS at once", nil, "EXECUTE_SUCCESS"},
		{"a fail rate set on every endpoint applies to create_order", []sandbox.Fault{{Endpoint: "*", ExecuteFailRate: 1}}, "EXECUTE_FAIL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for _, f := range tt.faults {
				e.sb.SetFault(f)
			}
			e.sud("/sud/create_order", validOrder("o-1"))
			if got := e.statusOf("o-1"); got != tt.want {
				t.Fatalf("status = %s, want %s", got, tt.want)
			}
		})
	}

	t.Run("with execute_delay_ms an order is EXECUTING until the delay has passed on the sandbox clock", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteDelayMS: 200})
		e.sud("/sud/create_order", validOrder("o-1"))
		for _, step := range []struct {
			advance time.Duration
			want    string
		}{{0, "EXECUTING"}, {199 * time.Millisecond, "EXECUTING"}, {time.Millisecond, "EXECUTE_SUCCESS"}, {time.Hour, "EXECUTE_SUCCESS"}} {
			e.clock.Advance(step.advance)
			if got := e.statusOf("o-1"); got != step.want {
				t.Fatalf("query_order status = %s, want %s", got, step.want)
			}
			if got := e.listedStatus("o-1"); got != step.want {
				t.Fatalf("listed status = %s, want %s", got, step.want)
			}
		}
	})

	t.Run("the delay belongs to the order: clearing the fault does not end it early", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteDelayMS: 1000})
		e.sud("/sud/create_order", validOrder("slow"))
		e.sb.ClearFaults()
		e.sud("/sud/create_order", validOrder("fast"))
		if a, b := e.statusOf("slow"), e.statusOf("fast"); a != "EXECUTING" || b != "EXECUTE_SUCCESS" {
			t.Fatalf("slow %s, fast %s", a, b)
		}
	})

	t.Run("with execute_fail_rate 1 every order ends EXECUTE_FAIL", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteFailRate: 1, ExecuteDelayMS: 50})
		for i := range 20 {
			e.sud("/sud/create_order", validOrder(fmt.Sprintf("o-%d", i)))
		}
		e.clock.Advance(50 * time.Millisecond)
		for _, o := range e.sb.SUDOrders() {
			if o.Status != "EXECUTE_FAIL" {
				t.Fatalf("order %+v", o)
			}
		}
	})

	t.Run("a fail rate between 0 and 1 fails some orders, the same ones for the same seed", func(t *testing.T) {
		t.Parallel()
		outcomes := func() string {
			e := newEnv(t)
			e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteFailRate: 0.5})
			var b strings.Builder
			for i := range 100 {
				e.sud("/sud/create_order", validOrder(fmt.Sprintf("o-%d", i)))
			}
			for _, o := range e.sb.SUDOrders() {
				b.WriteByte(map[string]byte{"EXECUTE_FAIL": 'F', "EXECUTE_SUCCESS": 'S'}[o.Status])
			}
			return b.String()
		}
		first, second := outcomes(), outcomes()
		if first != second {
			t.Fatalf("same seed, different outcomes:\n%s\n%s", first, second)
		}
		if f := strings.Count(first, "F"); f < 30 || f > 70 {
			t.Fatalf("%d of 100 failed at rate 0.5: %s", f, first)
		}
	})

	t.Run("a failed execution is still an order: out_order_id stays taken", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteFailRate: 1})
		e.sud("/sud/create_order", validOrder("o-1"))
		e.sb.ClearFaults()
		if r := e.sud("/sud/create_order", validOrder("o-1")); r.RetCode != 70501 {
			t.Fatalf("reply = %+v", r)
		}
		if got := e.statusOf("o-1"); got != "EXECUTE_FAIL" {
			t.Fatalf("status = %s", got)
		}
	})
}

func TestSUDExecutionFaultValidation(t *testing.T) {
	t.Parallel()
	bad := []struct {
		name  string
		fault sandbox.Fault
	}{
		{"a fail rate above 1", sandbox.Fault{Endpoint: "sud.create_order", ExecuteFailRate: 1.5}},
		{"a negative fail rate", sandbox.Fault{Endpoint: "sud.create_order", ExecuteFailRate: -0.1}},
		{"a negative delay", sandbox.Fault{Endpoint: "sud.create_order", ExecuteDelayMS: -1}},
		{"a fail rate on a MOGS endpoint", sandbox.Fault{Endpoint: "mogs.pay", ExecuteFailRate: 0.5}},
		{"a delay on query_order", sandbox.Fault{Endpoint: "sud.query_order", ExecuteDelayMS: 10}},
	}
	for _, tc := range bad {
		t.Run(tc.name+" is refused by SetFault and over HTTP", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			wantPanic(t, "SetFault accepted it", func() { e.sb.SetFault(tc.fault) })
			err := sandbox.NewAdminClient(e.srv.URL).SetFault(context.Background(), tc.fault)
			if err == nil || !strings.Contains(err.Error(), "HTTP 400") {
				t.Fatalf("admin SetFault: %v", err)
			}
			if n := len(e.sb.Faults()); n != 0 {
				t.Fatalf("%d faults set", n)
			}
		})
	}

	t.Run("the execution fields travel over HTTP", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		f := sandbox.Fault{Endpoint: "sud.create_order", ExecuteFailRate: 0.25, ExecuteDelayMS: 1500}
		if got := e.faultOverHTTP(f); len(got) != 1 || got[0] != f {
			t.Fatalf("faults = %+v", got)
		}
		resp, err := http.Post(e.srv.URL+"/_sandbox/faults", "application/json",
			strings.NewReader(`{"endpoint":"sud.create_order","execute_fail_rate":1,"execute_delay_ms":200}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})
}
