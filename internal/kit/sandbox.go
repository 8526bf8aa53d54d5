package kit

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/midas"
	"github.com/coinsaga/coinsaga/providers/mogs"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/store"
)

// Sandbox is the providers' sandbox served over real HTTP on loopback.
type Sandbox struct {
	*sandbox.Sandbox
	URL    string
	Config sandbox.Config
}

// StartSandbox serves a sandbox with the default configuration, the
// default game catalog and seed for its fault dice (tune may change the
// rest), until the test ends. Seed 0 picks one from the clock and logs
// it, so that a failure can be replayed.
func StartSandbox(t testing.TB, seed int64, tune ...func(*sandbox.Config)) *Sandbox {
	t.Helper()
	cfg := sandbox.DefaultConfig()
	cfg.Games = events.DefaultCatalog()
	if seed == 0 {
		seed = time.Now().UnixNano()
		t.Logf("sandbox fault seed %d", seed)
	}
	cfg.Seed = seed
	for _, f := range tune {
		f(&cfg)
	}
	sb := sandbox.New(cfg)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return &Sandbox{Sandbox: sb, URL: srv.URL, Config: cfg}
}

// BillsOf returns the sandbox's bills for one player.
func (s *Sandbox) BillsOf(openid string) []sandbox.Bill {
	var out []sandbox.Bill
	for _, b := range s.Bills() {
		if b.OpenID == openid {
			out = append(out, b)
		}
	}
	return out
}

// Pays returns each player's uncancelled pay bills.
func (s *Sandbox) Pays() map[string][]sandbox.Bill {
	out := map[string][]sandbox.Bill{}
	for _, b := range s.Bills() {
		if b.Kind == "pay" && !b.Cancelled {
			out[b.OpenID] = append(out[b.OpenID], b)
		}
	}
	return out
}

// ProviderTimeout bounds each provider call of the clients the kit makes:
// long for loopback, short enough that a hung sandbox fails a test.
const ProviderTimeout = 2 * time.Second

// SUD returns a SUD client for the sandbox, reporting calls to obs.
func (s *Sandbox) SUD(t testing.TB, obs providers.Observer) *sud.Client {
	t.Helper()
	c, err := sud.New(sud.Config{AppID: s.Config.SUDAppID, AppSecret: s.Config.SUDAppSecret,
		CreateOrderURL: s.URL + "/sud/create_order", QueryOrderURL: s.URL + "/sud/query_order",
		Timeout: ProviderTimeout, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// MOGS returns a MOGS client for the sandbox, reporting calls to obs.
func (s *Sandbox) MOGS(obs providers.Observer) *mogs.Client {
	return mogs.New(mogs.Config{BaseURL: s.URL + "/mogs", AppID: s.Config.MOGSAppID, Timeout: ProviderTimeout, Observer: obs})
}

// Midas returns a Midas client for the sandbox, reporting calls to obs.
func (s *Sandbox) Midas(obs providers.Observer) *midas.Client {
	return midas.New(midas.Config{BaseURL: s.URL, AppID: s.Config.MidasAppID, AppKey: s.Config.MidasAppKey,
		Timeout: ProviderTimeout, Observer: obs})
}

// Wallets returns both wallet clients by provider name, as the worker
// takes them.
func (s *Sandbox) Wallets(obs providers.Observer) map[string]providers.Wallet {
	return map[string]providers.Wallet{events.ProviderMOGS: s.MOGS(obs), events.ProviderMidas: s.Midas(obs)}
}

// OpenStore opens a SQLite store in a directory of the test's own.
func OpenStore(t testing.TB) *store.SQLite {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "coinsaga.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// AcceptOrders accepts n orders into st, accept(i) giving the i-th, a
// thousand to a transaction: how a benchmark fills a store with tens of
// thousands of orders before it measures.
func AcceptOrders(t testing.TB, st store.Store, n int, accept func(i int) store.Accept) {
	t.Helper()
	const chunk = 1000
	for lo := 0; lo < n; lo += chunk {
		reqs := make([]store.Accept, min(chunk, n-lo))
		for i := range reqs {
			reqs[i] = accept(lo + i)
		}
		if _, err := st.Accept(context.Background(), reqs); err != nil {
			t.Fatal(err)
		}
	}
}

// Calls counts provider calls by endpoint and class; it is a
// providers.Observer.
type Calls struct {
	mu sync.Mutex
	n  map[string]int
}

var _ providers.Observer = (*Calls)(nil)

// ObserveCall implements providers.Observer.
func (c *Calls) ObserveCall(provider, endpoint string, class providers.Class, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[endpoint+"/"+class.String()]++
}

// To returns the calls to endpoint, whatever their class.
func (c *Calls) To(endpoint string) int {
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

// Count returns the calls to endpoint ending in class ("pay_m/retryable").
func (c *Calls) Count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// Total is every provider call made so far.
func (c *Calls) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}
