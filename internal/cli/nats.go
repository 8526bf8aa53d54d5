package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/internal/embednats"
)

// DefaultNATSListen is where serve's embedded JetStream listens by
// default, and DefaultNATSURL where the tools look for NATS: the same
// address, so that the tools find a local serve with no flags.
const (
	DefaultNATSListen = "127.0.0.1:4222"
	DefaultNATSURL    = "nats://" + DefaultNATSListen
)

// NATS is how a command reaches NATS: the URL(s) and the credentials.
type NATS struct {
	URL, User, Password, Token, Creds, TLSCA string
}

// Connect dials NATS as "coinsaga <name>", reconnecting for ever. An
// error says in one line what to check.
func (n NATS) Connect(name string) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("coinsaga " + name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
	}
	if n.User != "" {
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	}
	if n.Token != "" {
		opts = append(opts, nats.Token(n.Token))
	}
	if n.Creds != "" {
		opts = append(opts, nats.UserCredentials(n.Creds))
	}
	if n.TLSCA != "" {
		opts = append(opts, nats.RootCAs(n.TLSCA))
	}
	nc, err := nats.Connect(n.URL, opts...)
	if errors.Is(err, nats.ErrNoServers) {
		return nil, Explained{fmt.Sprintf("no NATS server answers at %s: is `coinsaga serve` running there? (--nats-url, COINSAGA_NATS_URL)", n.URL), err}
	}
	if err != nil {
		return nil, Explained{fmt.Sprintf("connecting to NATS at %s: %s", n.URL, strings.TrimPrefix(err.Error(), "nats: ")), err}
	}
	return nc, nil
}

// ListenError is the one line for a listen address a command cannot
// use: which flag, the cause, and what to pass instead; who says what
// may hold the address, or what else the user may give.
func ListenError(name, addr string, src Sources, err error, who, or string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("--%s %s%s: address already in use (%s); pass --%s HOST:PORT%s", name, addr, src.From(name), who, name, or)
	}
	return fmt.Errorf("--%s %s%s: %s", name, addr, src.From(name), embednats.ListenCause(err))
}

// NATSURLError is the one line for the external NATS at url that serve
// cannot reach (err from Connect), saying how to get the embedded server
// instead.
func NATSURLError(url string, src Sources, err error) error {
	drop := "drop --nats-url"
	if env := src["nats-url"]; env != "" {
		drop = "unset " + env
	}
	var dns *net.DNSError
	var op *net.OpError
	why, fix := "", "start it"
	switch {
	case errors.As(err, &dns):
		why, fix = "the host "+dns.Name+" is not known", "fix the URL"
	case errors.Is(err, nats.ErrNoServers):
		why = "no NATS server answers"
	case errors.As(err, &op):
		why = "no NATS server answers (" + embednats.ListenCause(op) + ")"
	}
	if why != "" {
		return fmt.Errorf("--nats-url %s%s: %s; %s, or %s to run the embedded JetStream on --nats-listen",
			url, src.From("nats-url"), why, fix, drop)
	}
	cause := err
	if inner := errors.Unwrap(err); inner != nil {
		cause = inner
	}
	return fmt.Errorf("--nats-url %s%s: %s", url, src.From("nats-url"), strings.TrimPrefix(cause.Error(), "nats: "))
}

// TellConnection prints one line on w, starting with who, when nc loses
// its connection and one when it has it back, so that a quiet watch is not
// mistaken for a quiet system.
func TellConnection(nc *nats.Conn, w io.Writer, who string) {
	nc.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
		why := ""
		if err != nil {
			why = " (" + err.Error() + ")"
		}
		fmt.Fprintf(w, "%s: lost the connection to NATS%s; reconnecting, events will follow once it is back\n", who, why)
	})
	nc.SetReconnectHandler(func(c *nats.Conn) {
		fmt.Fprintf(w, "%s: reconnected to NATS at %s\n", who, c.ConnectedUrlRedacted())
	})
}
