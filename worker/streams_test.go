package worker_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/worker"
)

// A worker started while the JetStream cluster has no quorum (an
// orchestrator restarts everything after a power cut, say) waits for it
// instead of exiting: it retries the stream setup, says so in its log, and
// takes orders once the cluster is whole again.
func TestAWorkerStartedWhileTheClusterHasNoQuorumWaitsAndThenServes(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a 3-node nats-server cluster")
	}
	c := kit.StartNATSCluster(t, kit.DeployNATSConfs()...)
	c.Kill(1)
	c.Kill(2)
	jet := kit.Connect(t, c.ClientURLs())
	sb := kit.StartSandbox(t, 1)
	logs := &kit.LogBuffer{}
	w, err := worker.New(worker.Config{
		Conn: jet.Conn, Store: kit.OpenStore(t), SUD: sb.SUD(t, nil), Wallets: sb.Wallets(nil),
		ConfirmInterval: 50 * time.Millisecond, ConfirmTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker stopped with %v", err)
		}
	})

	kit.Eventually(t, time.Minute, "the worker saying it waits for JetStream", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the worker gave up while the cluster had no quorum: %v\nlog:\n%s", err, logs)
		default:
		}
		return strings.Contains(logs.String(), "JetStream does not answer yet")
	})
	if w.Ready() {
		t.Fatal("the worker says it is ready although its streams could not be set up")
	}
	c.Start(1)
	c.Start(2)
	c.WaitReady(2 * time.Minute)
	kit.Eventually(t, 2*time.Minute, "the worker ready once the cluster is whole", w.Ready)

	in := intent(events.ProviderMOGS, 30)
	jet.PublishIntent(t, in)
	jet.WaitTerminal(t, time.Minute, in.OutOrderID)
	if bills := sb.BillsOf(in.Payment.OpenID); len(bills) != 1 {
		t.Errorf("the order's player has %d bills, want exactly one debit", len(bills))
	}
}

// What no retry can mend is reported at once: a server without JetStream
// will not grow one.
func TestAWorkerOnAServerWithoutJetStreamStopsAtOnceSayingSo(t *testing.T) {
	t.Parallel()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server without JetStream did not start")
	}
	jet := kit.Connect(t, ns.ClientURL())
	sb := kit.StartSandbox(t, 1)
	w, err := worker.New(worker.Config{Conn: jet.Conn, Store: kit.OpenStore(t), SUD: sb.SUD(t, nil), Wallets: sb.Wallets(nil)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Run(ctx); err == nil || !strings.Contains(err.Error(), "has no JetStream") {
		t.Fatalf("Run = %v, want an error saying the server has no JetStream", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run waited for its context instead of stopping at once")
	}
}
