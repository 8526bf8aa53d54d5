package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/store"
)

var (
	workerStarted = regexp.MustCompile(`worker started`)
	resumedOrders = regexp.MustCompile(`resuming unfinished orders.* orders=(\d+)`)
)

// TestKilledWorkersNeverLoseOrChargeTwice runs the worker as a child
// process and kills it with SIGKILL at random moments while 500 orders
// flow, restarting it each time. JetStream and the sandbox live in the
// test, so they outlive every worker, as a NATS cluster and the real
// providers would. Afterwards every order must be terminal, none lost,
// and the provider's ledger must agree with the orders to the coin.
func TestKilledWorkersNeverLoseOrChargeTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs child processes for about a minute")
	}
	const orders = 500
	const kills = 6
	jet := kit.StartJetStream(t)
	// Seed 0: the sandbox picks its fault dice's seed and logs it, as the
	// kill timing's below, so that a failure can be replayed.
	sb := kit.StartSandbox(t, 0)
	sbCfg := sb.Config
	// Pays are busy or lose their replies, debits show late, and cancels
	// are busy or lose their replies too, so kills land in retries,
	// confirmations and compensations, not only in happy paths.
	sb.SetFault(sandbox.Fault{Endpoint: "mogs.pay", BusyRate: 0.25, DropReplyRate: 0.1, VisibilityDelayMS: 300})
	sb.SetFault(sandbox.Fault{Endpoint: "midas.pay_m", BusyRate: 0.25, DropReplyRate: 0.1, LatencyMS: 5})
	sb.SetFault(sandbox.Fault{Endpoint: "mogs.cancelpay", BusyRate: 0.2, DropReplyRate: 0.2})
	sb.SetFault(sandbox.Fault{Endpoint: "midas.cancel_pay_m", BusyRate: 0.2, DropReplyRate: 0.2})
	// SUD fails some actions a while after create_order, so kills land in
	// the verdict step and its compensations too.
	sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteFailRate: 0.3, ExecuteDelayMS: 300})
	dataDir := t.TempDir()
	args := []string{"serve", "--nats-url", jet.URL, "--sandbox-url", sb.URL, "--data-dir", dataDir,
		"--http-listen", "127.0.0.1:0", "--confirm-interval", "100ms", "--confirm-timeout", "3s",
		"--concurrency", "32", "--max-attempts", "2", "--log-level", "info"}

	js, subjects := jet.JS, jet.Subjects

	// Publish in the background while the workers die and restart.
	amounts := make(map[string]int64, orders)
	ids := make([]string, 0, orders)
	intents := make([][]byte, 0, orders)
	poor := map[string]bool{} // every 10th player cannot pay
	for i := 0; i < orders; i++ {
		id := "crash-" + strconv.Itoa(i)
		in := testIntent(id, []string{"mogs", "midas"}[i%2], int64(1+i%50))
		data, _ := json.Marshal(in)
		if i%10 == 9 {
			poor[id] = true
			appID := sbCfg.MOGSAppID
			if in.Payment.Provider == "midas" {
				appID = sbCfg.MidasAppID
			}
			sb.SetAccount(in.Payment.Provider, appID, in.Payment.OpenID, in.Payment.Amount-1, 0)
		}
		amounts[in.Payment.OpenID] = in.Payment.Amount
		ids = append(ids, id)
		intents = append(intents, data)
	}
	published := make(chan error, 1)
	go func() {
		for i, data := range intents {
			m := nats.NewMsg(subjects.Intent("1468180338417074177", "9009"))
			m.Data = data
			m.Header.Set(events.HeaderMsgID, ids[i])
			if _, err := js.PublishMsg(context.Background(), m); err != nil {
				published <- err
				return
			}
			// A steady flow over the whole kill window, not one burst.
			time.Sleep(15 * time.Millisecond)
		}
		published <- nil
	}()

	seed := uint64(time.Now().UnixNano())
	t.Logf("kill timing seed %d", seed)
	rng := rand.New(rand.NewPCG(42, seed))
	resumed := 0
	for k := 0; k < kills; k++ {
		c := startChild(t, args...)
		m := c.WaitLog(resumedOrders, 60*time.Second)
		n, _ := strconv.Atoi(m[1])
		resumed += n
		c.WaitLog(workerStarted, 60*time.Second)
		ran := time.Duration(200+rng.IntN(1300)) * time.Millisecond
		time.Sleep(ran)
		c.Kill()
		t.Logf("kill %d after %s (this start resumed %d unfinished orders)", k+1, ran, n)
	}
	if err := <-published; err != nil {
		t.Fatalf("publishing: %v", err)
	}

	// A last worker finishes everything, then shuts down cleanly.
	final := startChild(t, args...)
	m := final.WaitLog(resumedOrders, 60*time.Second)
	n, _ := strconv.Atoi(m[1])
	resumed += n
	if resumed == 0 {
		t.Fatal("no restart found an unfinished order: the kills never interrupted work, so the test proved nothing")
	}
	jet.WaitTerminal(t, 3*time.Minute, ids...)
	final.Stop(30 * time.Second)

	// Every order is terminal, none lost; the ledger agrees.
	db, err := store.OpenSQLite(context.Background(), filepath.Join(dataDir, "coinsaga.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	byState := map[string]int{}
	pays := map[string][]sandbox.Bill{}
	for _, b := range sb.Bills() {
		if b.Kind == "pay" {
			pays[b.OpenID] = append(pays[b.OpenID], b)
		}
	}
	sudStatus := map[string]string{}
	for _, o := range sb.SUDOrders() {
		sudStatus[o.OutOrderID] = o.Status
	}
	for i, id := range ids {
		o, err := db.Get(context.Background(), id)
		if err != nil {
			t.Fatalf("order %s lost: %v", id, err)
		}
		byState[string(o.State)]++
		if !events.State(o.State).Terminal() {
			t.Errorf("order %s left %s at step %s", id, o.State, o.Step)
		}
		var in events.Intent
		_ = json.Unmarshal(intents[i], &in)
		charged := 0
		for _, b := range pays[in.Payment.OpenID] {
			if !b.Cancelled {
				charged++
				if b.Amt != amounts[in.Payment.OpenID] {
					t.Errorf("order %s charged %d, want %d", id, b.Amt, amounts[in.Payment.OpenID])
				}
			}
		}
		status, reachedSUD := sudStatus[id]
		switch {
		case poor[id] && reachedSUD:
			t.Errorf("order %s: a player who cannot pay reached SUD (%s): a free item", id, status)
		case status == "EXECUTE_FAIL" && (o.State == events.StateCompleted || charged != 0):
			t.Errorf("order %s: SUD failed the action, yet the order is %s with %d pay(s) charged", id, o.State, charged)
		case o.State == events.StateCompleted && status != "EXECUTE_SUCCESS":
			t.Errorf("order %s: completed while SUD reports %q", id, status)
		}
		switch {
		case o.State == events.StateCompleted && charged != 1:
			t.Errorf("completed order %s has %d uncancelled pays, want exactly 1", id, charged)
		case o.State != events.StateCompleted && charged != 0:
			t.Errorf("order %s is %s but %d pay(s) stay charged", id, o.State, charged)
		}
	}
	t.Logf("after %d kills: %v", kills, byState)
	// The faults must have driven orders down every path, or the kills
	// proved less than they seem to.
	for _, state := range []events.State{events.StateCompleted, events.StateFailed, events.StateCompensated} {
		if byState[string(state)] == 0 {
			t.Errorf("no order ended %s: the faults did not exercise that path", state)
		}
	}
}

func testIntent(id, provider string, amount int64) events.Intent {
	in := events.Intent{
		OutOrderID: id, MgID: "1468180338417074177", RoomID: "9009", Cmd: "specify_dice_roll",
		FromUID: "001", ToUID: "002", Value: 100, Payload: json.RawMessage(`{"point":6,"seq":1}`),
		Payment: events.Payment{Provider: provider, Amount: amount, OpenID: "p-" + id},
	}
	if provider == "mogs" {
		in.Payment.MOGS = &events.MOGSPayment{JSCode: "js-" + id, PayItem: "dice"}
	} else {
		in.Payment.Midas = &events.MidasPayment{OpenKey: "ok-" + id, PF: "qq_m_qq", PFKey: "pfk", SessionType: "kp_actoken"}
	}
	return in
}
