package embednats

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"testing"
)

// nats-server reports a failed listen only through its logger's Fatalf,
// and then is never ready: the adapter hands it to Start at once.
func TestTheServersListenErrorReachesStart(t *testing.T) {
	fatal := make(chan error, 1)
	a := slogAdapter{l: slog.New(slog.DiscardHandler), fatal: fatal}
	cause := &net.OpError{Op: "listen", Net: "tcp", Err: fmt.Errorf("bind: %w", syscall.EADDRINUSE)}
	a.Fatalf("Error listening on port: %s, %q", "127.0.0.1:4222", cause)
	a.Fatalf("a second fatal error does not block")
	var le *ListenError
	select {
	case err := <-fatal:
		if !errors.As(err, &le) || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("got %v, want a ListenError with EADDRINUSE", err)
		}
	default:
		t.Fatal("Fatalf passed nothing on")
	}
	le.Addr = "127.0.0.1:4222"
	if got, want := le.Error(), "listen 127.0.0.1:4222: address already in use"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
