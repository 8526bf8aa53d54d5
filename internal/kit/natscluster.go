package kit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NATSCluster is a JetStream cluster of nats-server processes on
// loopback, one per configuration file, each killable with SIGKILL and
// restarted as the same node: the same name (the file's server_name),
// store directory and ports, so that the clients' URL list stays valid.
type NATSCluster struct {
	t     testing.TB
	bin   string
	nodes []*natsNode
}

type natsNode struct {
	conf                    string
	client, route, monitor  string // host:port, reserved for the test
	storeDir, logPath, name string
	mu                      sync.Mutex
	cmd                     *exec.Cmd
	exited                  chan struct{}
	starts                  int
}

// natsReadyTimeout bounds the wait for a cluster, or a restarted node, to
// be ready: 30-40 s is what a loaded machine may need (scale-out.md).
const natsReadyTimeout = 60 * time.Second

// StartNATSCluster runs one nats-server per configuration file (each a
// node of one cluster, naming itself with server_name), overriding on the
// command line only the addresses and the store: client, cluster and
// monitoring ports on 127.0.0.1, routes to the other nodes, a store
// directory of the test's own. It waits until the cluster is ready (see
// WaitReady); the nodes are killed when the test ends.
func StartNATSCluster(t testing.TB, confs ...string) *NATSCluster {
	t.Helper()
	if len(confs) < 1 {
		t.Fatal("StartNATSCluster: no configuration files")
	}
	c := &NATSCluster{t: t, bin: NATSServerBinary(t)}
	dir := t.TempDir()
	for i, conf := range confs {
		abs, err := filepath.Abs(conf)
		if err != nil {
			t.Fatal(err)
		}
		n := &natsNode{conf: abs, client: ReserveAddr(t), route: ReserveAddr(t), monitor: ReserveAddr(t),
			storeDir: filepath.Join(dir, fmt.Sprintf("node-%d", i+1)), logPath: filepath.Join(dir, fmt.Sprintf("node-%d.log", i+1))}
		c.nodes = append(c.nodes, n)
	}
	for i := range c.nodes {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.kill(i)
		}
	})
	c.WaitReady(natsReadyTimeout)
	return c
}

// Size is the number of nodes.
func (c *NATSCluster) Size() int { return len(c.nodes) }

// ClientURLs is every node's client URL, comma-separated, as --nats-url
// and nats.Connect take it.
func (c *NATSCluster) ClientURLs() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = "nats://" + n.client
	}
	return strings.Join(urls, ",")
}

// Name is node i's server name, as its configuration file sets it (known
// once the cluster was ready).
func (c *NATSCluster) Name(i int) string { return c.nodes[i].name }

// Args is node i's nats-server command line.
func (c *NATSCluster) Args(i int) []string {
	n := c.nodes[i]
	var routes []string
	for _, o := range c.nodes {
		routes = append(routes, "nats-route://"+o.route)
	}
	host, port, _ := net.SplitHostPort(n.client)
	_, mport, _ := net.SplitHostPort(n.monitor)
	return []string{"-c", n.conf, "-a", host, "-p", port, "-m", mport,
		"--cluster", "nats://" + n.route, "--routes", strings.Join(routes, ","), "-sd", n.storeDir}
}

func (c *NATSCluster) start(i int) {
	c.t.Helper()
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close()
	n.starts++
	fmt.Fprintf(logf, "=== start %d: %s %s\n", n.starts, c.bin, strings.Join(c.Args(i), " "))
	cmd := exec.Command(c.bin, c.Args(i)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A test binary that dies must not leave nodes running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	exited := make(chan struct{})
	started := make(chan error, 1)
	// The parent-death signal fires when the thread that started the
	// child exits: keep that thread for the child's life.
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(exited)
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		c.t.Fatalf("start nats node %d: %v", i+1, err)
	}
	n.cmd, n.exited = cmd, exited
}

func (c *NATSCluster) kill(i int) bool {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
	default:
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.exited
	}
	n.cmd = nil
	return true
}

// Kill ends node i with SIGKILL, as a crash would; its store stays.
func (c *NATSCluster) Kill(i int) {
	c.t.Helper()
	if !c.kill(i) {
		c.t.Fatalf("kill nats node %d: it is not running", i+1)
	}
}

// Restart starts node i again after a Kill, with the same name, store and
// ports, and waits until it is back in the cluster and current.
func (c *NATSCluster) Restart(i int) {
	c.t.Helper()
	c.Start(i)
	c.WaitReady(natsReadyTimeout)
}

// Start starts node i again after a Kill, as Restart does, but returns
// without waiting: for a test that brings back several nodes of a cluster
// that lost its quorum, then calls WaitReady once.
func (c *NATSCluster) Start(i int) {
	c.t.Helper()
	c.nodes[i].mu.Lock()
	running := c.nodes[i].cmd != nil
	c.nodes[i].mu.Unlock()
	if running {
		c.t.Fatalf("restart nats node %d: it still runs", i+1)
	}
	c.start(i)
}

// Log is node i's output so far, every start's.
func (c *NATSCluster) Log(i int) string {
	b, err := os.ReadFile(c.nodes[i].logPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// WaitReady waits until the cluster is whole: every node answers
// /healthz (its JetStream current: meta leader known, its streams and
// consumers caught up), all agree on one meta leader, and that leader
// sees every other node as a current peer. It fails the test, with the
// nodes' log tails, after timeout.
func (c *NATSCluster) WaitReady(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	pause := 20 * time.Millisecond
	var why error
	for {
		if why = c.ready(); why == nil {
			return
		}
		if i, ok := c.exitedNode(); ok {
			why = fmt.Errorf("node %d exited", i+1)
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(pause) // polling HTTP: there is no event to wait on
		pause = min(2*pause, 250*time.Millisecond)
	}
	c.t.Fatalf("the NATS cluster is not ready within %s: %v\n%s", timeout, why, c.Tails(15))
}

// Tails is the last n lines of every node's log, for a failure message.
func (c *NATSCluster) Tails(n int) string {
	var tails strings.Builder
	for i := range c.nodes {
		log := strings.Split(strings.TrimRight(c.Log(i), "\n"), "\n")
		fmt.Fprintf(&tails, "--- node %d:\n%s\n", i+1, strings.Join(log[max(0, len(log)-n):], "\n"))
	}
	return tails.String()
}

// exitedNode returns a node that was started and has exited since.
func (c *NATSCluster) exitedNode() (int, bool) {
	for i, n := range c.nodes {
		n.mu.Lock()
		cmd, exited := n.cmd, n.exited
		n.mu.Unlock()
		if cmd == nil {
			continue
		}
		select {
		case <-exited:
			return i, true
		default:
		}
	}
	return 0, false
}

var monitorClient = &http.Client{Timeout: 2 * time.Second}

func (c *NATSCluster) ready() error {
	var leader string
	names := map[string]bool{}
	for i, n := range c.nodes {
		if err := getMonitor(n.monitor, "/healthz", nil); err != nil {
			return fmt.Errorf("node %d: %w", i+1, err)
		}
		var jsz struct {
			Meta *struct {
				Leader   string `json:"leader"`
				Size     int    `json:"cluster_size"`
				Replicas []struct {
					Name    string `json:"name"`
					Current bool   `json:"current"`
					Offline bool   `json:"offline"`
				} `json:"replicas"`
			} `json:"meta_cluster"`
		}
		var varz struct {
			Name string `json:"server_name"`
		}
		if err := getMonitor(n.monitor, "/varz", &varz); err != nil {
			return fmt.Errorf("node %d: %w", i+1, err)
		}
		n.name = varz.Name
		names[varz.Name] = true
		if err := getMonitor(n.monitor, "/jsz", &jsz); err != nil {
			return fmt.Errorf("node %d: %w", i+1, err)
		}
		switch {
		case jsz.Meta == nil || jsz.Meta.Leader == "":
			return fmt.Errorf("node %d knows no meta leader", i+1)
		case leader != "" && jsz.Meta.Leader != leader:
			return fmt.Errorf("node %d follows meta leader %s, another %s", i+1, jsz.Meta.Leader, leader)
		}
		leader = jsz.Meta.Leader
		if jsz.Meta.Leader != varz.Name {
			continue
		}
		current := 0
		for _, r := range jsz.Meta.Replicas {
			if r.Current && !r.Offline {
				current++
			}
		}
		if current != len(c.nodes)-1 {
			return fmt.Errorf("meta leader %s sees %d current peers, want %d", leader, current, len(c.nodes)-1)
		}
	}
	if len(names) != len(c.nodes) {
		return fmt.Errorf("the nodes' server names %v are not %d different ones", names, len(c.nodes))
	}
	if !names[leader] {
		return fmt.Errorf("meta leader %s is none of the nodes", leader)
	}
	return c.streamsCurrent()
}

// streamsCurrent checks every replicated stream from its leader's side:
// all its other replicas online, current and not lagging. Healthz and the
// meta group alone were seen to pass while a restarted node's stream
// replica still caught up; killing another node then left that stream
// without a quorum for minutes.
func (c *NATSCluster) streamsCurrent() error {
	for i, n := range c.nodes {
		var jsz struct {
			Accounts []struct {
				Streams []struct {
					Name   string `json:"name"`
					Config *struct {
						Replicas int `json:"num_replicas"`
					} `json:"config"`
					Cluster *struct {
						Leader   string `json:"leader"`
						Replicas []struct {
							Name    string `json:"name"`
							Current bool   `json:"current"`
							Offline bool   `json:"offline"`
							Lag     uint64 `json:"lag"`
						} `json:"replicas"`
					} `json:"cluster"`
				} `json:"stream_detail"`
			} `json:"account_details"`
		}
		if err := getMonitor(n.monitor, "/jsz?accounts=true&streams=true&config=true", &jsz); err != nil {
			return fmt.Errorf("node %d: %w", i+1, err)
		}
		for _, a := range jsz.Accounts {
			for _, st := range a.Streams {
				if st.Cluster == nil || st.Config == nil || st.Config.Replicas < 2 {
					continue
				}
				if st.Cluster.Leader == "" {
					return fmt.Errorf("stream %s has no leader (seen from node %d)", st.Name, i+1)
				}
				if st.Cluster.Leader != n.name {
					continue
				}
				current := 0
				for _, r := range st.Cluster.Replicas {
					if r.Current && !r.Offline && r.Lag == 0 {
						current++
					}
				}
				if current != st.Config.Replicas-1 {
					return fmt.Errorf("stream %s: its leader %s sees %d current replicas, want %d", st.Name, n.name, current, st.Config.Replicas-1)
				}
			}
		}
	}
	return nil
}

func getMonitor(addr, path string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := monitorClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if v == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

var natsServer struct {
	once sync.Once
	path string
	err  error
}

// NATSServerBinary returns the path of a nats-server binary of the
// version go.mod requires, built from the module cache with `go build`
// once per machine and version (kept under the temporary directory; a
// concurrent test binary builds to a file of its own and renames it into
// place). The test fails when it cannot be built.
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	natsServer.once.Do(func() { natsServer.path, natsServer.err = buildNATSServer() })
	if natsServer.err != nil {
		t.Fatalf("a nats-server binary for the cluster: %v", natsServer.err)
	}
	return natsServer.path
}

const natsServerModule = "github.com/nats-io/nats-server/v2"

func buildNATSServer() (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	// A test binary records no dependencies (debug.ReadBuildInfo), so the
	// module asks go.mod; run in the test's package directory, inside the
	// module.
	out, err := exec.Command(goCmd, "list", "-m", "-f", "{{.Version}}", natsServerModule).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", natsServerModule, err)
	}
	version := strings.TrimSpace(string(out))
	if version == "" {
		return "", fmt.Errorf("go list -m %s: no version", natsServerModule)
	}
	dir := filepath.Join(os.TempDir(), "coinsaga-nats-server-"+version)
	bin := filepath.Join(dir, "nats-server")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "nats-server-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	// go.mod pins the version and the module cache has it (the test binary
	// links its server package), so no network is needed.
	build := exec.Command(goCmd, "build", "-o", tmp.Name(), natsServerModule)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s@%s: %w\n%s", natsServerModule, version, err, out)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	return bin, nil
}

// DeployNATSConfs are the NATS node configurations of deploy/nats, the
// files an operator deploys, so that the cluster tests run exactly those.
// They are found from this file's place in the repository, whichever
// package's test asks.
func DeployNATSConfs() []string {
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	var out []string
	for i := 1; i <= 3; i++ {
		out = append(out, filepath.Join(root, "deploy", "nats", fmt.Sprintf("node-%d.conf", i)))
	}
	return out
}
