package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// notice is one notification attempt as a receiver saw it.
type notice struct {
	header http.Header
	body   []byte
	// decoded
	NotifyID    string `json:"notify_id"`
	NotifyTime  string `json:"notify_time"`
	AppID       string `json:"app_id"`
	NotifyEvent string `json:"notify_event"`
	Data        struct {
		OrderID    string          `json:"order_id"`
		OutOrderID string          `json:"out_order_id"`
		OutGroupID string          `json:"out_group_id"`
		MgID       string          `json:"mg_id"`
		RoomID     string          `json:"room_id"`
		Cmd        string          `json:"cmd"`
		FromUID    string          `json:"from_uid"`
		ToUID      string          `json:"to_uid"`
		Value      int32           `json:"value"`
		Payload    json.RawMessage `json:"payload"`
		Status     string          `json:"status"`
	} `json:"data"`
}

// sink is a notify receiver that records every attempt and answers with
// answer(attempt number, from 1).
type sink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	seen   []notice
	answer func(n int) (int, string)
}

func newSink(t *testing.T, answer func(n int) (int, string)) *sink {
	t.Helper()
	if answer == nil {
		answer = func(int) (int, string) { return 200, `{"ret_code":0,"ret_msg":"SUCCESS"}` }
	}
	s := &sink{answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		n := notice{header: r.Header.Clone(), body: raw}
		_ = json.Unmarshal(raw, &n)
		s.mu.Lock()
		s.seen = append(s.seen, n)
		status, body := s.answer(len(s.seen))
		s.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) notices() []notice {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]notice(nil), s.seen...)
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// verify checks a notice's signature with the test's own signer.
func (e *env) verify(t *testing.T, n notice) {
	t.Helper()
	h := n.header
	if h.Get("Sud-AppId") != e.cfg.SUDAppID || h.Get("Sud-Nonce") == "" {
		t.Errorf("headers = %v", h)
	}
	if want := strconv.FormatInt(e.clock.Now().Unix(), 10); h.Get("Sud-Timestamp") != want {
		t.Errorf("Sud-Timestamp = %q, want the sandbox clock in seconds, %s", h.Get("Sud-Timestamp"), want)
	}
	want := testSudSign(e.cfg.SUDAppSecret, e.cfg.SUDAppID, h.Get("Sud-Timestamp"), h.Get("Sud-Nonce"), n.body)
	if h.Get("Sud-Signature") != want {
		t.Errorf("Sud-Signature = %q, want %q", h.Get("Sud-Signature"), want)
	}
	if ct := h.Get("Content-Type"); ct != "application/json;charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestSUDNotify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("an executed order is notified once, signed, with the order's fields", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		rc := newSink(t, nil)
		if err := sandbox.NewAdminClient(e.srv.URL).SetSUDNotifyURL(ctx, rc.srv.URL+"/sud/notify"); err != nil {
			t.Fatal(err)
		}
		if got := e.sb.SUDNotifyURL(); got != rc.srv.URL+"/sud/notify" {
			t.Fatalf("notify url = %q", got)
		}
		created := dataOf(t, e.sud("/sud/create_order", validOrder("o-1")))
		waitFor(t, "the notification", func() bool { return e.sb.SUDNotifyStats().Delivered == 1 })
		got := rc.notices()
		if len(got) != 1 {
			t.Fatalf("%d notifications", len(got))
		}
		n := got[0]
		e.verify(t, n)
		d := n.Data
		if n.NotifyEvent != "sud.mg.merchant.order.changed" || n.AppID != e.cfg.SUDAppID || !hex64.MatchString(n.NotifyID) ||
			n.NotifyTime != strconv.FormatInt(e.clock.Now().UnixMilli(), 10) {
			t.Errorf("envelope = %+v", n)
		}
		if d.OrderID != created.OrderID || d.OutOrderID != "o-1" || d.OutGroupID != "g1" || d.MgID != "1468180338417074177" ||
			d.RoomID != "9009" || d.Cmd != "specify_dice_roll" || d.FromUID != "001" || d.ToUID != "002" || d.Value != 100 ||
			string(d.Payload) != `{"point":6,"seq":1}` || d.Status != "EXECUTE_SUCCESS" {
			t.Errorf("data = %+v", d)
		}
		if st := e.sb.SUDNotifyStats(); st != (sandbox.SUDNotifyStats{Delivered: 1}) {
			t.Errorf("stats = %+v", st)
		}
	})

	t.Run("a delayed order is notified when its execution ends on the sandbox clock, with its final status", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		rc := newSink(t, nil)
		e.sb.SetSUDNotifyURL(rc.srv.URL)
		e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteDelayMS: 200, ExecuteFailRate: 1})
		e.sud("/sud/create_order", validOrder("o-1"))
		if st := e.sb.SUDNotifyStats(); st.Pending != 1 || rc.count() != 0 {
			t.Fatalf("before the delay: stats %+v, %d notifications", st, rc.count())
		}
		e.clock.Advance(200 * time.Millisecond)
		waitFor(t, "the notification", func() bool { return e.sb.SUDNotifyStats().Delivered == 1 })
		if n := rc.notices(); len(n) != 1 || n[0].Data.Status != "EXECUTE_FAIL" {
			t.Fatalf("notifications = %+v", n)
		}
	})

	t.Run("a refused notification is sent again, freshly signed, with the same notify_id", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		rc := newSink(t, func(n int) (int, string) {
			switch n {
			case 1:
				return 500, "down"
			case 2:
				return 200, `{"ret_code":1,"ret_msg":"busy"}`
			}
			return 200, `{"ret_code":0,"ret_msg":"SUCCESS"}`
		})
		e.sb.SetSUDNotifyURL(rc.srv.URL)
		e.sud("/sud/create_order", validOrder("o-1"))
		waitFor(t, "the third attempt", func() bool { return e.sb.SUDNotifyStats().Delivered == 1 })
		got := rc.notices()
		if len(got) != 3 {
			t.Fatalf("%d attempts, want 3", len(got))
		}
		nonces := map[string]bool{}
		for _, n := range got {
			e.verify(t, n)
			nonces[n.header.Get("Sud-Nonce")] = true
			if n.NotifyID != got[0].NotifyID {
				t.Errorf("notify_id changed between attempts: %s, %s", got[0].NotifyID, n.NotifyID)
			}
		}
		if len(nonces) != 3 {
			t.Errorf("nonces repeated: %v", nonces)
		}
		if st := e.sb.SUDNotifyStats(); st != (sandbox.SUDNotifyStats{Delivered: 1, Refused: 2}) {
			t.Errorf("stats = %+v", st)
		}
	})

	t.Run("an answer other than the documented SUCCESS is a refusal, given up after five attempts", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		rc := newSink(t, func(int) (int, string) { return 200, `{"ret_code":0,"ret_msg":"ok"}` })
		e.sb.SetSUDNotifyURL(rc.srv.URL)
		e.sud("/sud/create_order", validOrder("o-1"))
		waitFor(t, "the notification to be abandoned", func() bool { return e.sb.SUDNotifyStats().Abandoned == 1 })
		if st := e.sb.SUDNotifyStats(); st != (sandbox.SUDNotifyStats{Refused: 5, Abandoned: 1}) || rc.count() != 5 {
			t.Fatalf("stats %+v after %d attempts", st, rc.count())
		}
	})

	t.Run("without a notify URL nothing is sent or kept", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.sud("/sud/create_order", validOrder("o-1"))
		if st := e.sb.SUDNotifyStats(); st != (sandbox.SUDNotifyStats{}) {
			t.Fatalf("stats = %+v", st)
		}
	})

	t.Run("clearing the URL drops the notifications still pending", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		rc := newSink(t, nil)
		a := sandbox.NewAdminClient(e.srv.URL)
		if err := a.SetSUDNotifyURL(ctx, rc.srv.URL); err != nil {
			t.Fatal(err)
		}
		e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteDelayMS: 1000})
		e.sud("/sud/create_order", validOrder("o-1"))
		if err := a.SetSUDNotifyURL(ctx, ""); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
		waitFor(t, "the pending notification to go", func() bool { return e.sb.SUDNotifyStats().Pending == 0 })
		if st := e.sb.SUDNotifyStats(); st.Delivered != 0 || rc.count() != 0 {
			t.Fatalf("stats %+v, %d notifications", st, rc.count())
		}
	})

}

// Not parallel: it counts goroutines, which parallel tests would disturb.
func TestSUDNotifyScales(t *testing.T) {
	t.Run("many executing orders share one scheduler, not a goroutine each", func(t *testing.T) {
		e := newEnv(t)
		rc := newSink(t, nil)
		e.sb.SetSUDNotifyURL(rc.srv.URL)
		e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteDelayMS: 60_000})
		const orders = 1000
		before := runtime.NumGoroutine()
		for i := range orders {
			e.sud("/sud/create_order", validOrder(fmt.Sprintf("o-%d", i)))
		}
		if st := e.sb.SUDNotifyStats(); st.Pending != orders {
			t.Fatalf("stats = %+v", st)
		}
		if grew := runtime.NumGoroutine() - before; grew > 50 {
			t.Fatalf("%d goroutines more for %d executing orders", grew, orders)
		}
		e.clock.Advance(time.Minute)
		waitFor(t, "every notification", func() bool { return e.sb.SUDNotifyStats().Delivered == orders })
		seen := map[string]bool{}
		for _, n := range rc.notices() {
			seen[n.Data.OutOrderID] = true
		}
		if len(seen) != orders {
			t.Fatalf("%d distinct orders notified", len(seen))
		}
	})
}

func TestSUDNotifyURL(t *testing.T) {
	t.Parallel()
	bad := []struct {
		name string
		body string
	}{
		{"a relative URL", `{"url":"/notify"}`},
		{"another scheme", `{"url":"ftp://host/notify"}`},
		{"no url field", `{}`},
		{"an unknown field", `{"url":"http://127.0.0.1/n","retries":3}`},
		{"a body that is not JSON", `url=http://127.0.0.1/n`},
	}
	for _, tc := range bad {
		t.Run(tc.name+" is refused with 400 and changes nothing", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.sb.SetSUDNotifyURL("http://127.0.0.1:1/kept")
			req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/_sandbox/sud/notify", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			if got := e.sb.SUDNotifyURL(); got != "http://127.0.0.1:1/kept" {
				t.Fatalf("notify url = %q", got)
			}
		})
	}

	t.Run("SetSUDNotifyURL panics on a URL it cannot use", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		wantPanic(t, "SetSUDNotifyURL accepted a relative URL", func() { e.sb.SetSUDNotifyURL("notify") })
	})

	t.Run("the notify API is loopback only like the rest of the admin API", func(t *testing.T) {
		t.Parallel()
		sb := sandbox.New(sandbox.Config{Seed: 1})
		req := httptest.NewRequest(http.MethodPut, "/_sandbox/sud/notify", strings.NewReader(`{"url":"http://127.0.0.1/n"}`))
		req.RemoteAddr = "203.0.113.7:4000"
		w := httptest.NewRecorder()
		sb.ServeHTTP(w, req)
		if w.Code != http.StatusForbidden || sb.SUDNotifyURL() != "" {
			t.Fatalf("status = %d, url %q", w.Code, sb.SUDNotifyURL())
		}
	})
}
