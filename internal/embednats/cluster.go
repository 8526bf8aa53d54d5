package embednats

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a JetStream cluster of embedded servers on loopback, for tests
// of replicated streams.
type Cluster struct {
	Servers []*Server
}

// ClientURLs is the comma-separated list of the servers' client URLs, as
// --nats-url takes it.
func (c *Cluster) ClientURLs() string {
	urls := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

// StartTestCluster starts an n-node JetStream cluster on loopback, each
// node storing in its own test temporary directory, and waits until it
// has a meta leader. Client ports are random. A JetStream cluster needs
// every node's routes configured at start, so the route ports are taken
// from the kernel, released and handed to the nodes; should another
// process grab one in between, the start is tried again.
func StartTestCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	var lastErr error
	for range 3 {
		c, err := startCluster(t, n)
		if err == nil {
			return c
		}
		lastErr = err
	}
	t.Fatalf("start a %d-node JetStream cluster: %v", n, lastErr)
	return nil
}

func startCluster(t testing.TB, n int) (*Cluster, error) {
	ports := make([]int, n)
	routes := make([]*url.URL, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes[i] = &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])}
	}
	dir := t.TempDir()
	c := &Cluster{}
	stopAll := func() {
		for _, s := range c.Servers {
			s.Shutdown()
		}
	}
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			NoSigs: true, NoLog: true, DisableJetStreamBanner: true,
			Cluster: server.ClusterOpts{Name: "coinsaga-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  routes,
		}
		ns, err := server.NewServer(opts)
		if err != nil {
			stopAll()
			return nil, fmt.Errorf("node %d: %w", i+1, err)
		}
		go ns.Start()
		c.Servers = append(c.Servers, &Server{ns: ns, opts: opts})
	}
	for i, s := range c.Servers {
		if !s.ns.ReadyForConnections(readyTimeout) {
			stopAll()
			return nil, fmt.Errorf("node %d not ready within %s", i+1, readyTimeout)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		leaders := 0
		for _, s := range c.Servers {
			if s.ns.JetStreamIsLeader() {
				leaders++
			}
		}
		if leaders == 1 {
			break
		}
		if time.Now().After(deadline) {
			stopAll()
			return nil, fmt.Errorf("no JetStream meta leader within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(stopAll)
	return c, nil
}
