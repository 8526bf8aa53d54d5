// Package embednats runs a nats-server with JetStream inside the coinsaga
// process, for `coinsaga serve` without --nats-url and for tests.
package embednats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds the wait for the server to accept clients; JetStream
// recovery of a large store dominates it.
const readyTimeout = 10 * time.Second

// Options configures the embedded server.
type Options struct {
	// Listen is host:port for clients; port 0 picks a free port (read it
	// back with ClientURL). Empty means 127.0.0.1:4222.
	Listen string
	// StoreDir holds the JetStream streams; required, so that nothing
	// durable ever lands in a temporary directory by accident.
	StoreDir string
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
	// MaxMemory and MaxStore cap JetStream memory and disk use in bytes;
	// zero lets the server size them from the machine.
	MaxMemory, MaxStore int64
	// MaxPayload is the largest message, headers included, a client may
	// publish; zero means the server's default of 1 MiB.
	MaxPayload int32
}

// ListenError says the server could not listen on Addr, and why. Start
// returns it at once, not after the ready timeout.
type ListenError struct {
	Addr string
	Err  error
}

func (e *ListenError) Error() string { return "listen " + e.Addr + ": " + ListenCause(e.Err) }
func (e *ListenError) Unwrap() error { return e.Err }

// ListenCause is why a listen failed, in the system's words ("address
// already in use"), without the Go operation around it.
func ListenCause(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// Server is a running embedded nats-server.
type Server struct {
	ns   *server.Server
	opts *server.Options
	log  *slog.Logger
}

// Start starts the server and returns once it accepts clients. It installs
// no signal handlers: the host process owns shutdown.
func Start(o Options) (*Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("embedded nats: a JetStream store directory is required")
	}
	listen := o.Listen
	if listen == "" {
		listen = "127.0.0.1:4222"
	}
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("embedded nats: listen address %q: bad port", listen)
	}
	if port == 0 {
		// nats-server reads 0 as "the default port 4222".
		port = server.RANDOM_PORT
	} else {
		// A port in use is the common failure; say so before JetStream
		// recovers its store, which comes before the server listens.
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return nil, &ListenError{Addr: listen, Err: err}
		}
		ln.Close()
	}
	opts := &server.Options{
		Host:                   host,
		Port:                   port,
		JetStream:              true,
		StoreDir:               o.StoreDir,
		JetStreamMaxMemory:     o.MaxMemory,
		JetStreamMaxStore:      o.MaxStore,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
		NoLog:                  o.Logger == nil,
		MaxPayload:             o.MaxPayload,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	// The server reports a failed listen only in its log (Fatalf), and
	// then never gets ready: the adapter passes the error on at once.
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	fatal := make(chan error, 1)
	debug := logger.Enabled(context.Background(), slog.LevelDebug)
	ns.SetLoggerV2(slogAdapter{l: logger, fatal: fatal}, debug, false, false)
	go ns.Start()
	if err := waitReady(ns, fatal, listen); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, err
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("embedded nats: JetStream did not start (see the server log)")
	}
	return &Server{ns: ns, opts: opts, log: logger}, nil
}

// waitReady waits until ns accepts clients, a fatal error is logged, or
// readyTimeout passes.
func waitReady(ns *server.Server, fatal <-chan error, listen string) error {
	deadline := time.Now().Add(readyTimeout)
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		select {
		case err := <-fatal:
			var le *ListenError
			if errors.As(err, &le) {
				le.Addr = listen
				return le
			}
			return fmt.Errorf("embedded nats: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded nats: not ready for connections on %s within %s", listen, readyTimeout)
		}
	}
	return nil
}

// JetStreamEnabled reports whether JetStream runs. The server shuts it
// down by itself when a write finds the disk full ("JetStream out of
// resources, will be DISABLED") and, embedded, never starts it again.
func (s *Server) JetStreamEnabled() bool { return s.ns.JetStreamEnabled() }

// KeepJetStream starts JetStream again, every interval until ctx ends,
// whenever the server has shut it down, so that a full disk that was
// cleared needs no restart. Until then clients get "JetStream not
// enabled" and a worker reports itself not ready.
func (s *Server) KeepJetStream(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.ns.JetStreamEnabled() {
			continue
		}
		free, _ := FreeBytes(s.opts.StoreDir)
		if err := s.restartJetStream(); err != nil {
			s.log.Warn("embedded JetStream is still off; free disk space under its store dir", "store_dir", s.opts.StoreDir, "free_bytes", free, "err", err)
			continue
		}
		s.log.Info("embedded JetStream started again", "store_dir", s.opts.StoreDir, "free_bytes", free)
	}
}

// restartJetStream asks the server to reload its own options: a reload
// that finds JetStream off although configured starts it again, which is
// nats-server's supported way back after it ran out of disk.
func (s *Server) restartJetStream() error {
	if err := s.ns.ReloadOptions(s.opts.Clone()); err != nil {
		return err
	}
	if !s.ns.JetStreamEnabled() {
		return errors.New("JetStream did not start (see the server log)")
	}
	return nil
}

// FreeBytes is the disk space an unprivileged process may still use in
// the file system that holds dir.
func FreeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("free space under %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// ClientURL is the nats:// URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Shutdown stops the server and waits until it has, so the store can be
// reopened or removed right after.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// StartTest starts a server on a random loopback port with its store in a
// test temporary directory, and shuts it down when the test ends. Each
// tune, if any, may change the options first (a smaller MaxPayload, say).
func StartTest(t testing.TB, tune ...func(*Options)) *Server {
	t.Helper()
	o := Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}
	for _, f := range tune {
		f(&o)
	}
	s, err := Start(o)
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// slogAdapter routes nats-server's printf-style log to slog. Trace and
// debug only reach it when enabled, and are logged at debug level. The
// first fatal error goes to fatal too: a listen error as a ListenError.
type slogAdapter struct {
	l     *slog.Logger
	fatal chan<- error
}

func (a slogAdapter) log(level slog.Level, format string, v []any) {
	if !a.l.Enabled(context.Background(), level) {
		return
	}
	a.l.Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "nats-server")
}

func (a slogAdapter) Noticef(format string, v ...any) { a.log(slog.LevelInfo, format, v) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.log(slog.LevelWarn, format, v) }
func (a slogAdapter) Fatalf(format string, v ...any) {
	a.log(slog.LevelError, format, v)
	err := fmt.Errorf(format, v...)
	for _, x := range v {
		if cause, ok := x.(error); ok && strings.HasPrefix(format, "Error listening") {
			err = &ListenError{Err: cause}
			break
		}
	}
	select {
	case a.fatal <- err:
	default:
	}
}

func (a slogAdapter) Errorf(format string, v ...any) { a.log(slog.LevelError, format, v) }
func (a slogAdapter) Debugf(format string, v ...any) { a.log(slog.LevelDebug, format, v) }
func (a slogAdapter) Tracef(format string, v ...any) { a.log(slog.LevelDebug, format, v) }
