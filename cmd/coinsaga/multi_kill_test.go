package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/internal/pgtest"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/postgres"
)

var registeredWorker = regexp.MustCompile(`registered as a worker of the shared store.* worker=([0-9a-f]{32})`)

// TestASIGKILLedWorkersOrdersAreResumedByAnotherWithinTheTakeoverTime runs
// two `serve --database-url` processes on one PostgreSQL database, one
// JetStream and one sandbox, SIGKILLs the one that holds orders waiting
// in confirmation, and measures how long until the other owns them: the
// dead one's lease must expire (LeaseTTL after its last renew) and the
// rescue grace pass (RescueGrace) before anyone may take them.
func TestASIGKILLedWorkersOrdersAreResumedByAnotherWithinTheTakeoverTime(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two worker processes for about a minute")
	}
	dbURL := pgtest.DB(t)
	ns := embednats.StartTest(t)
	sbCfg := sandbox.DefaultConfig()
	sbCfg.Games = events.DefaultCatalog()
	sb := sandbox.New(sbCfg)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	// Debits show late, so that orders wait in confirmation across the
	// kill and the takeover.
	const visible = 45 * time.Second
	sb.SetFault(sandbox.Fault{Endpoint: "mogs.pay", VisibilityDelayMS: int(visible / time.Millisecond)})
	serve := func() *child {
		c := startChild(t, "serve", "--nats-url", ns.ClientURL(), "--sandbox-url", srv.URL, "--data-dir", t.TempDir(),
			"--database-url", dbURL, "--http-listen", "127.0.0.1:0", "--confirm-interval", "500ms", "--log-level", "info")
		c.waitLog(workerStarted, 60*time.Second)
		return c
	}
	a := serve()
	idA := registeredWorker.FindStringSubmatch(a.output())[1]
	b := serve()
	idB := registeredWorker.FindStringSubmatch(b.output())[1]

	js := kit.Connect(t, ns.ClientURL()).JS
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := events.Subjects{Prefix: "coinsaga"}
	const n = 100
	ids := make([]string, n)
	for i := range n {
		in := killIntent(i)
		ids[i] = in.OutOrderID
		if _, err := events.Publish(ctx, js, s, in); err != nil {
			t.Fatal(err)
		}
	}
	db, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	heldBy := func(owner string) []string {
		var held []string
		for _, id := range ids {
			o, err := db.Get(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			who, err := db.Owner(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if who == owner && o.Step == "confirm" && !o.NextRunAt.IsZero() {
				held = append(held, id)
			}
		}
		return held
	}
	// Polling the database: there is no event to wait on.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var held []string
	for deadline := time.Now().Add(30 * time.Second); len(held) < 5; <-tick.C {
		if time.Now().After(deadline) {
			t.Fatalf("worker a holds %d orders waiting in confirmation after 30 s, want 5", len(held))
		}
		held = heldBy(idA)
	}
	killed := time.Now()
	a.kill()
	for {
		moved := 0
		for _, id := range held {
			who, err := db.Owner(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if who == idB {
				moved++
			}
		}
		if moved == len(held) {
			break
		}
		if time.Since(killed) > store.LeaseTTL+store.RescueGrace+15*time.Second {
			t.Fatalf("%d of a's %d waiting orders are b's %s after the kill; b's log:\n%s", moved, len(held), time.Since(killed), b.output())
		}
		<-tick.C
	}
	takeover := time.Since(killed)
	t.Logf("takeover after SIGKILL: worker b owned a's %d waiting orders %s after the kill (LeaseTTL %s + RescueGrace %s)",
		len(held), takeover.Round(time.Millisecond), store.LeaseTTL, store.RescueGrace)
	if takeover >= 30*time.Second {
		t.Errorf("takeover took %s, want under 30 s (issue 15: a SIGKILLed worker's orders are resumed within 30 s)", takeover)
	}
	if takeover > store.LeaseTTL+store.RescueGrace+3*time.Second {
		t.Errorf("takeover took %s, want within LeaseTTL + RescueGrace (%s) and a rescue and claim period", takeover, store.LeaseTTL+store.RescueGrace)
	}
	for _, id := range ids {
		ev, err := events.WaitTerminal(ctx, js, s, id)
		if err != nil {
			t.Fatalf("order %s: %v; b's log:\n%s", id, err, b.output())
		}
		if ev.State != events.StateCompleted {
			t.Fatalf("order %s ended %s (%s), want completed", id, ev.State, ev.Error)
		}
	}
	charged := map[string]int{}
	for _, bill := range sb.Bills() {
		if bill.Kind == "pay" && !bill.Cancelled {
			charged[bill.OpenID]++
		}
	}
	for i := range n {
		if in := killIntent(i); charged[in.Payment.OpenID] != 1 {
			t.Errorf("player %s has %d uncancelled bills, want 1", in.Payment.OpenID, charged[in.Payment.OpenID])
		}
	}
	b.stop(30 * time.Second)
}

// killIntent is order i of the kill test, each for a player of its own.
func killIntent(i int) events.Intent { return kit.PlayerIntent("kill", i) }
