package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

var httpListening = regexp.MustCompile(`msg="http listening" addr=(\S+)`)

// reliabilityEnv is a NATS server and a sandbox that outlive the serve
// processes a test starts and stops against them.
type reliabilityEnv struct {
	t          *testing.T
	natsURL    string
	js         jetstream.JetStream
	jet        *kit.JetStream
	sandboxURL string
}

func startReliabilityEnv(t *testing.T) *reliabilityEnv {
	t.Helper()
	jet := kit.StartJetStream(t)
	return &reliabilityEnv{t: t, natsURL: jet.URL, js: jet.JS, jet: jet, sandboxURL: kit.StartSandbox(t, 0).URL}
}

func (e *reliabilityEnv) serveArgs(dataDir string, extra ...string) []string {
	return append([]string{"serve", "--nats-url", e.natsURL, "--sandbox-url", e.sandboxURL, "--data-dir", dataDir,
		"--http-listen", "127.0.0.1:0", "--confirm-interval", "50ms", "--confirm-timeout", "2s"}, extra...)
}

// refused runs serve to its end and returns what it printed; it fails the
// test unless serve exited non-zero within a minute.
func (e *reliabilityEnv) refused(args ...string) string {
	e.t.Helper()
	c := startChild(e.t, args...)
	if c.WaitExit(time.Minute) == nil {
		e.t.Fatalf("serve %v exited 0; it should have refused to start:\n%s", args, c.Output())
	}
	return c.Output()
}

// completeOrders publishes n intents and waits for their completed events.
func (e *reliabilityEnv) completeOrders(prefix string, n int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := events.Subjects{}
	for i := range n {
		data := mustJSON(e.t, testIntent(prefix+strconv.Itoa(i), "mogs", 10))
		if _, _, err := events.PublishIntent(ctx, e.js, s, data, events.DefaultCatalog()); err != nil {
			e.t.Fatal(err)
		}
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + strconv.Itoa(i)
	}
	e.jet.WaitTerminal(e.t, time.Minute, ids...)
}

func TestServeRefusesToStartEmptyWhereAStoreWasLost(t *testing.T) {
	t.Parallel()
	e := startReliabilityEnv(t)
	dataDir := t.TempDir()
	db := filepath.Join(dataDir, "coinsaga.db")
	first := startChild(t, e.serveArgs(dataDir)...)
	first.WaitLog(workerStarted, time.Minute)
	e.completeOrders("lost-", 20)
	first.Stop(30 * time.Second)

	damages := []struct {
		name   string
		damage func() error
	}{
		{"a store truncated to 0 bytes", func() error { return os.Truncate(db, 0) }},
		{"a deleted store", func() error { // the refusal above removed the file already
			if err := os.Remove(db); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		}},
	}
	for _, d := range damages {
		t.Run(d.name+" is refused, and no empty store is left behind", func(t *testing.T) {
			if err := d.damage(); err != nil {
				t.Fatal(err)
			}
			out := e.refused(e.serveArgs(dataDir)...)
			for _, want := range []string{"missing or empty", "--init-store", "restore"} {
				if !strings.Contains(out, want) {
					t.Errorf("the refusal does not say %q:\n%s", want, tail(out, 5))
				}
			}
			if fi, err := os.Stat(db); err == nil && fi.Size() > 0 {
				t.Errorf("the refused start left a %d-byte store behind: the next start would take it as used", fi.Size())
			}
		})
	}
	t.Run("--init-store starts an empty store on purpose", func(t *testing.T) {
		c := startChild(t, e.serveArgs(dataDir, "--init-store")...)
		c.WaitLog(regexp.MustCompile(`starting with an empty store on purpose`), time.Minute)
		c.WaitLog(workerStarted, time.Minute)
		c.Stop(30 * time.Second)
	})
	t.Run("the store made by --init-store opens afterwards without the flag", func(t *testing.T) {
		c := startChild(t, e.serveArgs(dataDir)...)
		c.WaitLog(workerStarted, time.Minute)
		c.Stop(30 * time.Second)
	})
	t.Run("a damaged store is refused with what to do", func(t *testing.T) {
		if err := os.WriteFile(db, []byte("not a database, a bad restore"), 0o600); err != nil {
			t.Fatal(err)
		}
		out := e.refused(e.serveArgs(dataDir)...)
		if !strings.Contains(out, "damaged") || !strings.Contains(out, "backup") {
			t.Errorf("the refusal does not name the damage and the remedy:\n%s", tail(out, 5))
		}
	})
}

func TestASecondWorkerOnAPrefixRefusesToStart(t *testing.T) {
	t.Parallel()
	e := startReliabilityEnv(t)
	firstDir := t.TempDir()
	first := startChild(t, e.serveArgs(firstDir)...)
	first.WaitLog(workerStarted, time.Minute)

	// --init-store: the new worker's store is empty on purpose; the lease,
	// not the missing-store check, must stop it.
	out := e.refused(e.serveArgs(t.TempDir(), "--init-store")...)
	for _, want := range []string{"another worker owns this prefix", "pid " + strconv.Itoa(first.Pid()), firstDir} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, tail(out, 5))
		}
	}
	t.Run("the first worker still serves", func(t *testing.T) {
		e.completeOrders("owned-", 5)
	})
	t.Run("a graceful stop says what the drain waits for", func(t *testing.T) {
		first.Stop(30 * time.Second)
		out := first.Output()
		for _, want := range []string{"draining: taking no new intents", "draining: every running step recorded", "worker stopped"} {
			if !strings.Contains(out, want) {
				t.Errorf("the drain did not log %q:\n%s", want, tail(out, 6))
			}
		}
	})
	t.Run("after a graceful stop, another worker takes the prefix at once", func(t *testing.T) {
		second := startChild(t, e.serveArgs(t.TempDir(), "--init-store")...)
		second.WaitLog(workerStarted, 10*time.Second) // well inside the lease's 15 s
		second.Stop(30 * time.Second)
	})
}

func TestServeLeavesTheOperatorsStreamsAsTheyAre(t *testing.T) {
	t.Parallel()
	e := startReliabilityEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// What `nats stream add` would make: the status stream with a longer
	// age limit than coinsaga's.
	cfg := events.StreamConfigs(events.Subjects{}, events.StreamOptions{})[1]
	cfg.MaxAge = 72 * time.Hour
	if _, err := e.js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	for start := 1; start <= 2; start++ {
		c := startChild(t, e.serveArgs(dataDir)...)
		c.WaitLog(regexp.MustCompile(`existing stream differs.*stream=COINSAGA_STATUS field="max age" have=72h0m0s`), time.Minute)
		c.WaitLog(workerStarted, time.Minute)
		c.Stop(30 * time.Second)
		st, err := e.js.Stream(ctx, "COINSAGA_STATUS")
		if err != nil {
			t.Fatal(err)
		}
		if got := st.CachedInfo().Config.MaxAge; got != 72*time.Hour {
			t.Fatalf("after start %d the status stream's max age is %s, want the operator's 72h", start, got)
		}
	}

	t.Run("a prefix whose stream names another deployment's streams use is refused", func(t *testing.T) {
		c := startChild(t, e.serveArgs(t.TempDir(), "--prefix", "tenant.a")...)
		c.WaitLog(workerStarted, time.Minute)
		c.Stop(30 * time.Second)
		out := e.refused(e.serveArgs(t.TempDir(), "--prefix", "tenant_a")...)
		if !strings.Contains(out, "choose a prefix") || !strings.Contains(out, "TENANT_A_INTENTS") {
			t.Errorf("the refusal does not name the stream and the remedy:\n%s", tail(out, 5))
		}
	})

	t.Run("readiness fails while the intents stream does not answer", func(t *testing.T) {
		c := startChild(t, e.serveArgs(dataDir)...)
		addr := c.WaitLog(httpListening, time.Minute)[1]
		c.WaitLog(workerStarted, time.Minute)
		waitHTTPStatus(t, "http://"+addr+"/readyz", http.StatusOK, 30*time.Second)
		if err := e.js.DeleteStream(ctx, "COINSAGA_INTENTS"); err != nil {
			t.Fatal(err)
		}
		waitHTTPStatus(t, "http://"+addr+"/readyz", http.StatusServiceUnavailable, 30*time.Second)
	})
}

func TestServeNamesTheSpaceTheStatusStreamNeeds(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	c := startChild(t, "serve", "--sandbox", "--sandbox-listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0", "--data-dir", dataDir, "--status-max-bytes", "64TiB")
	err := c.WaitExit(time.Minute)
	out := c.Output()
	if err == nil {
		t.Fatalf("serve started with a status stream larger than the disk:\n%s", tail(out, 5))
	}
	for _, want := range []string{"COINSAGA_STATUS", "64 TiB", "--status-max-bytes", "free under " + dataDir} {
		if !strings.Contains(out, want) {
			t.Errorf("the error does not say %q:\n%s", want, tail(out, 3))
		}
	}
}

// waitHTTPStatus polls url until it answers with status.
func waitHTTPStatus(t *testing.T, url string, status int, timeout time.Duration) {
	t.Helper()
	last := 0
	kit.EventuallyOn(t, nil, timeout, fmt.Sprintf("%s answers %d", url, status), func() bool {
		last = httpStatus(t, url)
		return last == status
	}, func() string { return fmt.Sprintf("it answered %d", last) })
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestServeLeavesR3StreamsR3OnACluster(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster")
	}
	cluster := embednats.StartTestCluster(t, 3)
	js := kit.Connect(t, cluster.ClientURLs()).JS
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// What the README advises an operator to do: create the streams R3.
	for _, cfg := range events.StreamConfigs(events.Subjects{}, events.StreamOptions{Replicas: 3}) {
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	cfg := sandbox.DefaultConfig()
	cfg.Games = events.DefaultCatalog()
	sb := httptest.NewServer(sandbox.New(cfg))
	t.Cleanup(sb.Close)
	dataDir := t.TempDir()
	for start := 1; start <= 2; start++ {
		c := startChild(t, "serve", "--nats-url", cluster.ClientURLs(), "--sandbox-url", sb.URL, "--data-dir", dataDir,
			"--http-listen", "127.0.0.1:0")
		c.WaitLog(regexp.MustCompile(`existing stream differs.*field=replicas have=3`), time.Minute)
		c.WaitLog(workerStarted, time.Minute)
		c.Stop(30 * time.Second)
		for _, name := range []string{"COINSAGA_INTENTS", "COINSAGA_STATUS", "COINSAGA_DLQ"} {
			st, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if r := st.CachedInfo().Config.Replicas; r != 3 {
				t.Fatalf("after start %d stream %s has %d replicas, want the operator's 3", start, name, r)
			}
		}
	}
}
