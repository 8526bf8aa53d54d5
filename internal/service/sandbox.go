package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// StartSandbox serves the sandbox providers on addr in this process and
// returns the URL the clients of this process reach it at. It keeps the
// sandbox's ledger in stateFile ("" for memory only), so that a restart
// finishes the orders in flight against the accounts and bills they left.
// The stop function serves no more requests, then writes the file a last
// time.
func StartSandbox(addr, stateFile string, log *slog.Logger) (*sandbox.Sandbox, string, func(), error) {
	cfg := sandbox.DefaultConfig()
	cfg.Games = events.DefaultCatalog()
	cfg.Logger = log.With("component", "sandbox")
	cfg.StateFile = stateFile
	sb, err := sandbox.Open(cfg)
	if err != nil {
		return nil, "", nil, err
	}
	if stateFile != "" {
		log.Info("sandbox state file", "file", stateFile, "bills", len(sb.Bills()), "sud_orders", len(sb.SUDOrders()))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = sb.Close()
		return nil, "", nil, fmt.Errorf("sandbox listen %s: %w", addr, err)
	}
	srv := NewHTTPServer(sb)
	go func() { _ = srv.Serve(ln) }()
	stop := func() {
		Shutdown(srv)
		if err := sb.Close(); err != nil {
			log.Error("sandbox state not saved", "file", stateFile, "err", err)
		}
	}
	// The clients in this process reach the sandbox on loopback, also when
	// it listens on every interface (the container image's 0.0.0.0:9311).
	// Go listens on both IPv4 and IPv6 for 0.0.0.0 and [::] alike, so
	// 127.0.0.1 answers either way.
	a := ln.Addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return sb, "http://" + net.JoinHostPort(host, strconv.Itoa(a.Port)), stop, nil
}

// ServeSandbox serves the sandbox providers of cfg on ln until ctx is
// done, then shuts down, as `coinsaga sandbox` does.
func ServeSandbox(ctx context.Context, ln net.Listener, cfg sandbox.Config) error {
	srv := NewHTTPServer(sandbox.New(cfg))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return shutdown(srv)
}
