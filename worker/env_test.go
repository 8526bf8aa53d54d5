package worker_test

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/worker"
)

// env is a whole coinsaga on loopback, started by the test kit: embedded
// JetStream, the sandbox over real HTTP, SQLite in a temp dir, and one
// worker. Its fields name the kit's pieces the tests use most.
type env struct {
	t          *testing.T
	nc         *nats.Conn
	js         jetstream.JetStream
	subjects   events.Subjects
	jet        *kit.JetStream
	sb         *kit.Sandbox
	sandbox    *sandbox.Sandbox
	sandboxURL string
	store      *store.SQLite
	cfg        worker.Config
	worker     *worker.Worker
	running    *kit.Worker
	status     *kit.Status
	calls      *kit.Calls // every provider call the worker makes
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
	jet := kit.ConnectJetStream(t, ns)
	sb := kit.StartSandbox(t, 1)
	e := &env{t: t, nc: jet.Conn, js: jet.JS, jet: jet, sb: sb, sandbox: sb.Sandbox, sandboxURL: sb.URL,
		store: kit.OpenStore(t), calls: &kit.Calls{}}
	cfg := worker.Config{
		Conn: jet.Conn, Store: e.store, SUD: e.sudClient(), Wallets: e.wallets(),
		Concurrency: 64, ConfirmInterval: 50 * time.Millisecond, ConfirmTimeout: time.Second,
		Retry:       worker.RetryPolicy{MaxAttempts: 3, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		CancelRetry: worker.RetryPolicy{MaxAttempts: 3, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.cfg = cfg
	// Listening first: no event of the worker's can slip by.
	e.status = kit.WatchStatus(t, jet.Conn, e.subjects)
	e.running = kit.StartWorker(t, cfg)
	e.worker = e.running.Worker
	return e
}

// restart drains the worker and starts a new one on the same store, NATS
// and sandbox, as a restarted process would: it knows only what is stored.
func (e *env) restart() {
	e.t.Helper()
	e.running.Restart()
	e.worker = e.running.Worker
}

func (e *env) sudClient() *sud.Client { return e.sb.SUD(e.t, e.calls) }

func (e *env) wallets() map[string]providers.Wallet { return e.sb.Wallets(e.calls) }

// stop drains the worker and checks it stopped cleanly.
func (e *env) stop() { e.running.Stop() }

// publish sends raw intent bytes the way a game server does.
func (e *env) publish(subject string, data []byte, msgID string) {
	e.t.Helper()
	e.jet.Publish(e.t, subject, data, msgID)
}

func (e *env) publishIntent(in events.Intent) {
	e.t.Helper()
	e.jet.PublishIntent(e.t, in)
}

// states returns the states an order went through, by seq.
func (e *env) states(id string) []events.State { return e.status.States(id) }

// lastEvent returns the order's highest-seq event.
func (e *env) lastEvent(id string) (events.StatusEvent, bool) { return e.status.Last(id) }

// waitState waits until id has published an event of state.
func (e *env) waitState(id string, state events.State, timeout time.Duration) {
	e.t.Helper()
	e.status.WaitState(e.t, id, state, timeout)
}

// waitTerminal waits until every id has published a terminal state event,
// and returns those final events.
func (e *env) waitTerminal(timeout time.Duration, ids ...string) map[string]events.StatusEvent {
	e.t.Helper()
	return e.status.WaitTerminal(e.t, timeout, ids...)
}

// run publishes in and returns the status event that ended it.
func (e *env) run(in events.Intent, timeout time.Duration) events.StatusEvent {
	e.t.Helper()
	e.publishIntent(in)
	return e.waitTerminal(timeout, in.OutOrderID)[in.OutOrderID]
}

// deadLetters reads every dead letter stored so far.
func (e *env) deadLetters() []events.DeadLetter {
	e.t.Helper()
	return e.jet.DeadLetters(e.t)
}

// waitDeadLetter waits for a dead letter about id.
func (e *env) waitDeadLetter(id string, timeout time.Duration) events.DeadLetter {
	e.t.Helper()
	return e.jet.WaitDeadLetter(e.t, id, timeout)
}

// bills returns the sandbox's bills for one player.
func (e *env) bills(openid string) []sandbox.Bill { return e.sb.BillsOf(openid) }

// intentSeq numbers intents; tests running in parallel share it.
var intentSeq atomic.Int64

// intent returns a valid intent for the sample game, paid by provider.
func intent(provider string, amount int64) events.Intent {
	id := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e9, intentSeq.Add(1))
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
