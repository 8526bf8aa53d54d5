package service

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestTheHTTPListenerAnswersHealthReadinessAndMetrics(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "coinsaga_test_total", Help: "a test counter"}))
	var ready atomic.Bool
	var notified atomic.Int32
	srv, addr := StartHTTP(ln, HTTP{
		Registry: reg, Logger: slog.New(slog.DiscardHandler),
		Ready:      func(*http.Request) (bool, string) { return ready.Load(), "not ready: nats CONNECTING" },
		NotifyPath: "/sud/notify",
		Notify:     http.HandlerFunc(func(http.ResponseWriter, *http.Request) { notified.Add(1) }),
	})
	t.Cleanup(func() { Shutdown(srv) })
	get := func(t *testing.T, method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	t.Run("healthz says ok while the process is up", func(t *testing.T) {
		if code, body := get(t, "GET", "/healthz"); code != 200 || body != "ok\n" {
			t.Errorf("%d %q", code, body)
		}
	})
	t.Run("readyz says why it is not ready, then ready", func(t *testing.T) {
		if code, body := get(t, "GET", "/readyz"); code != 503 || !strings.Contains(body, "not ready: nats CONNECTING") {
			t.Errorf("%d %q; want 503 with the reason", code, body)
		}
		ready.Store(true)
		if code, body := get(t, "GET", "/readyz"); code != 200 || body != "ready\n" {
			t.Errorf("%d %q; want 200 ready", code, body)
		}
	})
	t.Run("metrics serves the registry", func(t *testing.T) {
		if code, body := get(t, "GET", "/metrics"); code != 200 || !strings.Contains(body, "coinsaga_test_total 0") {
			t.Errorf("%d %q", code, body)
		}
	})
	t.Run("SUD's notifications are taken at their path by POST only", func(t *testing.T) {
		get(t, "POST", "/sud/notify")
		if code, _ := get(t, "GET", "/sud/notify"); code != http.StatusMethodNotAllowed {
			t.Errorf("GET /sud/notify: %d, want 405", code)
		}
		if n := notified.Load(); n != 1 {
			t.Errorf("%d notifications handled, want 1", n)
		}
	})
}

func TestWithoutANATSURLServeRunsItsOwn(t *testing.T) {
	t.Parallel()
	if !EmbeddedNATS("", "127.0.0.1:4222", slog.New(slog.DiscardHandler)) {
		t.Error("no --nats-url, and no embedded server")
	}
	if EmbeddedNATS("nats://nats.example:4222", "127.0.0.1:4222", slog.New(slog.DiscardHandler)) {
		t.Error("a URL elsewhere, and an embedded server")
	}
}
