package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The HTTP servers' timeouts, one place for all of them.
const (
	// ReadHeaderTimeout bounds how long a client may take to send its
	// request headers (a slow client holds a connection, no more).
	ReadHeaderTimeout = 10 * time.Second
	// ShutdownTimeout is how long a stopping server lets the requests
	// under way finish.
	ShutdownTimeout = 5 * time.Second
)

// NewHTTPServer serves h with this service's timeouts.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout}
}

// Shutdown stops srv, letting requests under way finish within
// ShutdownTimeout.
func Shutdown(srv *http.Server) { _ = shutdown(srv) }

func shutdown(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// HTTP is what serve's HTTP listener answers.
type HTTP struct {
	Registry *prometheus.Registry // GET /metrics
	// Ready says whether the process takes work (GET /readyz), and when
	// not, why.
	Ready func(r *http.Request) (bool, string)
	// Notify, when not nil, takes SUD's notifications at POST NotifyPath.
	NotifyPath string
	Notify     http.Handler
	// UI, when not nil, takes every other path: the operator console.
	UI     http.Handler
	Logger *slog.Logger
}

// StartHTTP serves /metrics, /healthz (the process is up) and /readyz (it
// is taking work) on ln, and returns the server and its address.
func StartHTTP(ln net.Listener, h HTTP) (*http.Server, string) {
	mux := http.NewServeMux()
	if h.UI != nil {
		mux.Handle("/", h.UI)
	}
	if h.Notify != nil {
		mux.Handle("POST "+h.NotifyPath, h.Notify)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(h.Registry, promhttp.HandlerOpts{Registry: h.Registry}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(rw, "ok")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		if ok, why := h.Ready(r); !ok {
			http.Error(rw, why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "ready")
	})
	srv := NewHTTPServer(mux)
	h.Logger.Info("http listening", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.Logger.Error("http server", "err", err)
		}
	}()
	return srv, ln.Addr().String()
}
