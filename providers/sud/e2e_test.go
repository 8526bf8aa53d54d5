package sud_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/providers/sud"
)

// The real client, the real sandbox over HTTP and NotifyHandler, together.

func TestExecutionThroughTheSandbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("with execute_fail_rate 1 every order ends EXECUTE_FAIL and query_order says so", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteFailRate: 1})
		for i := range 10 {
			id := fmt.Sprintf("fail-%d", i)
			if _, err := e.client.CreateOrder(ctx, order(id)); err != nil {
				t.Fatal(err)
			}
			o, err := e.client.QueryOrder(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != sud.StatusExecuteFail || o.MgID != "1468180338417074177" || o.Cmd != "specify_dice_roll" || o.Value != 100 {
				t.Fatalf("order = %+v", o)
			}
		}
	})

	t.Run("with execute_delay_ms 200 query_order shows EXECUTING, then the final state", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteDelayMS: 200})
		start := time.Now()
		if _, err := e.client.CreateOrder(ctx, order("slow")); err != nil {
			t.Fatal(err)
		}
		o, err := e.client.QueryOrder(ctx, "slow")
		if err != nil {
			t.Fatal(err)
		}
		if o.Status != sud.StatusExecuting && time.Since(start) < 200*time.Millisecond {
			t.Fatalf("status %s within the delay", o.Status)
		}
		kit.Eventually(t, 5*time.Second, "EXECUTE_SUCCESS", func() bool {
			o, err = e.client.QueryOrder(ctx, "slow")
			return err == nil && o.Status == sud.StatusExecuteSuccess
		})
		if el := time.Since(start); el < 200*time.Millisecond {
			t.Fatalf("final after %v, before the delay", el)
		}
	})
}

// notifyEnv is the sandbox notifying a NotifyHandler on its own server.
type notifyEnv struct {
	*env
	rc *receiver
}

func newNotifyEnv(t *testing.T, secret string, front func(http.Handler) http.Handler) *notifyEnv {
	t.Helper()
	e := newEnv(t)
	rc := newReceiver(t, sud.NotifyConfig{AppID: appID, AppSecret: secret})
	target := rc.srv.URL
	if front != nil {
		receiverURL := rc.srv.URL
		proxy := httptest.NewServer(front(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			forward(w, r, receiverURL)
		})))
		t.Cleanup(proxy.Close)
		target = proxy.URL
	}
	e.sb.SetSUDNotifyURL(target + "/sud/notify")
	return &notifyEnv{env: e, rc: rc}
}

// forward passes r to target and its answer back.
func forward(w http.ResponseWriter, r *http.Request, target string) {
	body, _ := io.ReadAll(r.Body)
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.Path, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func TestNotifyThroughTheSandbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("an order's notification reaches NotifyHandler verified, with what query_order reports", func(t *testing.T) {
		t.Parallel()
		e := newNotifyEnv(t, appSecret, nil)
		r, err := e.client.CreateOrder(ctx, order("notified"))
		if err != nil {
			t.Fatal(err)
		}
		kit.Eventually(t, 5*time.Second, "the notification", func() bool { return len(e.rc.notifications()) == 1 })
		n := e.rc.notifications()[0]
		q, err := e.client.QueryOrder(ctx, "notified")
		if err != nil {
			t.Fatal(err)
		}
		if n.Event != sud.EventOrderChanged || n.AppID != appID || n.NotifyID == "" || n.NotifyTime.IsZero() {
			t.Errorf("notification = %+v", n)
		}
		if n.Order != q || n.Order.OrderID != r.OrderID || n.Order.Status != sud.StatusExecuteSuccess {
			t.Errorf("notified order %+v\nqueried order  %+v", n.Order, q)
		}
		kit.Eventually(t, 5*time.Second, "the sandbox to count it delivered", func() bool {
			return e.sb.SUDNotifyStats() == sandbox.SUDNotifyStats{Delivered: 1}
		})
	})

	t.Run("a slow failing execution is notified as EXECUTE_FAIL after the delay", func(t *testing.T) {
		t.Parallel()
		e := newNotifyEnv(t, appSecret, nil)
		e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteDelayMS: 200, ExecuteFailRate: 1})
		start := time.Now()
		if _, err := e.client.CreateOrder(ctx, order("slow-fail")); err != nil {
			t.Fatal(err)
		}
		kit.Eventually(t, 5*time.Second, "the notification", func() bool { return len(e.rc.notifications()) == 1 })
		if el := time.Since(start); el < 200*time.Millisecond {
			t.Errorf("notified after %v, before the execution ended", el)
		}
		if n := e.rc.notifications()[0]; n.Order.Status != sud.StatusExecuteFail || n.Order.OutOrderID != "slow-fail" {
			t.Errorf("notification = %+v", n)
		}
	})

	t.Run("a notification tampered with on the way is refused every time and never passed on", func(t *testing.T) {
		t.Parallel()
		e := newNotifyEnv(t, appSecret, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Turn the failure into a success: the one forgery that
				// would make a saga charge for an action that never ran.
				body, _ := io.ReadAll(r.Body)
				body = bytes.Replace(body, []byte("EXECUTE_FAIL"), []byte("EXECUTE_SUCCESS"), 1)
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
				next.ServeHTTP(w, r)
			})
		})
		e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteFailRate: 1})
		if _, err := e.client.CreateOrder(ctx, order("forged")); err != nil {
			t.Fatal(err)
		}
		kit.Eventually(t, 10*time.Second, "the sandbox to give up", func() bool { return e.sb.SUDNotifyStats().Abandoned == 1 })
		if st := e.sb.SUDNotifyStats(); st.Delivered != 0 || st.Refused != 5 {
			t.Errorf("stats = %+v", st)
		}
		if n := e.rc.notifications(); len(n) != 0 {
			t.Fatalf("a forged notification was passed on: %+v", n)
		}
		if logs := e.rc.logs.String(); !strings.Contains(logs, "signature mismatch") || strings.Contains(logs, appSecret) {
			t.Errorf("receiver log:\n%s", logs)
		}
	})

	t.Run("a receiver with another secret refuses the sandbox's notifications", func(t *testing.T) {
		t.Parallel()
		e := newNotifyEnv(t, "another-secret", nil)
		if _, err := e.client.CreateOrder(ctx, order("wrong-secret")); err != nil {
			t.Fatal(err)
		}
		kit.Eventually(t, 5*time.Second, "a refusal", func() bool { return e.sb.SUDNotifyStats().Refused >= 1 })
		if n := e.rc.notifications(); len(n) != 0 {
			t.Fatalf("passed on: %+v", n)
		}
	})

	t.Run("a receiver that fails its onChange gets the notification again", func(t *testing.T) {
		t.Parallel()
		e := newNotifyEnv(t, appSecret, nil)
		e.rc.mu.Lock()
		e.rc.fail = fmt.Errorf("store down")
		e.rc.mu.Unlock()
		if _, err := e.client.CreateOrder(ctx, order("retried")); err != nil {
			t.Fatal(err)
		}
		kit.Eventually(t, 5*time.Second, "a refusal", func() bool { return e.sb.SUDNotifyStats().Refused >= 1 })
		e.rc.mu.Lock()
		e.rc.fail = nil
		e.rc.mu.Unlock()
		kit.Eventually(t, 5*time.Second, "the retry to be taken", func() bool { return len(e.rc.notifications()) == 1 })
		if n := e.rc.notifications()[0]; n.Order.OutOrderID != "retried" {
			t.Errorf("notification = %+v", n)
		}
	})
}

// skewedClient is the real client signing with a clock off by skew.
func skewedClient(t *testing.T, e *env, skew time.Duration) *sud.Client {
	t.Helper()
	c, err := sud.New(sud.Config{AppID: appID, AppSecret: appSecret,
		CreateOrderURL: e.base + "/sud/create_order", QueryOrderURL: e.base + "/sud/query_order",
		Now: func() time.Time { return time.Now().Add(skew) }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSandboxStrictness(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	skews := []struct {
		name string
		skew time.Duration
		ok   bool
	}{
		{"a clock a minute behind still signs valid requests", -time.Minute, true},
		{"a clock six minutes behind signs stale requests: final auth failed", -6 * time.Minute, false},
		{"a clock six minutes ahead signs future requests: final auth failed", 6 * time.Minute, false},
	}
	for _, tc := range skews {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			c := skewedClient(t, e, tc.skew)
			_, err := c.CreateOrder(ctx, order("skewed"))
			_, qerr := c.QueryOrder(ctx, "skewed")
			if tc.ok {
				if err != nil || qerr != nil {
					t.Fatalf("create %v, query %v", err, qerr)
				}
				return
			}
			for _, err := range []error{err, qerr} {
				if pe := wantErr(t, err, providers.Final, providers.CodeAuthFailed); pe.Ret != 10004 {
					t.Errorf("Ret = %d", pe.Ret)
				}
			}
			if n := len(e.sb.SUDOrders()); n != 0 {
				t.Fatalf("%d orders made by a stale signature", n)
			}
		})
	}

	t.Run("a request without Content-Type is a final parameter error and makes no order", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		strip := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			r.Header.Del("Content-Type")
			return http.DefaultTransport.RoundTrip(r)
		})}
		c, err := sud.New(sud.Config{AppID: appID, AppSecret: appSecret, HTTP: strip,
			CreateOrderURL: e.base + "/sud/create_order", QueryOrderURL: e.base + "/sud/query_order"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateOrder(ctx, order("untyped"))
		if pe := wantErr(t, err, providers.Final, providers.CodeParamError); pe.Ret != 10002 {
			t.Errorf("Ret = %d", pe.Ret)
		}
		if n := len(e.sb.SUDOrders()); n != 0 {
			t.Fatalf("%d orders", n)
		}
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
