package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/midas"
	"github.com/coinsaga/coinsaga/providers/mogs"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/worker"
)

// env is a whole coinsaga on loopback: embedded JetStream, the sandbox over
// real HTTP, SQLite in a temp dir, and one worker.
type env struct {
	t          *testing.T
	nc         *nats.Conn
	js         jetstream.JetStream
	subjects   events.Subjects
	sandbox    *sandbox.Sandbox
	sandboxURL string
	store      *store.SQLite
	cfg        worker.Config
	worker     *worker.Worker
	cancel     context.CancelFunc
	done       chan error

	calls *countingObserver // every provider call the worker makes

	mu     sync.Mutex
	events map[string][]events.StatusEvent // by out_order_id, in arrival order
	wakeup chan struct{}
}

// countingObserver counts provider calls by endpoint and class.
type countingObserver struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countingObserver) ObserveCall(provider, endpoint string, class providers.Class, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[endpoint+"/"+class.String()]++
}

// calls returns the calls to endpoint, whatever their class.
func (c *countingObserver) calls(endpoint string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for key, v := range c.n {
		if strings.HasPrefix(key, endpoint+"/") {
			n += v
		}
	}
	return n
}

// count returns the calls to endpoint ending in class ("pay_m/retryable").
func (c *countingObserver) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

type envOption func(*worker.Config)

func startEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return startEnvOn(t, embednats.StartTest(t), opts...)
}

// startEnvOn is startEnv on a server the test started itself, for server
// options of its own (a smaller max payload, say).
func startEnvOn(t *testing.T, ns *embednats.Server, opts ...envOption) *env {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	sbCfg := sandbox.DefaultConfig()
	sbCfg.Games = events.DefaultCatalog()
	sbCfg.Seed = 1
	sb := sandbox.New(sbCfg)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)

	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "coinsaga.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	e := &env{t: t, nc: nc, js: js, sandbox: sb, sandboxURL: srv.URL, store: st,
		events: map[string][]events.StatusEvent{}, wakeup: make(chan struct{}, 1), calls: &countingObserver{}}
	cfg := worker.Config{
		Conn: nc, Store: st, SUD: e.sudClient(), Wallets: e.wallets(),
		Concurrency: 64, ConfirmInterval: 50 * time.Millisecond, ConfirmTimeout: time.Second,
		Retry:       worker.RetryPolicy{MaxAttempts: 3, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		CancelRetry: worker.RetryPolicy{MaxAttempts: 3, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.cfg = cfg
	e.run()
	t.Cleanup(e.stop)
	e.collectStatus()
	return e
}

// run starts a worker with e.cfg and waits until it is ready.
func (e *env) run() {
	e.t.Helper()
	w, err := worker.New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.worker = w
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- w.Run(ctx) }()
	e.waitReady()
}

// restart drains the worker and starts a new one on the same store, NATS
// and sandbox, as a restarted process would: it knows only what is stored.
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	e.run()
}

func (e *env) sudClient() *sud.Client {
	d := sandbox.DefaultConfig()
	c, err := sud.New(sud.Config{AppID: d.SUDAppID, AppSecret: d.SUDAppSecret,
		CreateOrderURL: e.sandboxURL + "/sud/create_order", QueryOrderURL: e.sandboxURL + "/sud/query_order",
		Timeout: 2 * time.Second, Observer: e.calls})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) wallets() map[string]providers.Wallet {
	d := sandbox.DefaultConfig()
	return map[string]providers.Wallet{
		events.ProviderMOGS:  mogs.New(mogs.Config{BaseURL: e.sandboxURL + "/mogs", AppID: d.MOGSAppID, Timeout: 2 * time.Second, Observer: e.calls}),
		events.ProviderMidas: midas.New(midas.Config{BaseURL: e.sandboxURL, AppID: d.MidasAppID, AppKey: d.MidasAppKey, Timeout: 2 * time.Second, Observer: e.calls}),
	}
}

// stop drains the worker and checks it stopped cleanly.
func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("worker stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		e.t.Error("worker did not drain within 30s")
	}
}

func (e *env) waitReady() {
	deadline := time.Now().Add(10 * time.Second)
	for !e.worker.Ready() {
		if time.Now().After(deadline) {
			e.t.Fatal("worker not ready within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// collectStatus records every status event as it is published.
func (e *env) collectStatus() {
	sub, err := e.nc.Subscribe(e.subjects.Status("*", "*", "*"), func(m *nats.Msg) {
		var ev events.StatusEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			e.t.Errorf("status event does not decode: %v: %s", err, m.Data)
			return
		}
		e.mu.Lock()
		e.events[ev.OutOrderID] = append(e.events[ev.OutOrderID], ev)
		e.mu.Unlock()
		select {
		case e.wakeup <- struct{}{}:
		default:
		}
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
}

// publish sends raw intent bytes the way a game server does.
func (e *env) publish(subject string, data []byte, msgID string) {
	e.t.Helper()
	m := nats.NewMsg(subject)
	m.Data = data
	if msgID != "" {
		m.Header.Set(events.HeaderMsgID, msgID)
	}
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		e.t.Fatalf("publish: %v", err)
	}
}

func (e *env) publishIntent(in events.Intent) {
	e.t.Helper()
	data, err := json.Marshal(in)
	if err != nil {
		e.t.Fatal(err)
	}
	e.publish(e.subjects.Intent(in.MgID, in.RoomID), data, in.OutOrderID)
}

// states returns the states an order went through, by seq.
func (e *env) states(id string) []events.State {
	e.mu.Lock()
	defer e.mu.Unlock()
	bySeq := map[int]events.State{}
	max := 0
	for _, ev := range e.events[id] {
		bySeq[ev.Seq] = ev.State
		if ev.Seq > max {
			max = ev.Seq
		}
	}
	out := make([]events.State, 0, max)
	for i := 1; i <= max; i++ {
		out = append(out, bySeq[i])
	}
	return out
}

// lastEvent returns the order's highest-seq event.
func (e *env) lastEvent(id string) (events.StatusEvent, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var last events.StatusEvent
	for _, ev := range e.events[id] {
		if ev.Seq > last.Seq {
			last = ev
		}
	}
	return last, last.Seq > 0
}

// waitState waits until id has published an event of state.
func (e *env) waitState(id string, state events.State, timeout time.Duration) {
	e.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !slices.Contains(e.states(id), state) {
		select {
		case <-e.wakeup:
		case <-time.After(100 * time.Millisecond):
		case <-deadline.C:
			e.t.Fatalf("order %s not %s after %s; states %v", id, state, timeout, e.states(id))
		}
	}
}

// waitTerminal waits until every id has published a terminal state event,
// and returns those final events.
func (e *env) waitTerminal(timeout time.Duration, ids ...string) map[string]events.StatusEvent {
	e.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		final := map[string]events.StatusEvent{}
		for _, id := range ids {
			if ev, ok := e.lastEvent(id); ok && ev.State.Terminal() {
				final[id] = ev
			}
		}
		if len(final) == len(ids) {
			return final
		}
		select {
		case <-e.wakeup:
		case <-time.After(100 * time.Millisecond):
		case <-deadline.C:
			var missing []string
			for _, id := range ids {
				if _, ok := final[id]; !ok {
					missing = append(missing, id)
					if len(missing) == 5 {
						break
					}
				}
			}
			e.t.Fatalf("%d of %d orders not terminal after %s, e.g. %v", len(ids)-len(final), len(ids), timeout, missing)
		}
	}
}

// deadLetters reads every dead letter stored so far.
func (e *env) deadLetters() []events.DeadLetter {
	e.t.Helper()
	ctx := context.Background()
	stream, err := e.js.Stream(ctx, e.subjects.DLQStream())
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []events.DeadLetter
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		out = append(out, events.DeadLetterFromMsg(m))
	}
	return out
}

// waitDeadLetter waits for a dead letter about id.
func (e *env) waitDeadLetter(id string, timeout time.Duration) events.DeadLetter {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, dl := range e.deadLetters() {
			if dl.OutOrderID == id {
				return dl
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no dead letter for %s within %s", id, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bills returns the sandbox's bills for one player.
func (e *env) bills(openid string) []sandbox.Bill {
	var out []sandbox.Bill
	for _, b := range e.sandbox.Bills() {
		if b.OpenID == openid {
			out = append(out, b)
		}
	}
	return out
}

var intentSeq int

// intent returns a valid intent for the sample game, paid by provider.
func intent(provider string, amount int64) events.Intent {
	intentSeq++
	id := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e9, intentSeq)
	in := events.Intent{
		OutOrderID: id, OutGroupID: "g1", MgID: "1468180338417074177", RoomID: "9009",
		Cmd: "specify_dice_roll", FromUID: "001", ToUID: "002", Value: 100,
		Payload: json.RawMessage(`{"point":6,"seq":1}`),
		Payment: events.Payment{Provider: provider, Amount: amount, OpenID: "player-" + id},
	}
	switch provider {
	case events.ProviderMOGS:
		in.Payment.MOGS = &events.MOGSPayment{JSCode: "js-secret-" + id, AppPlat: 1, OSPlatID: 1, PayItem: "dice"}
	case events.ProviderMidas:
		in.Payment.Midas = &events.MidasPayment{OpenKey: "openkey-secret-" + id, PF: "qq_m_qq-2001-android", PFKey: "pfkey-secret",
			ZoneID: "1", SessionType: "kp_actoken", AccountType: "common"}
	}
	return in
}
