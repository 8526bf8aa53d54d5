package service

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/config"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/internal/pgtest"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/postgres"
	"github.com/coinsaga/coinsaga/worker"
)

// shared is what several workers of one test share: one PostgreSQL
// database, one JetStream and one sandbox (one ledger, so that money is
// counted across workers).
type shared struct {
	dbURL   string
	natsURL string
	sb      *sandbox.Sandbox
	prov    *config.Config
	db      *postgres.Store // an unregistered handle, for looking
}

func newShared(t *testing.T) *shared {
	t.Helper()
	dbURL := pgtest.DB(t)
	srv := embednats.StartTest(t)
	sb, url, stop, err := StartSandbox("127.0.0.1:0", "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	prov := config.Sandbox(url)
	prov.Now = sb.Now
	return &shared{dbURL: dbURL, natsURL: srv.ClientURL(), sb: sb, prov: prov}
}

// look opens the unregistered handle once the schema exists.
func (s *shared) look(t *testing.T) *postgres.Store {
	t.Helper()
	if s.db == nil {
		db, err := postgres.Open(context.Background(), s.dbURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s.db = db
	}
	return s.db
}

// member is one worker of the shared setup.
type member struct {
	*running
	registry *prometheus.Registry
	store    *pausable // the store as the worker uses it
}

// pausable is a shared store whose lease renewals a test can hold back:
// a worker that stalls, or whose network to the database is cut, looks
// like this to the store.
type pausable struct {
	store.Shared
	paused atomic.Bool
}

var errPaused = errors.New("renew held back by the test")

func (p *pausable) Renew(ctx context.Context) (store.Lease, error) {
	if p.paused.Load() {
		return store.Lease{}, errPaused
	}
	return p.Shared.Renew(ctx)
}

func (s *shared) start(t *testing.T, name string, lt store.LeaseTimings, wc worker.Config) *member {
	t.Helper()
	m := s.launch(t, name, s.dbURL, lt, wc)
	m.waitServing(t)
	return m
}

// launch starts a worker on dbURL ("" for SQLite in its own data dir)
// without waiting for it to serve.
func (s *shared) launch(t *testing.T, name, dbURL string, lt store.LeaseTimings, wc worker.Config) *member {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.natsURL, nats.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	m := &member{running: &running{natsURL: s.natsURL, http: ln.Addr().String(), log: &kit.LogBuffer{}, done: make(chan error, 1)},
		registry: prometheus.NewRegistry()}
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	opts := Options{
		NATSURL: s.natsURL, Conn: nc, Subjects: events.Subjects{Prefix: "coinsaga"},
		DatabaseURL: dbURL, DataDir: t.TempDir(), LeaseTimings: lt,
		WrapStore: func(st store.Store) store.Store {
			if sh, ok := st.(store.Shared); ok && dbURL != "" {
				m.store = &pausable{Shared: sh}
				return m.store
			}
			return st
		},
		Providers: s.prov, HTTP: ln, Registry: m.registry,
		Worker: wc, Logger: slog.New(slog.NewTextHandler(m.log, nil)).With("worker_name", name),
	}
	go func() { m.done <- Run(ctx, opts) }()
	t.Cleanup(func() { m.close(t) })
	return m
}

var registeredRE = regexp.MustCompile(`registered as a worker of the shared store.* worker=([0-9a-f]{32})`)

// workerIDs are the ids this member registered under, oldest first.
func (m *member) workerIDs() []string {
	var ids []string
	for _, sm := range registeredRE.FindAllStringSubmatch(m.log.String(), -1) {
		ids = append(ids, sm[1])
	}
	return ids
}

// moneyCalls counts the member's provider calls that change money.
func (m *member) moneyCalls(t *testing.T) float64 {
	t.Helper()
	mfs, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "coinsaga_provider_requests_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "endpoint" && (l.GetValue() == "pay" || l.GetValue() == "cancelpay" || l.GetValue() == "create_order") {
					n += mt.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

func sharedIntent(i int) events.Intent {
	in := intent(i)
	return in
}

// publish publishes orders first..first+n-1 as a game server would.
func publish(t *testing.T, natsURL string, first, n int) {
	t.Helper()
	jet := kit.Connect(t, natsURL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := first; i < first+n; i++ {
		if _, err := events.Publish(ctx, jet.JS, jet.Subjects, sharedIntent(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// waitCompleted waits for orders first..first+n-1 to end, each completed.
func waitCompleted(t *testing.T, natsURL string, first, n int, within time.Duration) {
	t.Helper()
	jet := kit.Connect(t, natsURL)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for i := first; i < first+n; i++ {
		id := sharedIntent(i).OutOrderID
		ev, err := events.WaitTerminal(ctx, jet.JS, jet.Subjects, id)
		if err != nil {
			t.Fatalf("order %s: %v", id, err)
		}
		if ev.State != events.StateCompleted {
			t.Fatalf("order %s ended %s (%s), want completed", id, ev.State, ev.Error)
		}
	}
}

// checkMoney checks that every one of the n orders' players was charged
// exactly once: one uncancelled bill of the amount, and the balance less it.
func (s *shared) checkMoney(t *testing.T, n int) {
	t.Helper()
	appID := sandbox.DefaultConfig().MOGSAppID
	charged := map[string]int64{}
	bills := map[string]int{}
	for _, b := range s.sb.Bills() {
		if b.Kind == "pay" && !b.Cancelled {
			charged[b.OpenID] += b.Amt
			bills[b.OpenID]++
		}
	}
	initial := sandbox.DefaultConfig().InitialBalance
	for i := range n {
		in := sharedIntent(i)
		openid := in.Payment.OpenID
		if bills[openid] != 1 || charged[openid] != in.Payment.Amount {
			t.Errorf("player %s: %d uncancelled bills of %d coins in all, want 1 of %d", openid, bills[openid], charged[openid], in.Payment.Amount)
		}
		acct, ok := s.sb.Account(events.ProviderMOGS, appID, openid)
		if !ok || acct.Balance != initial-in.Payment.Amount {
			t.Errorf("player %s: balance %d (account known %v), want %d", openid, acct.Balance, ok, initial-in.Payment.Amount)
		}
	}
}

// owners maps each of the n orders to its owner ("" for none).
func (s *shared) owners(t *testing.T, n int) map[string]string {
	t.Helper()
	out := make(map[string]string, n)
	for i := range n {
		id := sharedIntent(i).OutOrderID
		o, err := s.look(t).Owner(context.Background(), id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[id] = o
	}
	return out
}

// waitingOf returns the orders among the n that owner holds in the
// confirm step.
func (s *shared) waitingOf(t *testing.T, owner string, n int) []string {
	t.Helper()
	var ids []string
	for id, o := range s.owners(t, n) {
		if o != owner {
			continue
		}
		row, err := s.look(t).Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if row.Step == worker.StepConfirm && !row.NextRunAt.IsZero() {
			ids = append(ids, id)
		}
	}
	return ids
}

// waitHeld waits until the worker registered as owner holds at least five
// of the n orders waiting in confirmation, and returns those it holds.
func (s *shared) waitHeld(t *testing.T, owner string, n int) []string {
	t.Helper()
	var held []string
	kit.Eventually(t, 30*time.Second, "worker "+owner+" holds orders waiting in confirmation", func() bool {
		held = s.waitingOf(t, owner, n)
		return len(held) >= 5
	})
	return held
}

// ownedOrDone says whether owner owns each of ids, or it is due nowhere
// (finished).
func (s *shared) ownedOrDone(t *testing.T, owner string, ids []string) bool {
	t.Helper()
	for _, id := range ids {
		o, err := s.look(t).Owner(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if o == owner {
			continue
		}
		row, err := s.look(t).Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !row.NextRunAt.IsZero() {
			return false
		}
	}
	return true
}

func TestTwoWorkersOnOneDatabaseShareTheOrdersAndChargeEachOnce(t *testing.T) {
	t.Parallel()
	s := newShared(t)
	a := s.start(t, "a", store.LeaseTimings{}, worker.Config{})
	b := s.start(t, "b", store.LeaseTimings{}, worker.Config{})
	const n = 400
	publish(t, s.natsURL, 0, n)
	waitCompleted(t, s.natsURL, 0, n, 2*time.Minute)
	s.checkMoney(t, n)
	pa, pb := a.moneyCalls(t), b.moneyCalls(t)
	t.Logf("money calls (create_order, pay, cancel): worker a %v, worker b %v", pa, pb)
	if pa == 0 || pb == 0 {
		t.Errorf("one worker did all the work: a made %v money calls, b %v", pa, pb)
	}
	if strings.Contains(a.log.String()+b.log.String(), "another worker owns this prefix") {
		t.Errorf("a worker was refused the prefix: with PostgreSQL no prefix lease is taken")
	}
}

func TestAGracefulStopHandsTheWaitingOrdersToTheOtherWorkerAtOnce(t *testing.T) {
	t.Parallel()
	s := newShared(t)
	// Debits show only after a while, so that orders wait in confirmation.
	s.sb.SetFault(sandbox.Fault{Endpoint: "mogs.pay", VisibilityDelayMS: 6000})
	wc := worker.Config{ConfirmInterval: 300 * time.Millisecond}
	a := s.start(t, "a", store.LeaseTimings{}, wc)
	b := s.start(t, "b", store.LeaseTimings{}, wc)
	const n = 200
	publish(t, s.natsURL, 0, n)
	held := s.waitHeld(t, a.workerIDs()[0], n)
	stopped := time.Now()
	if err := a.close(t); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("worker a ended with %v", err)
	}
	stopTook := time.Since(stopped)
	idB := b.workerIDs()[0]
	kit.Eventually(t, store.LeaseTTL, "worker b owns (or finished) every order a held", func() bool { return s.ownedOrDone(t, idB, held) })
	takeover := time.Since(stopped)
	t.Logf("graceful stop of a took %s; b owned a's %d waiting orders %s after the stop began", stopTook.Round(time.Millisecond), len(held), takeover.Round(time.Millisecond))
	if !strings.Contains(a.log.String(), "worker lease released") {
		t.Errorf("worker a's log does not say it released its lease:\n%s", a.log.String())
	}
	waitCompleted(t, s.natsURL, 0, n, time.Minute)
	s.checkMoney(t, n)
}

func TestAWorkerThatLosesItsLeaseStopsMovingMoneyAndTheOtherFinishesItsOrders(t *testing.T) {
	t.Parallel()
	s := newShared(t)
	s.sb.SetFault(sandbox.Fault{Endpoint: "mogs.pay", VisibilityDelayMS: 20000})
	lt := store.LeaseTimings{TTL: 6 * time.Second, Grace: 4 * time.Second}
	wc := worker.Config{ConfirmInterval: 300 * time.Millisecond}
	a := s.start(t, "a", lt, wc)
	b := s.start(t, "b", lt, wc)
	const n = 200
	publish(t, s.natsURL, 0, n)
	held := s.waitHeld(t, a.workerIDs()[0], n)
	// A's rows as A knows them, for a stale commit later.
	before := make(map[string]store.Order, len(held))
	for _, id := range held {
		o, err := s.look(t).Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		before[id] = o
	}

	paused := time.Now()
	a.store.paused.Store(true)
	// The local fence closes at most TTL - LeaseFenceMargin after the
	// last renew; then a says it is not ready.
	kit.Eventually(t, lt.TTL, "worker a's local fence closes (not ready)", func() bool { return !a.ready() })
	fenced := time.Since(paused)
	atFence := a.moneyCalls(t)

	idB := b.workerIDs()[0]
	kit.Eventually(t, 60*time.Second, "worker b rescued and claimed a's orders", func() bool { return s.ownedOrDone(t, idB, held) })
	takeover := time.Since(paused)
	t.Logf("lease of a held back: local fence closed after %s; b owned a's %d waiting orders %s after the last renew (TTL %s, grace %s)",
		fenced.Round(time.Millisecond), len(held), takeover.Round(time.Millisecond), lt.TTL, lt.Grace)
	if takeover < lt.TTL+lt.Grace-store.LeaseFenceMargin {
		t.Errorf("b took a's orders %s after a's last renew, before TTL + grace (%s): the lease could still have been a's", takeover, lt.TTL+lt.Grace)
	}

	// A stale commit through a's handle is refused: the rows moved on.
	for _, id := range held[:1] {
		from := before[id]
		to := from
		to.Attempt++
		_, err := a.store.Apply(context.Background(), store.Transition{From: from, To: to,
			History: []store.HistoryEntry{{At: time.Now(), State: from.State, Step: from.Step, Attempt: to.Attempt, Detail: "stale commit"}}})
		if !errors.Is(err, store.ErrStale) {
			t.Errorf("a stale commit of %s through a's handle returned %v, want a refusal (ErrStale)", id, err)
		}
	}

	waitCompleted(t, s.natsURL, 0, n, 90*time.Second)
	if got := a.moneyCalls(t); got != atFence {
		t.Errorf("worker a made %v money calls after its local fence closed (%v at the fence, %v now)", got-atFence, atFence, got)
	}
	s.checkMoney(t, n)

	// Renewing again, a learns its lease is gone, drops what it held and
	// registers anew; then it takes work again.
	a.store.paused.Store(false)
	kit.Eventually(t, 30*time.Second, "worker a registers anew", func() bool { return len(a.workerIDs()) >= 2 })
	if !strings.Contains(a.log.String(), "worker lease lost") {
		t.Errorf("worker a's log does not say its lease was lost:\n%s", a.log.String())
	}
	kit.Eventually(t, 30*time.Second, "worker a is ready again", a.ready)
	s.sb.ClearFaults()
	publish(t, s.natsURL, n, 50)
	waitCompleted(t, s.natsURL, n, 50, time.Minute)
	s.checkMoney(t, n+50)
}

func TestAReplayOfAnOrderWhoseWorkerIsGoneIsResumedByAnother(t *testing.T) {
	t.Parallel()
	s := newShared(t)
	in := sharedIntent(0)
	appID := sandbox.DefaultConfig().MOGSAppID
	// Too few coins: the order fails at the baseline, and stays a's.
	s.sb.SetAccount(events.ProviderMOGS, appID, in.Payment.OpenID, 5, 0)
	a := s.start(t, "a", store.LeaseTimings{}, worker.Config{})
	publish(t, s.natsURL, 0, 1)
	kit.Eventually(t, 30*time.Second, "the order fails", func() bool {
		o, err := s.look(t).Get(context.Background(), in.OutOrderID)
		return err == nil && o.State == events.StateFailed && o.NextRunAt.IsZero()
	})
	if err := a.close(t); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("worker a ended with %v", err)
	}
	b := s.start(t, "b", store.LeaseTimings{}, worker.Config{})
	s.sb.SetAccount(events.ProviderMOGS, appID, in.Payment.OpenID, 1000, 0)

	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	// As `coinsaga dlq replay` sends it back.
	jet := kit.Connect(t, s.natsURL)
	jet.Replay(t, events.DeadLetter{OriginalSubject: jet.Subjects.Intent(in.MgID, in.RoomID), Data: data}, in.OutOrderID+":replay:1")
	kit.Eventually(t, 30*time.Second, "the replayed order completes", func() bool {
		o, err := s.look(t).Get(context.Background(), in.OutOrderID)
		return err == nil && o.State == events.StateCompleted
	})
	if owner, err := s.look(t).Owner(context.Background(), in.OutOrderID); err != nil || owner != b.workerIDs()[0] {
		t.Errorf("the replayed order is owned by %q (%v), want worker b %s", owner, err, b.workerIDs()[0])
	}
	if acct, _ := s.sb.Account(events.ProviderMOGS, appID, in.Payment.OpenID); acct.Balance != 1000-in.Payment.Amount {
		t.Errorf("balance after the replay %d, want %d", acct.Balance, 1000-in.Payment.Amount)
	}
}

func TestASharedStoreWorkerRefusesAPrefixASQLiteWorkerHolds(t *testing.T) {
	t.Parallel()
	s := newShared(t)
	lone := s.launch(t, "sqlite", "", store.LeaseTimings{}, worker.Config{})
	lone.waitServing(t)
	pg := s.launch(t, "pg", s.dbURL, store.LeaseTimings{}, worker.Config{})
	if err := pg.refused(t, 30*time.Second, "a PostgreSQL worker joined a prefix a SQLite worker holds"); !errors.Is(err, worker.ErrPrefixOwned) {
		t.Fatalf("the PostgreSQL worker ended with %v, want ErrPrefixOwned", err)
	}
}
