package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// The README's tutorial runs `make run`, which keeps ./data across
// restarts; these tests restart `serve --sandbox` on one data dir and check
// that the in-process sandbox's ledger survives with it.

// tutorialServe is one `serve --sandbox` on dataDir, NATS on natsAddr.
type tutorialServe struct {
	*child
	admin   *sandbox.AdminClient
	metrics string // URL of /metrics
}

func startTutorialServe(t *testing.T, dataDir, natsAddr string) *tutorialServe {
	t.Helper()
	c := startChild(t, "serve", "--sandbox", "--sandbox-listen", "127.0.0.1:0", "--nats-listen", natsAddr,
		"--http-listen", "127.0.0.1:0", "--data-dir", dataDir, "--confirm-interval", "100ms",
		// A debit the sandbox forgot never shows: such an order would fail
		// after this, not after the default 2 minutes.
		"--confirm-timeout", "30s")
	url := c.WaitLog(sandboxStarted, 60*time.Second)[1]
	httpAddr := c.WaitLog(httpListening, 60*time.Second)[1]
	c.WaitLog(workerStarted, 60*time.Second)
	return &tutorialServe{child: c, admin: sandbox.NewAdminClient(url), metrics: "http://" + httpAddr + "/metrics"}
}

// tutorialRun is what both tutorial runs share: a data dir, a NATS
// address reserved for every start of serve, and two minutes.
func tutorialRun(t *testing.T) (dataDir, natsAddr, natsURL string, ctx context.Context) {
	t.Helper()
	t.Parallel()
	if testing.Short() {
		t.Skip("runs coinsaga serve twice as child processes")
	}
	natsAddr = kit.ReserveAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return t.TempDir(), natsAddr, "nats://" + natsAddr, ctx
}

// exampleIntent is docs/example-intent.json, the README's intent.
func exampleIntent(t *testing.T) (string, events.Intent) {
	t.Helper()
	raw, err := os.ReadFile("../../docs/example-intent.json")
	if err != nil {
		t.Fatal(err)
	}
	var in events.Intent
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw)), in
}

// watchOrder runs `coinsaga watch --json --all --order id` and passes on
// each event it prints, from the order's first.
func watchOrder(t *testing.T, natsURL, id string) (<-chan events.StatusEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runWith(ctx, []string{"watch", "--json", "--all", "--nats-url", natsURL, "--order", id}, pw, io.Discard)
		pw.Close()
	}()
	out := make(chan events.StatusEvent, 64)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var ev events.StatusEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("watch --json printed %q: %v", sc.Text(), err)
				return
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	stop := func() {
		cancel()
		pr.Close()
		<-done
	}
	t.Cleanup(stop)
	return out, stop
}

// nextEvent waits for the watch's next event.
func nextEvent(t *testing.T, ch <-chan events.StatusEvent, timeout time.Duration) events.StatusEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch ended")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no status event within %s", timeout)
	}
	return events.StatusEvent{}
}

// statesUntilTerminal reads events until a terminal one.
func statesUntilTerminal(t *testing.T, ch <-chan events.StatusEvent, timeout time.Duration) []string {
	t.Helper()
	var states []string
	for {
		ev := nextEvent(t, ch, timeout)
		states = append(states, string(ev.State))
		if ev.State.Terminal() {
			return states
		}
	}
}

// waitBillSaved waits until the sandbox's state file holds billNo, as a
// sandbox that is then killed has written it.
func waitBillSaved(t *testing.T, path, billNo string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var st struct {
			Bills []struct {
				BillNo string `json:"bill_no"`
			} `json:"bills"`
		}
		if raw, err := os.ReadFile(path); err == nil && json.Unmarshal(raw, &st) == nil {
			for _, b := range st.Bills {
				if b.BillNo == billNo {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("bill %s not in %s within 10s", billNo, path)
		}
		<-tick.C
	}
}

// waitMetric waits until the sum of name's samples with label is want.
func waitMetric(t *testing.T, url, name, label string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		got, _ := scrape(t, url).sum(name, label)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s{%s} = %v, want %v within 30s", name, label, got, want)
		}
		<-tick.C
	}
}

// checkChargedOnce checks that the sandbox charged the player once, amt.
func checkChargedOnce(t *testing.T, admin *sandbox.AdminClient, in events.Intent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := sandbox.DefaultConfig()
	v, err := admin.Account(ctx, in.Payment.Provider, d.MOGSAppID, in.Payment.OpenID)
	if err != nil {
		t.Fatalf("the player's account after the restart: %v (did the sandbox forget it?)", err)
	}
	if want := d.InitialBalance - in.Payment.Amount; v.Balance != want || v.CostSum != in.Payment.Amount {
		t.Errorf("account %+v, want balance %d and cost_sum %d: charged once", v, want, in.Payment.Amount)
	}
	bills, err := admin.BillsOf(ctx, in.Payment.Provider, in.Payment.OpenID)
	if err != nil {
		t.Fatal(err)
	}
	if len(bills) != 1 || bills[0].Cancelled || bills[0].Amt != in.Payment.Amount {
		t.Errorf("bills %+v, want one live pay of %d", bills, in.Payment.Amount)
	}
}

// TestTutorialRestartFinishesOrdersInFlight kills `serve --sandbox` while
// the example order is debited, its debit not yet visible, and starts it
// again on the same data dir: the restarted sandbox still has the debit
// and the SUD order, so the order completes, charged once. Before the
// sandbox kept its ledger, the debit vanished with the process and the
// order failed when its confirmation timed out.
func TestTutorialRestartFinishesOrdersInFlight(t *testing.T) {
	dataDir, natsAddr, natsURL, ctx := tutorialRun(t)
	raw, in := exampleIntent(t)

	srv := startTutorialServe(t, dataDir, natsAddr)
	// The debit shows in balance reads only 10 s after the pay: the order
	// waits in debited, confirming, long enough to be killed there even on
	// a loaded machine.
	if err := srv.admin.SetFault(ctx, sandbox.Fault{Endpoint: "mogs.pay", VisibilityDelayMS: 10000}); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, code := runCLI(t, ctx, "publish", "--nats-url", natsURL, raw); code != 0 {
		t.Fatalf("publish exit %d\n%s%s", code, stdout, stderr)
	}
	evs, stopWatch := watchOrder(t, natsURL, in.OutOrderID)
	for {
		ev := nextEvent(t, evs, 30*time.Second)
		if ev.State == events.StateDebited {
			break
		}
		if ev.State.Terminal() {
			t.Fatalf("the order ended %s before it was debited", ev.State)
		}
	}
	stopWatch()
	// The first bill of an order is its out_order_id.
	waitBillSaved(t, filepath.Join(dataDir, "sandbox.json"), in.OutOrderID)
	srv.Kill()

	srv = startTutorialServe(t, dataDir, natsAddr)
	if m := resumedOrders.FindStringSubmatch(srv.Output()); m == nil || m[1] == "0" {
		t.Fatalf("the restart resumed no order (%v): the kill came after the order ended, so this proved nothing\n%s", m, srv.Output())
	}
	evs, _ = watchOrder(t, natsURL, in.OutOrderID)
	states := statesUntilTerminal(t, evs, 60*time.Second)
	if got, want := strings.Join(states, " "), "accepted ordered debited completed"; got != want {
		t.Errorf("states %q, want %q", got, want)
	}
	checkChargedOnce(t, srv.admin, in)
	orders, err := srv.admin.SUDOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != 1 || orders[0].OutOrderID != in.OutOrderID || orders[0].Status != "EXECUTE_SUCCESS" {
		t.Errorf("SUD orders after the restart %+v, want the one order, executed", orders)
	}
	srv.Stop(30 * time.Second)
}

// TestTutorialRepeatAfterRestart is the README's tutorial done twice with
// a restart between, as `make run` twice does: the second publish is
// absorbed as a duplicate, watch shows no new event and watch --all the
// same four, and the sandbox,
// which kept its ledger, shows the one debit. Starting over takes `make
// clean` (or another out_order_id).
func TestTutorialRepeatAfterRestart(t *testing.T) {
	dataDir, natsAddr, natsURL, ctx := tutorialRun(t)
	raw, in := exampleIntent(t)

	srv := startTutorialServe(t, dataDir, natsAddr)
	if stdout, stderr, code := runCLI(t, ctx, "publish", "--nats-url", natsURL, raw); code != 0 || strings.Contains(stdout, "duplicate") {
		t.Fatalf("first publish exit %d\n%s%s", code, stdout, stderr)
	}
	evs, stopWatch := watchOrder(t, natsURL, in.OutOrderID)
	first := statesUntilTerminal(t, evs, 30*time.Second)
	stopWatch()
	if got, want := strings.Join(first, " "), "accepted ordered debited completed"; got != want {
		t.Fatalf("first run: states %q, want %q", got, want)
	}
	srv.Stop(30 * time.Second)

	srv = startTutorialServe(t, dataDir, natsAddr)
	stdout, stderr, code := runCLI(t, ctx, "publish", "--nats-url", natsURL, raw)
	t.Logf("$ coinsaga publish (again, after the restart)\n%s%s(exit %d)", stdout, stderr, code)
	if code != 0 {
		t.Fatalf("publish again: exit %d", code)
	}
	if !strings.Contains(stdout, "duplicate") {
		// JetStream took it (its duplicate window does not outlive the
		// acknowledged intent): the worker absorbs it as a duplicate of
		// the order it has. Once it has, no event can follow.
		waitMetric(t, srv.metrics, "coinsaga_intents_total", `outcome="duplicate"`, 1)
	}
	evs, _ = watchOrder(t, natsURL, in.OutOrderID)
	var again []string
	var seqs []string
	for range first {
		ev := nextEvent(t, evs, 30*time.Second)
		again = append(again, string(ev.State))
		seqs = append(seqs, strconv.Itoa(ev.Seq))
	}
	if strings.Join(again, " ") != strings.Join(first, " ") || strings.Join(seqs, " ") != "1 2 3 4" {
		t.Errorf("watch --all after the repeat: states %q seqs %q, want the first run's four", again, seqs)
	}
	checkChargedOnce(t, srv.admin, in)
	srv.Stop(30 * time.Second)
}
