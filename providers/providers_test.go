package providers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers"
)

func TestClassString(t *testing.T) {
	for c, want := range map[providers.Class]string{
		providers.OK:          "ok",
		providers.AlreadyDone: "already_done",
		providers.Retryable:   "retryable",
		providers.Final:       "final",
		providers.Class(9):    "class(9)",
	} {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", uint8(c), got, want)
		}
	}
}

func TestClassOfAndCodeOf(t *testing.T) {
	final := &providers.Error{Provider: "mogs", Endpoint: "pay", Class: providers.Final, Code: providers.CodeInsufficientBalance, Ret: 90013}
	tests := []struct {
		name      string
		err       error
		wantClass providers.Class
		wantCode  providers.Code
	}{
		{"nil is ok with no code", nil, providers.OK, ""},
		{"a provider error gives its own class and code", final, providers.Final, providers.CodeInsufficientBalance},
		{"a wrapped provider error is still recognised", fmt.Errorf("pay bill-1: %w", final), providers.Final, providers.CodeInsufficientBalance},
		{"an unexplained error is retryable with an unknown code", errors.New("boom"), providers.Retryable, providers.CodeUnknown},
		{"a bare context deadline is retryable", context.DeadlineExceeded, providers.Retryable, providers.CodeUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := providers.ClassOf(tt.err); got != tt.wantClass {
				t.Errorf("ClassOf = %v, want %v", got, tt.wantClass)
			}
			if got := providers.CodeOf(tt.err); got != tt.wantCode {
				t.Errorf("CodeOf = %q, want %q", got, tt.wantCode)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

func TestTransportError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want providers.Code
	}{
		{"a dropped connection is unavailable", io.ErrUnexpectedEOF, providers.CodeUnavailable},
		{"a refused connection is unavailable", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, providers.CodeUnavailable},
		{"a context deadline is a timeout", fmt.Errorf("get: %w", context.DeadlineExceeded), providers.CodeTimeout},
		{"a net timeout is a timeout", &net.OpError{Op: "read", Err: timeoutErr{}}, providers.CodeTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := providers.TransportError("midas", "pay_m", tt.err)
			if e.Class != providers.Retryable || e.Code != tt.want {
				t.Fatalf("got %v/%s, want retryable/%s", e.Class, e.Code, tt.want)
			}
			if !errors.Is(e, tt.err) {
				t.Errorf("the cause is not reachable with errors.Is")
			}
		})
	}
}

func TestStatusError(t *testing.T) {
	tests := []struct {
		status    int
		wantClass providers.Class
		wantCode  providers.Code
	}{
		{500, providers.Retryable, providers.CodeUnavailable},
		{502, providers.Retryable, providers.CodeUnavailable},
		{503, providers.Retryable, providers.CodeUnavailable},
		{429, providers.Retryable, providers.CodeUnavailable},
		{400, providers.Final, providers.CodeBadReply},
		{403, providers.Final, providers.CodeBadReply},
		{404, providers.Final, providers.CodeBadReply},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("HTTP %d is %v", tt.status, tt.wantClass), func(t *testing.T) {
			e := providers.StatusError("sud", "create_order", tt.status)
			if e.Class != tt.wantClass || e.Code != tt.wantCode {
				t.Errorf("got %v/%s, want %v/%s", e.Class, e.Code, tt.wantClass, tt.wantCode)
			}
			if !strings.Contains(e.Error(), fmt.Sprint(tt.status)) {
				t.Errorf("message %q does not name the status", e.Error())
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *providers.Error
		want string
	}{
		{
			"a provider refusal names provider, endpoint, code, class, ret and message",
			&providers.Error{Provider: "mogs", Endpoint: "pay", Class: providers.Final, Code: providers.CodeInsufficientBalance, Ret: 90013, Msg: "balance not enough"},
			"mogs pay: insufficient_balance (final, ret 90013: balance not enough)",
		},
		{
			"a transport failure carries its cause and no ret",
			&providers.Error{Provider: "midas", Endpoint: "pay_m", Class: providers.Retryable, Code: providers.CodeUnavailable, Err: io.EOF},
			"midas pay_m: unavailable (retryable): EOF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewHTTPClient(t *testing.T) {
	t.Run("a slow server is cut off by the client timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)

		c := providers.NewHTTPClient(50 * time.Millisecond)
		resp, err := c.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
			t.Fatal("a request to a stalled server succeeded")
		}
		if e := providers.TransportError("sud", "create_order", err); e.Code != providers.CodeTimeout {
			t.Errorf("code = %s, want timeout (err %v)", e.Code, err)
		}
	})
}

func TestBillNoRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		bill  string
		valid bool
	}{
		{"letters, digits, dash and underscore are a bill number", "Order_42-a", true},
		{"a single digit is a bill number", "7", true},
		{"63 characters are a bill number", strings.Repeat("a", 63), true},
		{"an underscore inside is a bill number", "a_", true},
		{"an empty string is not a bill number", "", false},
		{"64 characters are not a bill number", strings.Repeat("a", 64), false},
		{"a leading underscore is not a bill number", "_a1", false},
		{"a dot is not a bill number", "order-1.1", false},
		{"a space is not a bill number", "a b", false},
		{"a tilde is not a bill number", "a~b", false},
		{"a plus is not a bill number", "a+b", false},
		{"a non-ASCII letter is not a bill number", "订单1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := providers.ValidBillNo(tt.bill); got != tt.valid {
				t.Errorf("ValidBillNo(%q) = %v, want %v (%s)", tt.bill, got, tt.valid, providers.BillNoProblem(tt.bill))
			}
			err := providers.CheckBillNo("mogs", "pay", tt.bill)
			if tt.valid {
				if err != nil {
					t.Errorf("CheckBillNo = %v, want nil", err)
				}
				return
			}
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Class != providers.Final || pe.Code != providers.CodeParamError || pe.Msg == "" {
				t.Errorf("CheckBillNo = %v, want a final param error with a message", err)
			}
		})
	}

	t.Run("a money call with a bill number that breaks the rule is refused", func(t *testing.T) {
		t.Parallel()
		if err := providers.CheckMoneyCall("midas", "pay_m", "o1.1", 10); providers.CodeOf(err) != providers.CodeParamError {
			t.Errorf("CheckMoneyCall = %v, want a param error", err)
		}
	})
}

func TestCodeTable(t *testing.T) {
	t.Parallel()
	table := providers.CodeTable{
		{Ret: 0, Class: providers.OK, Source: "seed"},
		{Ret: 7, Class: providers.Final, Code: providers.CodeParamError, Source: "seed"},
		{Ret: 7, Endpoints: []string{"cancel"}, Class: providers.Retryable, Code: providers.CodeBusy, Source: "assumption: test"},
		{Ret: 8, Endpoints: []string{"pay", "present"}, Class: providers.AlreadyDone, Source: "assumption: test"},
	}
	if err := table.Check(); err != nil {
		t.Fatalf("Check = %v", err)
	}
	tests := []struct {
		name     string
		endpoint string
		ret      int
		class    providers.Class
		code     providers.Code
	}{
		{"a row for every endpoint applies to any endpoint", "pay", 0, providers.OK, ""},
		{"a row for every endpoint applies where no row names the endpoint", "pay", 7, providers.Final, providers.CodeParamError},
		{"a row naming the endpoint wins over the row for every endpoint", "cancel", 7, providers.Retryable, providers.CodeBusy},
		{"a row naming endpoints applies to each of them", "present", 8, providers.AlreadyDone, ""},
		{"a row naming other endpoints does not apply", "cancel", 8, providers.Final, providers.CodeUnknown},
		{"a code without a row is final unknown", "pay", 9, providers.Final, providers.CodeUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			class, code := table.Classify(tt.endpoint, tt.ret)
			if class != tt.class || code != tt.code {
				t.Errorf("Classify(%s, %d) = %v/%q, want %v/%q", tt.endpoint, tt.ret, class, code, tt.class, tt.code)
			}
		})
	}

	bad := []struct {
		name  string
		table providers.CodeTable
	}{
		{"a row without a source is refused", providers.CodeTable{{Ret: 1, Class: providers.Final, Code: providers.CodeUnknown}}},
		{"a success with a failure code is refused", providers.CodeTable{{Ret: 0, Class: providers.OK, Code: providers.CodeBusy, Source: "s"}}},
		{"a failure without a code is refused", providers.CodeTable{{Ret: 1, Class: providers.Final, Source: "s"}}},
		{"two rows for every endpoint are refused", providers.CodeTable{
			{Ret: 1, Class: providers.Final, Code: providers.CodeParamError, Source: "s"},
			{Ret: 1, Class: providers.Retryable, Code: providers.CodeBusy, Source: "s"},
		}},
		{"two rows naming the same endpoint are refused", providers.CodeTable{
			{Ret: 1, Endpoints: []string{"pay"}, Class: providers.Final, Code: providers.CodeParamError, Source: "s"},
			{Ret: 1, Endpoints: []string{"cancel", "pay"}, Class: providers.Retryable, Code: providers.CodeBusy, Source: "s"},
		}},
		{"an empty endpoint list is refused", providers.CodeTable{{Ret: 1, Endpoints: []string{}, Class: providers.Final, Code: providers.CodeBusy, Source: "s"}}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.table.Check(); err == nil {
				t.Error("Check = nil, want an error")
			}
		})
	}
}
