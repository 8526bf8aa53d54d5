package service

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/internal/pgtest"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/postgres"
	"github.com/coinsaga/coinsaga/worker"
)

// running is one service.Run in this process, with an embedded JetStream
// and sandbox in dataDir, on the PostgreSQL database dbURL.
type running struct {
	natsURL string
	http    string // the listener's address: /readyz says when the worker takes intents
	log     *kit.LogBuffer
	done    chan error
	stop    context.CancelFunc
}

func startService(t *testing.T, dataDir, natsListen, dbURL string) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &running{http: ln.Addr().String(), log: &kit.LogBuffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	opts := Options{
		NATSListen: natsListen, Subjects: events.Subjects{Prefix: "coinsaga"},
		Connect:     func(url string) (*nats.Conn, error) { r.natsURL = url; return nats.Connect(url) },
		DatabaseURL: dbURL, DataDir: dataDir,
		Sandbox: true, SandboxListen: "127.0.0.1:0",
		HTTP: ln, Registry: prometheus.NewRegistry(),
		Worker: worker.Config{}, Logger: slog.New(slog.NewTextHandler(r.log, nil)),
	}
	go func() { r.done <- Run(ctx, opts) }()
	t.Cleanup(func() { r.close(t) })
	return r
}

// close stops the service and returns what Run returned.
func (r *running) close(t *testing.T) error {
	t.Helper()
	r.stop()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
			return err
		}
		return nil
	case <-time.After(30 * time.Second):
		t.Fatalf("the service did not stop within 30 s; its log:\n%s", r.log.String())
		return nil
	}
}

// refused waits for a service that must refuse to start to end, and
// returns what Run returned; if it still runs after within, the test
// fails with started and the service's log.
func (r *running) refused(t *testing.T, within time.Duration, started string) error {
	t.Helper()
	select {
	case err := <-r.done:
		close(r.done)
		return err
	case <-time.After(within):
		t.Fatalf("%s; its log:\n%s", started, r.log.String())
		return nil
	}
}

// waitServing waits until /readyz says the worker takes intents (its
// streams exist and it holds the prefix).
func (r *running) waitServing(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !r.ready() {
		select {
		case err := <-r.done:
			t.Fatalf("the service ended before serving: %v; its log:\n%s", err, r.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service did not serve within 30 s; its log:\n%s", r.log.String())
		}
	}
}

func (r *running) ready() bool {
	resp, err := http.Get("http://" + r.http + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// intent is order i of these tests, each for a player of its own.
func intent(i int) events.Intent { return kit.PlayerIntent("pg", i) }

// publishAndWait publishes n intents from first and waits for each to end.
func publishAndWait(t *testing.T, natsURL string, first, n int) {
	t.Helper()
	publish(t, natsURL, first, n)
	waitCompleted(t, natsURL, first, n, time.Minute)
}

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestServeRunsOrdersOnPostgreSQLAndKeepsThemAcrossARestart(t *testing.T) {
	dbURL := pgtest.DB(t)
	dataDir := t.TempDir()
	first := startService(t, dataDir, "127.0.0.1:0", dbURL)
	first.waitServing(t)
	publishAndWait(t, first.natsURL, 0, 20)
	if err := first.close(t); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("first run ended with %v", err)
	}
	if !strings.Contains(first.log.String(), "PostgreSQL store opened") {
		t.Errorf("the log does not say the PostgreSQL store was opened:\n%s", first.log.String())
	}

	st, err := postgres.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := st.Stats(context.Background())
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := stats.ByState[string(events.StateCompleted)]; got != 20 {
		t.Errorf("PostgreSQL holds %d completed orders, want 20 (%v)", got, stats.ByState)
	}

	// The same data dir (JetStream's files) and database again: the store
	// exists, so no lost-store check refuses the start.
	second := startService(t, dataDir, "127.0.0.1:0", dbURL)
	second.waitServing(t)
	publishAndWait(t, second.natsURL, 20, 5)
}

func TestServeRefusesAnEmptyPostgreSQLDatabaseWhereAStoreWasLost(t *testing.T) {
	dataDir := t.TempDir()
	first := startService(t, dataDir, "127.0.0.1:0", pgtest.DB(t))
	first.waitServing(t)
	publishAndWait(t, first.natsURL, 0, 3)
	first.close(t)

	// The same JetStream files with a new, empty database: the orders of
	// the first are gone, and serve must say so rather than start afresh.
	empty := pgtest.DB(t)
	second := startService(t, dataDir, "127.0.0.1:0", empty)
	err := second.refused(t, 60*time.Second, "serve started on an empty database where a store was lost")
	if !errors.Is(err, worker.ErrStoreLost) {
		t.Fatalf("serve ended with %v, want ErrStoreLost", err)
	}
	if ok, err := postgres.SchemaExists(context.Background(), empty); err != nil || ok {
		t.Errorf("after the refusal SchemaExists = %v, %v; want false: a refused start must create no schema", ok, err)
	}
}

func TestASecondServeOnTheSameDataDirIsRefusedWithPostgreSQL(t *testing.T) {
	dataDir := t.TempDir()
	first := startService(t, dataDir, "127.0.0.1:0", pgtest.DB(t))
	first.waitServing(t)
	second := startService(t, dataDir, "127.0.0.1:0", pgtest.DB(t))
	if err := second.refused(t, 30*time.Second, "a second serve started on a data dir in use"); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("the second serve ended with %v, want store.ErrLocked", err)
	}
}
