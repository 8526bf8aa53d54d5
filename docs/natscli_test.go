package docs_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/internal/schematest"
)

// natscliVersion is the nats CLI the contract's lines are written for.
const natscliVersion = "v0.5.0"

var natsCLI struct {
	once sync.Once
	dir  string // GOBIN of the build, removed by TestMain
	path string
	took time.Duration
	out  []byte
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if natsCLI.dir != "" {
		os.RemoveAll(natsCLI.dir)
	}
	os.Exit(code)
}

// offline matches what the go command says when it cannot reach the
// module proxy or the module's origin.
var offline = regexp.MustCompile(`dial tcp|no such host|connection refused|network is unreachable|` +
	`i/o timeout|TLS handshake timeout|proxyconnect|temporary failure in name resolution|` +
	`module lookup disabled|GOPROXY=off`)

// buildNatsCLI builds the real nats CLI once per test binary with
// `go install github.com/nats-io/natscli/nats@v0.5.0`: module mode with
// natscli's own go.mod, whatever this module requires. Without network
// the test is skipped, unless CI=true: CI must run it.
func buildNatsCLI(t *testing.T) string {
	t.Helper()
	natsCLI.once.Do(func() {
		natsCLI.dir, natsCLI.err = os.MkdirTemp("", "coinsaga-natscli-")
		if natsCLI.err != nil {
			return
		}
		goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
		if p, err := exec.LookPath("go"); err == nil {
			goCmd = p
		}
		cmd := exec.Command(goCmd, "install", "github.com/nats-io/natscli/nats@"+natscliVersion)
		// The temp dir has no go.mod: the build ignores this module, and
		// GOFLAGS must not carry a -mod this module set.
		cmd.Dir = natsCLI.dir
		cmd.Env = append(os.Environ(), "GOBIN="+natsCLI.dir, "GOFLAGS=-mod=mod", "GOWORK=off")
		start := time.Now()
		natsCLI.out, natsCLI.err = cmd.CombinedOutput()
		natsCLI.took = time.Since(start)
		natsCLI.path = filepath.Join(natsCLI.dir, "nats")
	})
	if natsCLI.err != nil {
		out := strings.TrimSpace(string(natsCLI.out))
		if offline.MatchString(out) && os.Getenv("CI") != "true" {
			t.Skipf("nats CLI %s not built, no network? (CI=true makes this a failure): %s", natscliVersion, lastLine(out))
		}
		t.Fatalf("build nats CLI %s: %v\n%s", natscliVersion, natsCLI.err, out)
	}
	t.Logf("nats CLI %s built in %s", natscliVersion, natsCLI.took.Round(100*time.Millisecond))
	return natsCLI.path
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// cliEnv is the environment the contract's lines run in: the built nats
// first on PATH, NATS_URL at the test's server, and no nats context or
// NATS_* setting of the machine's user.
func cliEnv(t *testing.T, natsPath, url string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "NATS_") || k == "PATH" || k == "HOME" || k == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	home := t.TempDir()
	return append(env, "NATS_URL="+url, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"PATH="+filepath.Dir(natsPath)+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// shell runs script with sh in the repository's root and returns its
// stderr; the process group is killed when the test ends.
func shell(t *testing.T, env []string, script string) (stderr string, err error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir, cmd.Env = repoRoot, env
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%s: still running after 30s", script)
	}
	return out.String(), err
}

// TestContractNatsCLI runs contract.md's nats lines, as written, with the
// real nats CLI against an embedded JetStream and a real worker: the
// intent is stored, and the subscriber prints the order's four events,
// each valid per status-event.json.
func TestContractNatsCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the nats CLI (about 1.5 min with a cold Go cache); not in -short")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	block := contractNatsBlock(t)
	lines := strings.Split(strings.TrimSpace(block), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "nats sub ") || !strings.HasSuffix(lines[0], " &") ||
		!strings.HasPrefix(lines[1], "nats pub ") {
		t.Fatalf("contract.md's block is no longer `nats sub ... &` then `nats pub ...`; update this test:\n%s", block)
	}
	pubLine := lines[1]
	natsPath := buildNatsCLI(t)
	statusSchema := schematest.Load(t, "schema", "status-event.json")

	ns := embednats.StartTest(t)
	env := cliEnv(t, natsPath, ns.ClientURL())
	if out, err := shell(t, env, "nats --version"); err != nil || strings.TrimSpace(out) != natscliVersion {
		t.Fatalf("nats --version: %q, %v", out, err)
	}

	// No worker yet, so no stream: the JetStream publish says so.
	if out, err := shell(t, env, pubLine); err == nil || !strings.Contains(out, "no responders") {
		t.Errorf("publish before any worker: %v, %q; the contract says it fails with no responders", err, out)
	}

	startWorker(t, ns)

	// The block as written: the subscriber in the background, then the
	// publish. The subscriber outlives sh and writes to our pipe until
	// its process group is stopped.
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errFile, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", block)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = repoRoot, env, wr, errFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wr.Close()
	pgid := cmd.Process.Pid
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
		}
	}
	t.Cleanup(func() {
		stop()
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		rd.Close()
	})
	shDone := make(chan error, 1)
	go func() { shDone <- cmd.Wait() }()

	lineCh := make(chan string)
	go func() {
		defer close(lineCh)
		sc := bufio.NewScanner(rd)
		for sc.Scan() {
			lineCh <- sc.Text()
		}
	}()

	want := []events.State{events.StateAccepted, events.StateOrdered, events.StateDebited, events.StateCompleted}
	var got []events.State
	timeout := time.After(30 * time.Second)
	for len(got) < len(want) {
		select {
		case line, ok := <-lineCh:
			if !ok {
				t.Fatalf("nats sub ended after %v", got)
			}
			if err := schematest.Validate(statusSchema, []byte(line)); err != nil {
				t.Errorf("nats sub printed %q, which status-event.json refuses: %v", line, err)
				continue
			}
			var ev events.StatusEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.OutOrderID != "1659497694000" || ev.Seq != len(got)+1 {
				t.Errorf("event %d: %s seq %d", len(got)+1, ev.OutOrderID, ev.Seq)
			}
			got = append(got, ev.State)
		case <-timeout:
			t.Fatalf("after 30s nats sub printed only %v", got)
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("states %v, want %v", got, want)
		}
	}
	select {
	case err := <-shDone:
		if err != nil {
			t.Errorf("the block exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the block did not exit within 30s")
	}
	stop()
	for range lineCh { // drained until the subscriber exits and closes the pipe
	}
	stderr, err := os.ReadFile(errFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(stderr), "Stored in Stream: COINSAGA_INTENTS Sequence: 1") {
		t.Errorf("nats pub --jetstream did not report the stored intent:\n%s", stderr)
	}

	// The game server's retry: JetStream drops it as a duplicate.
	out, err := shell(t, env, pubLine)
	if err != nil || !strings.Contains(out, "Stored in Stream: COINSAGA_INTENTS Sequence: 1 Duplicate: true") {
		t.Errorf("the publish again: %v\n%s", err, out)
	}
}
