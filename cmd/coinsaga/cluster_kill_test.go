package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/internal/pgtest"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/postgres"
)

var claimedOrphans = regexp.MustCompile(`claimed orders without an owner.* orders=(\d+)`)

// TestThreeWorkersOnAThreeNodeClusterLoseNoOrderAndNoCoinThroughSIGKILLs is
// issue 15's acceptance: three `serve --database-url --stream-replicas 3`
// processes over one PostgreSQL and a 3-node JetStream cluster (the
// nats-server processes of deploy/nats), while 2,000 orders flow, a random
// worker is SIGKILLed and restarted 3 times and a random NATS node 3 times,
// at random moments. Afterwards every order is terminal with the outcome
// the sandbox's ledger and SUD agree with, every player's balance is
// exact, no bill is charged twice, every order's status events seq 1..k
// are in the status stream, and a second batch is shared by all three
// workers.
//
// It does not run in parallel: six busy processes are what two cores take.
func TestThreeWorkersOnAThreeNodeClusterLoseNoOrderAndNoCoinThroughSIGKILLs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL, 3 nats-server and 3 worker processes for about two minutes")
	}
	const (
		orders       = 2000
		second       = 300
		workerKills  = 3
		natsKills    = 3
		publishPause = 20 * time.Millisecond // about 40 s of steady flow, the window of the kills
	)
	began := time.Now()
	dbURL := pgtest.DB(t)
	cluster := kit.StartNATSCluster(t, kit.DeployNATSConfs()...)
	t.Logf("the 3-node cluster is ready after %s", time.Since(began).Round(time.Millisecond))
	sb := kit.StartSandbox(t, 0)
	// The faults of TestKilledWorkersNeverLoseOrChargeTwice, so that kills
	// land in retries, confirmations, SUD verdicts and compensations; but
	// cancels fail half as often: over 2,000 orders 40% failing cancels
	// keep the cancel circuits opening, and a cancel's 10 attempts back off
	// up to 30 s each, which made the slowest compensations outlast the
	// test's budget (minutes, yet by design).
	sb.SetFault(sandbox.Fault{Endpoint: "mogs.pay", BusyRate: 0.25, DropReplyRate: 0.1, VisibilityDelayMS: 300})
	sb.SetFault(sandbox.Fault{Endpoint: "midas.pay_m", BusyRate: 0.25, DropReplyRate: 0.1, LatencyMS: 5})
	sb.SetFault(sandbox.Fault{Endpoint: "mogs.cancelpay", BusyRate: 0.1, DropReplyRate: 0.1})
	sb.SetFault(sandbox.Fault{Endpoint: "midas.cancel_pay_m", BusyRate: 0.1, DropReplyRate: 0.1})
	sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteFailRate: 0.3, ExecuteDelayMS: 300})

	seed := uint64(time.Now().UnixNano())
	t.Logf("kill timing seed %d", seed)
	rng := rand.New(rand.NewPCG(15, seed))

	ws := &clusterWorkers{t: t, args: []string{"serve", "--nats-url", cluster.ClientURLs(), "--sandbox-url", sb.URL,
		"--database-url", dbURL, "--stream-replicas", "3", "--http-listen", "127.0.0.1:0",
		"--confirm-interval", "100ms", "--confirm-timeout", "3s", "--concurrency", "32", "--max-attempts", "2",
		"--log-level", "info"}}
	for i := range 3 {
		ws.start(i)
	}
	t.Logf("3 workers started after %s", time.Since(began).Round(time.Millisecond))

	js := kit.Connect(t, cluster.ClientURLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond)).JS
	subjects := events.Subjects{Prefix: "coinsaga"}

	batch := newClusterBatch(sb, "ck", orders)
	published := make(chan error, 1)
	go func() { published <- batch.publish(js, subjects, publishPause) }()

	// The kills, one at a time in a seeded order at seeded moments. A NATS
	// node is back and current before anything else is killed: two nodes
	// down would be a lost quorum, an outage rather than a crash.
	kills := slices.Repeat([]string{"worker"}, workerKills)
	kills = append(kills, slices.Repeat([]string{"nats"}, natsKills)...)
	rng.Shuffle(len(kills), func(i, j int) { kills[i], kills[j] = kills[j], kills[i] })
	for k, what := range kills {
		time.Sleep(time.Duration(2000+rng.IntN(4000)) * time.Millisecond)
		switch what {
		case "worker":
			i := rng.IntN(3)
			ws.kill(i)
			down := time.Duration(rng.IntN(1500)) * time.Millisecond
			time.Sleep(down)
			ws.start(i)
			t.Logf("kill %d at %s: worker %d SIGKILLed, restarted after %s", k+1, time.Since(began).Round(time.Millisecond), i+1, down)
		case "nats":
			i := rng.IntN(cluster.Size())
			cluster.Kill(i)
			down := time.Duration(500+rng.IntN(2500)) * time.Millisecond
			time.Sleep(down)
			restarted := time.Now()
			cluster.Restart(i)
			t.Logf("kill %d at %s: NATS node %s SIGKILLed, restarted after %s, current again %s later",
				k+1, time.Since(began).Round(time.Millisecond), cluster.Name(i), down, time.Since(restarted).Round(time.Millisecond))
		}
	}
	if err := <-published; err != nil {
		t.Fatalf("publishing: %v", err)
	}
	t.Logf("%d orders published by %s", orders, time.Since(began).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	db, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// A killed worker's orders wait for its lease to expire and the rescue
	// grace: LeaseTTL + RescueGrace after the last kill, then their steps.
	status := kit.Connect(t, cluster.ClientURLs())
	waitTerminal(t, ctx, db, status, ws, 3*time.Minute, batch.ids...)
	t.Logf("every order of the first batch terminal by %s", time.Since(began).Round(time.Millisecond))
	ws.checkRunning()

	byState := batch.check(t, ctx, db)
	t.Logf("first batch after %d worker and %d NATS kills: %v", workerKills, natsKills, byState)
	for _, state := range []events.State{events.StateCompleted, events.StateFailed, events.StateCompensated} {
		if byState[string(state)] == 0 {
			t.Errorf("no order ended %s: the faults did not exercise that path", state)
		}
	}
	t.Logf("workers while nodes and peers died: %s", ws.outages())
	if n := ws.claimed(); n == 0 {
		t.Error("no worker ever claimed an orphaned order: the worker kills interrupted no work, so they proved nothing")
	} else {
		t.Logf("orders the workers claimed from killed ones: %d", n)
	}

	// A second batch with all three workers up: each must take a share.
	more := newClusterBatch(sb, "ck2", second)
	if err := more.publish(js, subjects, 2*time.Millisecond); err != nil {
		t.Fatalf("publishing the second batch: %v", err)
	}
	waitTerminal(t, ctx, db, status, ws, 2*time.Minute, more.ids...)
	more.check(t, ctx, db)
	shares := map[int]int{}
	for _, id := range more.ids {
		owner, err := db.Owner(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		slot, ok := ws.slotOf(owner)
		if !ok {
			t.Fatalf("order %s of the second batch is owned by %q, none of the three running workers", id, owner)
		}
		shares[slot]++
	}
	t.Logf("second batch of %d orders by worker: 1: %d, 2: %d, 3: %d", second, shares[0], shares[1], shares[2])
	for i := range 3 {
		if shares[i] == 0 {
			t.Errorf("worker %d processed none of the second batch's %d orders (shares %v)", i+1, second, shares)
		}
	}

	// Every order's events seq 1..k, none missing, one state per seq,
	// the last the stored outcome.
	checkStatusStream(t, ctx, js, subjects, db, append(slices.Clone(batch.ids), more.ids...))
	ws.checkRunning()
	for i := range 3 {
		ws.cur[i].Stop(30 * time.Second)
	}
	t.Logf("done after %s", time.Since(began).Round(time.Millisecond))
}

// clusterWorkers are the three worker slots, each running one `serve`
// child at a time.
type clusterWorkers struct {
	t    *testing.T
	args []string
	dirs [3]string // each slot's --data-dir (its lock file), kept across restarts
	mu   sync.Mutex
	cur  [3]*child
	all  [3][]*child // every child a slot ever ran
}

func (w *clusterWorkers) start(i int) {
	w.t.Helper()
	if w.dirs[i] == "" {
		w.dirs[i] = w.t.TempDir()
	}
	// A worker started while the cluster elects a new stream leader may
	// fail to set up its streams in time and exit, as it would under an
	// orchestrator; like one, start it again (a few times at most).
	var c *child
	for try := 1; ; try++ {
		c = startChild(w.t, append(slices.Clone(w.args), "--data-dir", w.dirs[i])...)
		if try == 3 || !exitedBeforeStart(c, 90*time.Second) {
			break
		}
		w.t.Logf("worker %d exited while starting (try %d), started again: %s", i+1, try, c.Tail(1))
	}
	c.WaitLog(workerStarted, 90*time.Second)
	w.mu.Lock()
	w.cur[i] = c
	w.all[i] = append(w.all[i], c)
	w.mu.Unlock()
}

func (w *clusterWorkers) kill(i int) {
	w.mu.Lock()
	c := w.cur[i]
	w.mu.Unlock()
	c.Kill()
}

// slotOf finds which running worker registered as id (a worker registers
// anew, with a fresh id, after a lost lease).
func (w *clusterWorkers) slotOf(id string) (int, bool) {
	if id == "" {
		return 0, false
	}
	for i, c := range w.cur {
		for _, m := range registeredWorker.FindAllStringSubmatch(c.Output(), -1) {
			if m[1] == id {
				return i, true
			}
		}
	}
	return 0, false
}

// claimed is how many orphaned orders the workers claimed in all.
func (w *clusterWorkers) claimed() int {
	n := 0
	for _, slot := range w.all {
		for _, c := range slot {
			for _, m := range claimedOrphans.FindAllStringSubmatch(c.Output(), -1) {
				k, _ := strconv.Atoi(m[1])
				n += k
			}
		}
	}
	return n
}

var (
	logTime     = regexp.MustCompile(`^time=(\S+) `)
	notReady    = regexp.MustCompile(`msg="not ready: taking no work`)
	readyAgain  = regexp.MustCompile(`msg="ready: taking work"`)
	relayFailed = regexp.MustCompile(`msg="relaying the outbox" err=`)
)

// outages sums up, from every worker's log, the spells a worker was not
// ready (NATS, the intents stream or the store did not answer) and how
// often its relay could not publish: what a NATS node's death costs.
func (w *clusterWorkers) outages() string {
	spells, relays := 0, 0
	var longest time.Duration
	for _, slot := range w.all {
		for _, c := range slot {
			var since time.Time
			for _, line := range strings.Split(c.Output(), "\n") {
				m := logTime.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				at, err := time.Parse(time.RFC3339Nano, m[1])
				if err != nil {
					continue
				}
				switch {
				case notReady.MatchString(line):
					if since.IsZero() {
						since = at
						spells++
					}
				case readyAgain.MatchString(line):
					if !since.IsZero() {
						longest = max(longest, at.Sub(since))
						since = time.Time{}
					}
				case relayFailed.MatchString(line):
					relays++
				}
			}
		}
	}
	return fmt.Sprintf("%d not-ready spells, the longest %s; %d failed relay rounds", spells, longest.Round(time.Millisecond), relays)
}

// checkRunning fails the test if a worker exited on its own: a NATS node
// or a peer dying must not take a worker down.
func (w *clusterWorkers) checkRunning() {
	w.t.Helper()
	for i, c := range w.cur {
		select {
		case <-c.Exited():
			w.t.Fatalf("worker %d exited (%v); its log:\n%s", i+1, c.Err(), c.Tail(40))
		default:
		}
	}
}

// tails is the last lines of every running worker's log.
func (w *clusterWorkers) tails() string {
	var b strings.Builder
	for i, c := range w.cur {
		fmt.Fprintf(&b, "--- worker %d:\n%s\n", i+1, c.Tail(15))
	}
	return b.String()
}

// waitTerminal waits until the store has every order terminal, then until
// the status stream announced it (the relays published it). On a timeout
// it says where the stuck orders are: stored, owner, step, history.
func waitTerminal(t *testing.T, ctx context.Context, db *postgres.Store, status *kit.JetStream, ws *clusterWorkers, timeout time.Duration, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pending := slices.Clone(ids)
	lastNote := time.Now()
	for len(pending) > 0 {
		still := pending[:0]
		for _, id := range pending {
			o, err := db.Get(ctx, id)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			if err != nil || !events.State(o.State).Terminal() {
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		if time.Since(lastNote) > 20*time.Second {
			lastNote = time.Now()
			t.Logf("%d of %d orders not terminal yet, e.g.:\n%s", len(pending), len(ids), describeOrders(ctx, db, pending[:min(len(pending), 3)]))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d orders not terminal in the store within %s:\n%s\nworkers:\n%s",
				len(pending), len(ids), timeout, describeOrders(ctx, db, pending[:min(len(pending), 8)]), ws.tails())
		}
		time.Sleep(250 * time.Millisecond) // polling the database: no event to wait on
	}
	status.WaitTerminal(t, 60*time.Second, ids...)
}

// describeOrders says where each order is, for a failure message.
func describeOrders(ctx context.Context, db *postgres.Store, ids []string) string {
	var b strings.Builder
	workers, _ := db.Workers(ctx)
	fmt.Fprintf(&b, "live workers: %v\n", workers)
	for _, id := range ids {
		o, err := db.Get(ctx, id)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", id, err)
			continue
		}
		owner, _ := db.Owner(ctx, id)
		fmt.Fprintf(&b, "%s: state %s step %s attempt %d seq %d next %s owner %q version %d sud %q err %s %s\n", id, o.State, o.Step,
			o.Attempt, o.Seq, o.NextRunAt.Format(time.RFC3339Nano), owner, o.Version, o.SudStatus, o.ErrorCode, o.Error)
		hist, _ := db.History(ctx, id)
		for _, h := range hist {
			fmt.Fprintf(&b, "    %s %s %s #%d %s %s %s\n", h.At.Format("15:04:05.000"), h.State, h.Step, h.Attempt, h.ErrorCode, h.Error, h.Detail)
		}
	}
	return b.String()
}

// clusterBatch is a batch of orders, each for a player of its own, half
// MOGS and half Midas, every tenth player short of one coin.
type clusterBatch struct {
	sb      *kit.Sandbox
	ids     []string
	intents []events.Intent
	poor    map[string]bool
	start   map[string]int64 // each player's balance before the batch
}

func newClusterBatch(sb *kit.Sandbox, prefix string, n int) *clusterBatch {
	b := &clusterBatch{sb: sb, poor: map[string]bool{}, start: map[string]int64{}}
	for i := range n {
		id := fmt.Sprintf("%s-%04d", prefix, i)
		in := testIntent(id, []string{"mogs", "midas"}[i%2], int64(1+i%50))
		b.start[in.Payment.OpenID] = sb.Config.InitialBalance
		if i%10 == 9 {
			b.poor[id] = true
			sb.SetAccount(in.Payment.Provider, b.appID(in), in.Payment.OpenID, in.Payment.Amount-1, 0)
			b.start[in.Payment.OpenID] = in.Payment.Amount - 1
		}
		b.ids = append(b.ids, id)
		b.intents = append(b.intents, in)
	}
	return b
}

func (b *clusterBatch) appID(in events.Intent) string {
	if in.Payment.Provider == "midas" {
		return b.sb.Config.MidasAppID
	}
	return b.sb.Config.MOGSAppID
}

// publish sends the batch as game servers do, retrying a failed publish
// with the same Nats-Msg-Id (JetStream keeps the first) while a node is
// down or a stream leader is being elected.
func (b *clusterBatch) publish(js jetstream.JetStream, s events.Subjects, pause time.Duration) error {
	for i, in := range b.intents {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		deadline := time.Now().Add(time.Minute)
		for {
			m := nats.NewMsg(s.Intent(in.MgID, in.RoomID))
			m.Data = data
			m.Header.Set(events.HeaderMsgID, b.ids[i])
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := js.PublishMsg(ctx, m)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("order %s: %w", b.ids[i], err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(pause)
	}
	return nil
}

// check verifies every order of the batch against the sandbox: it is
// stored and terminal, its outcome is the one SUD and the ledger agree
// with, it is charged once if completed and never otherwise, and its
// player's balance is exact. It returns the count by state.
func (b *clusterBatch) check(t *testing.T, ctx context.Context, db *postgres.Store) map[string]int {
	t.Helper()
	bills := map[string][]sandbox.Bill{}
	for _, bill := range b.sb.Bills() {
		bills[bill.OpenID] = append(bills[bill.OpenID], bill)
	}
	sudStatus := map[string]string{}
	for _, o := range b.sb.SUDOrders() {
		sudStatus[o.OutOrderID] = o.Status
	}
	byState := map[string]int{}
	for i, id := range b.ids {
		in := b.intents[i]
		o, err := db.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			t.Errorf("order %s lost: the store does not have it", id)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		byState[string(o.State)]++
		if !events.State(o.State).Terminal() {
			t.Errorf("order %s left %s at step %s", id, o.State, o.Step)
		}
		charged, pays := int64(0), 0
		for _, bill := range bills[in.Payment.OpenID] {
			if bill.Kind != "pay" {
				continue
			}
			pays++
			if !bill.Cancelled {
				charged += bill.Amt
			}
		}
		status, reachedSUD := sudStatus[id]
		switch {
		case b.poor[id]:
			if o.State != events.StateFailed || o.ErrorCode != "insufficient_balance" || reachedSUD || pays != 0 {
				t.Errorf("order %s of a player short of a coin ended %s (%s), SUD %q, %d pay(s): want failed insufficient_balance before SUD and any pay",
					id, o.State, o.ErrorCode, status, pays)
			}
		case o.State == events.StateCompleted:
			if status != "EXECUTE_SUCCESS" || charged != in.Payment.Amount {
				t.Errorf("order %s completed with SUD %q and %d coins charged, want EXECUTE_SUCCESS and %d", id, status, charged, in.Payment.Amount)
			}
		default:
			if charged != 0 {
				t.Errorf("order %s ended %s (%s) with %d coins charged, want none", id, o.State, o.ErrorCode, charged)
			}
		}
		if pays > 2 {
			t.Logf("order %s: %d pay bills (generations)", id, pays)
		}
		want := b.start[in.Payment.OpenID]
		if o.State == events.StateCompleted {
			want -= in.Payment.Amount
		}
		got := b.start[in.Payment.OpenID]
		if acc, ok := b.sb.Account(in.Payment.Provider, b.appID(in), in.Payment.OpenID); ok {
			got = acc.Balance
		}
		if got != want {
			t.Errorf("order %s (%s): player %s has %d coins, want %d", id, o.State, in.Payment.OpenID, got, want)
		}
	}
	return byState
}

// checkStatusStream reads the whole status stream and checks that each
// order's events are seq 1..k with none missing, that a seq published
// twice (a relay's retry) says the same state, and that the last is the
// stored, terminal state.
func checkStatusStream(t *testing.T, ctx context.Context, js jetstream.JetStream, s events.Subjects, db *postgres.Store, ids []string) {
	t.Helper()
	st, err := js.Stream(ctx, s.StatusStream())
	if err != nil {
		t.Fatal(err)
	}
	last := st.CachedInfo().State.LastSeq
	w, err := events.Watch(ctx, js, s, events.WatchFilter{DeliverAll: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	seqs := map[string]map[int]events.State{}
	dups := 0
	for read := uint64(0); read < last; {
		ev, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("status stream read to %d of %d: %v", read, last, err)
		}
		read = ev.Seq
		id := ev.Event.OutOrderID
		if seqs[id] == nil {
			seqs[id] = map[int]events.State{}
		}
		if prev, ok := seqs[id][ev.Event.Seq]; ok {
			dups++
			if prev != ev.Event.State {
				t.Errorf("order %s: seq %d published as %s and as %s", id, ev.Event.Seq, prev, ev.Event.State)
			}
			continue
		}
		seqs[id][ev.Event.Seq] = ev.Event.State
	}
	for _, id := range ids {
		k := len(seqs[id])
		for seq := 1; seq <= k; seq++ {
			if _, ok := seqs[id][seq]; !ok {
				t.Errorf("order %s: %d events but seq %d is missing", id, k, seq)
			}
		}
		o, err := db.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := seqs[id][k]; k == 0 || got != events.State(o.State) || o.Seq != k {
			t.Errorf("order %s: the status stream's last event is seq %d %s, the store has seq %d %s", id, k, got, o.Seq, o.State)
		}
	}
	t.Logf("status stream: %d events for %d orders, %d seq(s) published twice", last, len(ids), dups)
}

// exitedBeforeStart says whether c exited before it logged that its worker
// started, watching its output until one of the two happens or timeout.
func exitedBeforeStart(c *child, timeout time.Duration) bool {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for {
		if workerStarted.MatchString(c.Output()) {
			return false
		}
		select {
		case <-c.Exited():
			return !workerStarted.MatchString(c.Output())
		case <-deadline:
			return false // WaitLog reports it
		case <-tick.C:
		}
	}
}
