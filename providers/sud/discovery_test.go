package sud_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/testclock"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/providertest"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/providers/sud"
)

// asc is a discovery service that can be switched to failing and pointed
// at another SUD host while the test runs.
type asc struct {
	hits    atomic.Int32
	failing atomic.Bool
	mu      sync.Mutex
	target  string // base URL the discovered endpoints live under
}

func (a *asc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.hits.Add(1)
	if a.failing.Load() {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	if r.Method != http.MethodGet || r.URL.Path != "/"+sud.DiscoveryKey(appSecret, appID) {
		http.NotFound(w, r)
		return
	}
	a.mu.Lock()
	target := a.target
	a.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"api": map[string]string{
		"create_order": target + "/sud/create_order",
		"query_order":  target + "/sud/query_order",
		"get_mg_list":  target + "/sud/get_mg_list",
	}})
}

func (a *asc) point(target string) {
	a.mu.Lock()
	a.target = target
	a.mu.Unlock()
}

// clock is a manual clock for the discovery TTL.
type clock = testclock.Clock

type discoveryEnv struct {
	sb     *sandbox.Sandbox
	sbURL  string
	asc    *asc
	clock  *clock
	client *sud.Client
	obs    *providertest.Recorder
}

func newDiscoveryEnv(t *testing.T, ttl time.Duration) *discoveryEnv {
	t.Helper()
	clk := testclock.New(time.Unix(1700000000, 0))
	// The client signs with its clock: the sandbox checks Sud-Auth
	// timestamps against the same one.
	box := sandbox.New(sandbox.Config{Seed: 1, Now: clk.Now})
	sb := httptest.NewServer(box)
	t.Cleanup(sb.Close)
	a := &asc{target: sb.URL}
	as := httptest.NewServer(a)
	t.Cleanup(as.Close)
	obs := &providertest.Recorder{}
	c, err := sud.New(sud.Config{AppID: appID, AppSecret: appSecret, ASCBaseURL: as.URL + "/", Now: clk.Now, DiscoveryTTL: ttl, Timeout: 2 * time.Second, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return &discoveryEnv{sb: box, sbURL: sb.URL, asc: a, clock: clk, client: c, obs: obs}
}

func TestDiscovery(t *testing.T) {
	ctx := context.Background()
	const ttl = 10 * time.Minute

	t.Run("endpoints are discovered once and served from the cache", func(t *testing.T) {
		e := newDiscoveryEnv(t, ttl)
		for i := range 3 {
			if _, err := e.client.CreateOrder(ctx, order(fmt.Sprint("cached-", i))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.client.QueryOrder(ctx, "cached-0"); err != nil {
			t.Fatal(err)
		}
		if n := e.asc.hits.Load(); n != 1 {
			t.Errorf("%d discovery requests, want 1", n)
		}
	})

	t.Run("the copy is refreshed after the TTL", func(t *testing.T) {
		e := newDiscoveryEnv(t, ttl)
		if _, err := e.client.QueryOrder(ctx, "x"); err == nil {
			t.Fatal("query of an unknown order succeeded")
		}
		e.clock.Advance(ttl + time.Second)
		_, _ = e.client.QueryOrder(ctx, "x")
		if n := e.asc.hits.Load(); n != 2 {
			t.Errorf("%d discovery requests, want 2", n)
		}
	})

	t.Run("a failed refresh keeps the old copy and waits before trying again", func(t *testing.T) {
		e := newDiscoveryEnv(t, ttl)
		if _, err := e.client.CreateOrder(ctx, order("before-outage")); err != nil {
			t.Fatal(err)
		}
		e.asc.failing.Store(true)
		e.clock.Advance(ttl + time.Second)
		if _, err := e.client.CreateOrder(ctx, order("during-outage")); err != nil {
			t.Fatalf("create during a discovery outage: %v", err)
		}
		if n := e.asc.hits.Load(); n != 2 {
			t.Errorf("%d discovery requests, want 2 (one failed refresh)", n)
		}
		if _, err := e.client.QueryOrder(ctx, "during-outage"); err != nil {
			t.Fatal(err)
		}
		if n := e.asc.hits.Load(); n != 2 {
			t.Errorf("%d discovery requests right after a failed refresh, want still 2", n)
		}
		e.asc.failing.Store(false)
		e.clock.Advance(time.Minute)
		if _, err := e.client.QueryOrder(ctx, "during-outage"); err != nil {
			t.Fatal(err)
		}
		if n := e.asc.hits.Load(); n != 3 {
			t.Errorf("%d discovery requests once the retry wait passed, want 3", n)
		}
	})

	t.Run("a transport failure on a discovered endpoint makes the next call look it up again", func(t *testing.T) {
		e := newDiscoveryEnv(t, ttl)
		dead := httptest.NewServer(http.NotFoundHandler())
		deadURL := dead.URL
		dead.Close()
		e.asc.point(deadURL)

		_, err := e.client.CreateOrder(ctx, order("moved"))
		wantErr(t, err, providers.Retryable, providers.CodeUnavailable)
		e.asc.point(e.sbURL)
		r, err := e.client.CreateOrder(ctx, order("moved"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Class != providers.OK {
			t.Errorf("create after the move = %+v", r)
		}
		if n := e.asc.hits.Load(); n != 2 {
			t.Errorf("%d discovery requests, want 2", n)
		}
	})

	t.Run("a provider refusal does not throw the copy away", func(t *testing.T) {
		e := newDiscoveryEnv(t, ttl)
		_, err := e.client.QueryOrder(ctx, "unknown")
		wantErr(t, err, providers.Final, providers.CodeNotFound)
		_, _ = e.client.QueryOrder(ctx, "unknown")
		if n := e.asc.hits.Load(); n != 1 {
			t.Errorf("%d discovery requests, want 1", n)
		}
	})

	t.Run("without any copy a discovery failure is retryable and sends nothing", func(t *testing.T) {
		e := newDiscoveryEnv(t, ttl)
		e.asc.failing.Store(true)
		_, err := e.client.CreateOrder(ctx, order("no-copy"))
		wantErr(t, err, providers.Retryable, providers.CodeUnavailable)
		if got := e.obs.Last(); got != "sud create_order retryable" {
			t.Errorf("observed %q", got)
		}
		if n := len(e.sb.SUDOrders()); n != 0 {
			t.Errorf("%d orders reached SUD, want 0", n)
		}
		e.asc.failing.Store(false)
		if _, err := e.client.CreateOrder(ctx, order("no-copy")); err != nil {
			t.Fatalf("create once discovery is back: %v", err)
		}
	})

	t.Run("concurrent calls share one discovery request", func(t *testing.T) {
		e := newDiscoveryEnv(t, ttl)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() {
				_, err := e.client.CreateOrder(ctx, order(fmt.Sprint("concurrent-", i)))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if n := e.asc.hits.Load(); n != 1 {
			t.Errorf("%d discovery requests, want 1", n)
		}
	})

	t.Run("a configured create_order URL is used without discovery", func(t *testing.T) {
		e := newDiscoveryEnv(t, ttl)
		e.asc.failing.Store(true)
		c, err := sud.New(sud.Config{AppID: appID, AppSecret: appSecret, CreateOrderURL: e.sbURL + "/sud/create_order", ASCBaseURL: "http://127.0.0.1:1", Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateOrder(ctx, order("configured")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("the sandbox's own discovery works end to end", func(t *testing.T) {
		sb := httptest.NewServer(sandbox.New(sandbox.Config{Seed: 1}))
		t.Cleanup(sb.Close)
		c, err := sud.New(sud.Config{AppID: appID, AppSecret: appSecret, ASCBaseURL: sb.URL + "/sud/asc"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.CreateOrder(ctx, order("via-asc"))
		if err != nil {
			t.Fatal(err)
		}
		o, err := c.QueryOrder(ctx, "via-asc")
		if err != nil {
			t.Fatal(err)
		}
		if o.OrderID != r.OrderID {
			t.Errorf("query %+v, create %+v", o, r)
		}
	})

	t.Run("a wrong secret fails discovery without leaking it", func(t *testing.T) {
		sb := httptest.NewServer(sandbox.New(sandbox.Config{Seed: 1}))
		t.Cleanup(sb.Close)
		c, err := sud.New(sud.Config{AppID: appID, AppSecret: "wrong-secret", ASCBaseURL: sb.URL + "/sud/asc"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateOrder(ctx, order("bad-asc"))
		pe := wantErr(t, err, providers.Retryable, providers.CodeUnavailable)
		for _, leak := range []string{"wrong-secret", sud.DiscoveryKey("wrong-secret", appID)} {
			if strings.Contains(pe.Error(), leak) {
				t.Errorf("error leaks %q: %v", leak, pe)
			}
		}
	})
}
