package service

import (
	"cmp"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// EmbeddedNATS says whether serve runs its own JetStream on listen, by
// this rule: no natsURL, yes; a natsURL naming listen's own address, yes
// unless a NATS already answers there; any other URL, no. The rule lets
// COINSAGA_NATS_URL exported for the tools (nats://127.0.0.1:4222, the
// embedded server's address) leave `make run` as it was.
func EmbeddedNATS(natsURL, listen string, log *slog.Logger) bool {
	if natsURL == "" {
		return true
	}
	if !NamesAddress(natsURL, listen) {
		return false
	}
	if conn, err := net.DialTimeout("tcp", Dialable(listen), time.Second); err == nil {
		conn.Close()
		log.Info("a NATS server answers at --nats-url, the --nats-listen address: using it", "url", natsURL)
		return false
	}
	log.Info("no NATS server answers at --nats-url, the --nats-listen address: starting the embedded one there", "url", natsURL)
	return true
}

// NamesAddress reports whether the NATS URL u (one server) points at the
// listen address addr of this machine.
func NamesAddress(u, addr string) bool {
	if strings.Contains(u, ",") {
		return false
	}
	if !strings.Contains(u, "://") {
		u = "nats://" + u
	}
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "nats" && parsed.Scheme != "tcp") {
		return false
	}
	port := cmp.Or(parsed.Port(), "4222")
	host, listenPort, err := net.SplitHostPort(addr)
	if err != nil || port != listenPort {
		return false
	}
	loopback := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "localhost" || (ip != nil && ip.IsLoopback())
	}
	uh := parsed.Hostname()
	switch {
	case uh == host:
		return true
	case host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified():
		return loopback(uh)
	}
	return loopback(uh) && loopback(host)
}

// Dialable is a listen address a client can dial: 0.0.0.0:4222 and
// :4222 are reached at the loopback address.
func Dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// ProbeListen reports whether addr can be listened on now, so that a
// taken address fails serve before anything has started.
func ProbeListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}
