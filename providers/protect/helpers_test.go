package protect_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/testclock"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/midas"
	"github.com/coinsaga/coinsaga/providers/mogs"
	"github.com/coinsaga/coinsaga/providers/protect"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/providers/sud"
)

// clock is a settable Config.Now, so tests move time instead of sleeping.
type clock = testclock.Clock

func newClock() *clock { return testclock.New(testclock.Start) }

// logs is a slog.Handler that keeps every record.
type logs struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logs) WithGroup(string) slog.Handler            { return l }

func (l *logs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}

// line is a record as level, message and attributes.
type line struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (l *logs) lines() []line {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []line
	for _, r := range l.recs {
		ln := line{level: r.Level, msg: r.Message, attrs: map[string]string{}}
		r.Attrs(func(a slog.Attr) bool {
			ln.attrs[a.Key] = a.Value.String()
			return true
		})
		out = append(out, ln)
	}
	return out
}

// observer records what the guards report.
type observer struct {
	mu      sync.Mutex
	changes []string       // "mogs.pay open", "mogs.pay closed"
	refused map[string]int // by endpoint
	waited  map[string]int // by endpoint and kind: "mogs.pay bulkhead"
}

func newObserver() *observer {
	return &observer{refused: map[string]int{}, waited: map[string]int{}}
}

func (o *observer) CircuitChanged(endpoint string, open bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := "closed"
	if open {
		s = "open"
	}
	o.changes = append(o.changes, endpoint+" "+s)
}

func (o *observer) CallRefused(endpoint string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refused[endpoint]++
}

func (o *observer) CallWaited(endpoint, kind string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d <= 0 {
		panic(fmt.Sprintf("CallWaited(%s, %s, %v): a wait of nothing reported", endpoint, kind, d))
	}
	o.waited[endpoint+" "+kind]++
}

func (o *observer) snapshot() (changes []string, refused, waited map[string]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	refused, waited = map[string]int{}, map[string]int{}
	for k, v := range o.refused {
		refused[k] = v
	}
	for k, v := range o.waited {
		waited[k] = v
	}
	return append([]string(nil), o.changes...), refused, waited
}

// wantCode checks err is a *providers.Error of class and code.
func wantCode(t *testing.T, err error, class providers.Class, code providers.Code) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Class != class || pe.Code != code {
		t.Fatalf("err = %v, want a *providers.Error %v/%s", err, class, code)
	}
	return pe
}

// wantRefused checks err is a breaker's refusal of endpoint, open since
// openedAt.
func wantRefused(t *testing.T, err error, endpoint string, openedAt time.Time) {
	t.Helper()
	wantCode(t, err, providers.Retryable, providers.CodeCircuitOpen)
	var oe *protect.OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("err = %v does not wrap a *protect.OpenError", err)
	}
	if oe.Endpoint != endpoint || !oe.OpenedAt.Equal(openedAt) {
		t.Fatalf("refusal = %+v, want %s open since %v", oe, endpoint, openedAt)
	}
	if !protect.NotSent(err) {
		t.Fatalf("NotSent(%v) = false", err)
	}
}

// hits wraps the sandbox and counts the requests that reach it, per path.
type hits struct {
	next http.Handler

	mu       sync.Mutex
	n        map[string]int
	arrivals map[string][]time.Time
	inFlight map[string]int
	peak     map[string]int
	// hold, when set, keeps each request of a path waiting until it
	// returns true, or until holdUntil passes.
	hold      func(path string, inFlight int) bool
	holdUntil time.Time
	changed   *sync.Cond
}

func newHits(next http.Handler) *hits {
	h := &hits{next: next, n: map[string]int{}, arrivals: map[string][]time.Time{}, inFlight: map[string]int{}, peak: map[string]int{}}
	h.changed = sync.NewCond(&h.mu)
	return h
}

func (h *hits) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	h.mu.Lock()
	h.n[p]++
	h.arrivals[p] = append(h.arrivals[p], time.Now())
	h.inFlight[p]++
	h.peak[p] = max(h.peak[p], h.inFlight[p])
	h.changed.Broadcast()
	for h.hold != nil && !h.hold(p, h.peak[p]) && time.Now().Before(h.holdUntil) {
		h.changed.Wait()
	}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.inFlight[p]--
		h.mu.Unlock()
	}()
	h.next.ServeHTTP(w, r)
}

// holdUntilPeak keeps requests to path waiting until peak requests are in
// flight at once, or until the deadline: a proof that the guards let that
// many through together.
func (h *hits) holdUntilPeak(path string, peak int, deadline time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.holdUntil = time.Now().Add(deadline)
	h.hold = func(p string, seen int) bool { return p != path || seen >= peak }
	// Wake the waiters at the deadline, which no request may bring.
	time.AfterFunc(deadline, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.changed.Broadcast()
	})
}

func (h *hits) count(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[path]
}

func (h *hits) peakOf(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak[path]
}

func (h *hits) arrivalsOf(path string) []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	a := append([]time.Time(nil), h.arrivals[path]...)
	sort.Slice(a, func(i, j int) bool { return a[i].Before(a[j]) })
	return a
}

// env is the real sandbox over HTTP, behind a request counter, with the
// real clients pointed at it.
type env struct {
	sb   *sandbox.Sandbox
	hits *hits
	url  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	sb := sandbox.New(sandbox.Config{Seed: 1})
	h := newHits(sb)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{sb: sb, hits: h, url: srv.URL}
}

const (
	mogsAppID    = "10000"
	midasAppID   = "1450000000"
	midasAppKey  = "sandbox-midas-appkey"
	sudAppID     = "sandbox-sud-app"
	sudAppSecret = "sandbox-sud-secret"
)

func (e *env) mogs(timeout time.Duration) *mogs.Client {
	return mogs.New(mogs.Config{BaseURL: e.url + "/mogs", AppID: mogsAppID, Timeout: timeout})
}

func (e *env) midas() *midas.Client {
	return midas.New(midas.Config{BaseURL: e.url, AppID: midasAppID, AppKey: midasAppKey, Timeout: 5 * time.Second})
}

func (e *env) sud(t *testing.T) *sud.Client {
	t.Helper()
	c, err := sud.New(sud.Config{AppID: sudAppID, AppSecret: sudAppSecret,
		CreateOrderURL: e.url + "/sud/create_order", QueryOrderURL: e.url + "/sud/query_order"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mogsAccount(openid string) providers.Account {
	return providers.Account{OpenID: openid, MOGS: providers.MOGSLogin{JSCode: "js-" + openid, PayItem: "dice"}}
}

func midasAccount(openid string) providers.Account {
	return providers.Account{OpenID: openid, Midas: providers.MidasLogin{
		OpenKey: "openkey-" + openid, PF: "myapp_m_qq-00000000-android-00000000-ysdk", PFKey: "pfkey",
		SessionType: "kp_actoken", UserIP: "10.0.0.1", AccountType: "common", PayItem: "dice*1",
	}}
}

func order(id string) sud.CreateOrderRequest {
	return sud.CreateOrderRequest{
		OutOrderID: id, OutGroupID: "group-1", MGID: "1468180338417074177", RoomID: "9009",
		Cmd: "specify_dice_roll", FromUID: "001", ToUID: "002", Value: 100,
		Payload: []byte(`{"point":6,"seq":1}`),
	}
}
