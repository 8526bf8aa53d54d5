package console

import (
	"context"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/storetest"
)

// fakeOrders is an in-memory Orders.
type fakeOrders struct {
	orders  map[string]store.Order
	history map[string][]store.HistoryEntry
}

func (f *fakeOrders) Stats(context.Context) (store.Stats, error) {
	s := store.Stats{ByState: map[string]int64{}, ScheduledByStep: map[string]int64{}}
	for _, o := range f.orders {
		s.ByState[string(o.State)]++
		if !o.NextRunAt.IsZero() {
			s.ScheduledByStep[string(o.Step)]++
		}
	}
	return s, nil
}

func (f *fakeOrders) Get(_ context.Context, id string) (store.Order, error) {
	o, ok := f.orders[id]
	if !ok {
		return store.Order{}, store.ErrNotFound
	}
	return o, nil
}

func (f *fakeOrders) History(_ context.Context, id string) ([]store.HistoryEntry, error) {
	return f.history[id], nil
}

// fakeLetters is an in-memory DeadLetters that records what it was asked.
type fakeLetters struct {
	mu      sync.Mutex
	letters []Letter
	replays [][]uint64 // the seqs of each real (not dry) replay
	purges  [][]uint64
}

func (f *fakeLetters) pick(lf LetterFilter, after uint64) []Letter {
	var out []Letter
	for _, l := range f.letters {
		switch {
		case l.Seq <= after,
			len(lf.Seqs) > 0 && !slices.Contains(lf.Seqs, l.Seq),
			len(lf.Reasons) > 0 && !slices.Contains(lf.Reasons, l.Reason),
			lf.MgID != "" && l.MgID != lf.MgID,
			lf.OutOrderID != "" && l.OutOrderID != lf.OutOrderID:
			continue
		}
		if out = append(out, l); lf.Limit > 0 && len(out) == lf.Limit {
			break
		}
	}
	return out
}

func (f *fakeLetters) List(_ context.Context, lf LetterFilter, after uint64) ([]Letter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ls := f.pick(lf, after)
	for i := range ls {
		ls[i].Body = ""
	}
	return ls, nil
}

func (f *fakeLetters) Count(_ context.Context, lf LetterFilter) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lf.Limit = 0
	return len(f.pick(lf, 0)), nil
}

func (f *fakeLetters) Get(_ context.Context, seq uint64) (Letter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ls := f.pick(LetterFilter{Seqs: []uint64{seq}}, 0); len(ls) == 1 {
		return ls[0], nil
	}
	return Letter{}, ErrNoLetter
}

func (f *fakeLetters) act(lf LetterFilter, dry bool, out Outcome, into *[][]uint64, each func(Result)) error {
	f.mu.Lock()
	picked := f.pick(lf, 0)
	var seqs []uint64
	for _, l := range picked {
		seqs = append(seqs, l.Seq)
	}
	if !dry {
		*into = append(*into, seqs)
	}
	f.mu.Unlock()
	for _, l := range picked {
		each(Result{Seq: l.Seq, OutOrderID: l.OutOrderID, Outcome: out})
	}
	return nil
}

func (f *fakeLetters) Replay(_ context.Context, lf LetterFilter, dry bool, each func(Result)) error {
	return f.act(lf, dry, Replayed, &f.replays, each)
}

func (f *fakeLetters) Purge(_ context.Context, lf LetterFilter, dry bool, each func(Result)) error {
	return f.act(lf, dry, Purged, &f.purges, each)
}

func (f *fakeLetters) done() (replays, purges [][]uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.replays), slices.Clone(f.purges)
}

// The intent's secret values (storetest.Intent's), which no page may show.
var secretValues = []string{"0a3Xk2ll2Bz1Yb0dQ0ml2E7mQ24Xk2lq", "2F1C58B7D1A1C4B8E0A3F6B2D9C7E1A4", "5b0a2ac3e1d4bd9f"}

func testConsole(t *testing.T, access Access) (*httptest.Server, *fakeLetters) {
	t.Helper()
	o := storetest.Order("order-1", time.Now().Add(time.Minute))
	o.State, o.Step, o.BillNo, o.SudOrderID = "failed", "pay", "order-1", "1795306795555000001"
	o.ErrorCode, o.Error = "retries_exhausted", "pay: mogs pay: busy"
	orders := &fakeOrders{orders: map[string]store.Order{"order-1": o},
		history: map[string][]store.HistoryEntry{"order-1": {{At: time.Now(), State: "accepted", Step: "baseline", Detail: "accepted"},
			{At: time.Now(), State: "failed", Step: "pay", Attempt: 3, ErrorCode: "retries_exhausted", Error: "pay: mogs pay: busy"}}}}
	letters := &fakeLetters{}
	for i, r := range []events.Reason{events.ReasonFailed, events.ReasonFailed, events.ReasonInvalid} {
		l := Letter{Seq: uint64(i + 1), Reason: r, MgID: o.MgID, RoomID: o.RoomID,
			OutOrderID: "order-" + string(rune('1'+i)), Error: "retries_exhausted: busy", Body: string(events.MaskSecrets(o.Intent)),
			Subject: "coinsaga.dlq." + o.MgID + ".9009.order-" + string(rune('1'+i)), StoredAt: time.Now(),
			Header: map[string][]string{"Coinsaga-Reason": {string(r)}}}
		letters.letters = append(letters.letters, l)
	}
	return serveConsole(t, Config{Orders: orders, DeadLetters: letters, Access: access}), letters
}

// serveConsole serves a console of cfg until the test ends.
func serveConsole(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv
}

// pageCase is a page and what a GET of it answers: the status and a
// piece of the body.
type pageCase struct {
	path   string
	status int
	want   string
}

// browser is an http.Client with cookies that reads forms like a page.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar}}
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// post sends a form as the console's own page would: same origin, and
// the form token read from page.
func (b *browser) post(path, page string, form url.Values) (int, string) {
	b.t.Helper()
	form = maps.Clone(form)
	if m := csrfField.FindStringSubmatch(page); m != nil && form.Get("csrf") == "" {
		form.Set("csrf", m[1])
	}
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// login posts form (the token, and maybe next) on the login page.
func (b *browser) login(form url.Values) (int, string) {
	b.t.Helper()
	_, page := b.get("/login")
	return b.post("/login", page, form)
}

func TestPagesRenderWithoutSecrets(t *testing.T) {
	t.Parallel()
	srv, _ := testConsole(t, Access{OpenReads: true})
	b := newBrowser(t, srv.URL)
	for _, tc := range []pageCase{
		{"/", http.StatusOK, "Orders by state"},
		{"/live?game=1468180338417074177&state=completed", http.StatusOK, `value="completed" checked`},
		{"/live?order=bad.id", http.StatusBadRequest, "not a valid id"},
		{"/orders/order-1", http.StatusOK, "1795306795555000001"},
		{"/orders/nope", http.StatusNotFound, "No such order"},
		{"/dlq", http.StatusOK, "3 dead letter(s) match"},
		{"/dlq?reason=invalid", http.StatusOK, "1 dead letter(s) match"},
		{"/dlq/1", http.StatusOK, "&#34;***&#34;"},
		{"/dlq?since=yesterday", http.StatusBadRequest, "want a duration"},
		{"/dlq/1", http.StatusOK, "Coinsaga-Reason"},
		{"/dlq/99", http.StatusNotFound, "No such dead letter"},
		{"/login", http.StatusOK, "nothing to log in with"},
		{"/nowhere", http.StatusNotFound, "No such page"},
		{"/static/console.css", http.StatusOK, "@media"},
	} {
		t.Run(tc.path+" answers "+http.StatusText(tc.status), func(t *testing.T) {
			status, body := b.get(tc.path)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("GET %s = %d, want %d with %q; body:\n%.2000s", tc.path, status, tc.status, tc.want, body)
			}
			for _, s := range secretValues {
				if strings.Contains(body, s) {
					t.Fatalf("GET %s shows the secret %s", tc.path, s)
				}
			}
		})
	}
}

func TestReplayNeedsATokenAndASameSiteForm(t *testing.T) {
	t.Parallel()
	tokens := Access{OpenReads: true, Tokens: []Token{{Name: "alice", Secret: "s3cret-token"}}}
	replay := url.Values{"action": {"replay"}, "seq": {"1"}}
	// loggedIn is a console with alice's token and a browser she logged in with.
	loggedIn := func(t *testing.T) (*httptest.Server, *browser, *fakeLetters) {
		t.Helper()
		srv, letters := testConsole(t, tokens)
		b := newBrowser(t, srv.URL)
		b.login(url.Values{"token": {"s3cret-token"}})
		return srv, b, letters
	}
	t.Run("without a configured token the page says so and a POST is refused", func(t *testing.T) {
		srv, letters := testConsole(t, Access{OpenReads: true})
		b := newBrowser(t, srv.URL)
		_, page := b.get("/dlq")
		if !strings.Contains(page, "Replay and purge are disabled") || !strings.Contains(page, `id="replay-selected" disabled`) {
			t.Fatalf("the dlq page does not say replay is disabled:\n%.3000s", page)
		}
		if status, body := b.post("/dlq/preview", page, replay); status != http.StatusForbidden || !strings.Contains(body, "disabled") {
			t.Fatalf("POST = %d, want 403 saying disabled:\n%.1000s", status, body)
		}
		if r, _ := letters.done(); len(r) != 0 {
			t.Fatalf("replayed %v", r)
		}
	})
	t.Run("a token exists but nobody logged in: refused", func(t *testing.T) {
		srv, _ := testConsole(t, tokens)
		b := newBrowser(t, srv.URL)
		_, page := b.get("/dlq")
		if status, body := b.post("/dlq/preview", page, replay); status != http.StatusForbidden || !strings.Contains(body, "Log in first") {
			t.Fatalf("POST = %d, want 403 Log in first:\n%.1000s", status, body)
		}
	})
	t.Run("a wrong token does not log in", func(t *testing.T) {
		srv, _ := testConsole(t, tokens)
		b := newBrowser(t, srv.URL)
		if status, body := b.login(url.Values{"token": {"guess"}}); status != http.StatusForbidden || !strings.Contains(body, "not a console token") {
			t.Fatalf("login = %d:\n%.1000s", status, body)
		}
	})
	t.Run("a cross-site POST is refused even when logged in", func(t *testing.T) {
		srv, b, letters := loggedIn(t)
		_, page := b.get("/dlq")
		form := url.Values{"action": {"replay"}, "seq": {"1"}, "csrf": {csrfField.FindStringSubmatch(page)[1]}}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/dlq/run", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Origin", "https://evil.example")
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site POST = %d, want 403", resp.StatusCode)
		}
		if r, _ := letters.done(); len(r) != 0 {
			t.Fatalf("replayed %v", r)
		}
	})
	t.Run("a POST without the form token is refused", func(t *testing.T) {
		_, b, _ := loggedIn(t)
		if status, _ := b.post("/dlq/run", "", url.Values{"action": {"replay"}, "seq": {"1"}, "csrf": {"forged"}}); status != http.StatusForbidden {
			t.Fatalf("POST with a forged form token = %d, want 403", status)
		}
	})
	t.Run("logged in, a preview changes nothing and the run replays what it listed", func(t *testing.T) {
		srv, letters := testConsole(t, tokens)
		b := newBrowser(t, srv.URL)
		if status, body := b.login(url.Values{"token": {"s3cret-token"}, "next": {"/dlq"}}); status != http.StatusOK || !strings.Contains(body, "alice") {
			t.Fatalf("login = %d:\n%.1000s", status, body)
		}
		_, page := b.get("/dlq")
		status, preview := b.post("/dlq/preview", page, url.Values{"action": {"replay"}, "by": {"filter"}, "reason": {"failed"}})
		if status != http.StatusOK || !strings.Contains(preview, "Dry run") || !strings.Contains(preview, `name="seq" value="1,2"`) {
			t.Fatalf("preview = %d:\n%.3000s", status, preview)
		}
		if r, _ := letters.done(); len(r) != 0 {
			t.Fatalf("the preview replayed %v", r)
		}
		status, job := b.post("/dlq/run", preview, url.Values{"action": {"replay"}, "seq": {"1,2"}, "what": {"reason=failed"}})
		if status != http.StatusOK || !strings.Contains(job, "replay #") {
			t.Fatalf("run = %d:\n%.3000s", status, job)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if r, _ := letters.done(); len(r) == 1 && slices.Equal(r[0], []uint64{1, 2}) {
				break
			}
			if time.Now().After(deadline) {
				r, _ := letters.done()
				t.Fatalf("replays = %v, want [[1 2]]", r)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("a purge needs its typed confirmation", func(t *testing.T) {
		_, b, letters := loggedIn(t)
		_, page := b.get("/dlq/3")
		_, preview := b.post("/dlq/preview", page, url.Values{"action": {"purge"}, "seq": {"3"}})
		if !strings.Contains(preview, "purge 1") {
			t.Fatalf("preview does not ask for the phrase:\n%.3000s", preview)
		}
		if status, _ := b.post("/dlq/run", preview, url.Values{"action": {"purge"}, "seq": {"3"}, "confirm": {"yes"}}); status != http.StatusBadRequest {
			t.Fatalf("purge with the wrong phrase = %d, want 400", status)
		}
		if _, p := letters.done(); len(p) != 0 {
			t.Fatalf("purged %v without confirmation", p)
		}
		if status, _ := b.post("/dlq/run", preview, url.Values{"action": {"purge"}, "seq": {"3"}, "confirm": {"purge 1"}}); status != http.StatusOK {
			t.Fatalf("confirmed purge = %d", status)
		}
	})
	t.Run("a purge of every letter by filter is refused", func(t *testing.T) {
		_, b, _ := loggedIn(t)
		_, page := b.get("/dlq")
		if status, body := b.post("/dlq/preview", page, url.Values{"action": {"purge"}, "by": {"filter"}}); status != http.StatusBadRequest || !strings.Contains(body, "refusing to purge every") {
			t.Fatalf("unfiltered purge preview = %d:\n%.1000s", status, body)
		}
	})
}

func TestReadPagesBeyondLoopbackNeedALogin(t *testing.T) {
	t.Parallel()
	srv, _ := testConsole(t, Access{Tokens: []Token{{Name: "ops", Secret: "x"}}})
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(srv.URL + "/orders/order-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Fatalf("GET = %d to %q, want a redirect to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestParseToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, name, secret string
		bad              bool
	}{
		{in: "alice:s3cret", name: "alice", secret: "s3cret"},
		{in: "s3cret", name: "operator", secret: "s3cret"},
		{in: "ci:a:b:c", name: "ci", secret: "a:b:c"},
		{in: "  ops:x  ", name: "ops", secret: "x"},
		{in: "alice:", bad: true},
		{in: "", bad: true},
		{in: "a b:x", bad: true},
	} {
		t.Run(tc.in+" reads as name and secret", func(t *testing.T) {
			got, err := ParseToken(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("ParseToken(%q) = %+v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got.Name != tc.name || got.Secret != tc.secret {
				t.Fatalf("ParseToken(%q) = %+v, %v; want %s/%s", tc.in, got, err, tc.name, tc.secret)
			}
		})
	}
}

func TestListeningBeyondLoopbackWithoutATokenRefusesToStart(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("# operators\nalice:one\nbob:two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		flags  Flags
		listen string
		refuse bool
		open   bool
		tokens int
	}{
		{"loopback without a token serves read-only", Flags{}, "127.0.0.1:8080", false, true, 0},
		{"localhost counts as loopback", Flags{}, "localhost:8080", false, true, 0},
		{"IPv6 loopback counts as loopback", Flags{}, "[::1]:8080", false, true, 0},
		{"every interface without a token is refused", Flags{}, "0.0.0.0:8080", true, false, 0},
		{"an empty host without a token is refused", Flags{}, ":8080", true, false, 0},
		{"a public address with a token starts, reads need a login", Flags{Token: "ops:x"}, "10.1.2.3:8080", false, false, 1},
		{"a token file gives every token in it", Flags{TokenFile: file}, "0.0.0.0:8080", false, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.flags.Check(tc.listen)
			a := tc.flags.Access()
			if tc.refuse {
				if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "--console-token") {
					t.Fatalf("Check(%s) = %v, want one line naming --console-token", tc.listen, err)
				}
				return
			}
			if err != nil || a.OpenReads != tc.open || len(a.Tokens) != tc.tokens {
				t.Fatalf("Check(%s) = %+v, %v; want open %v with %d tokens", tc.listen, a, err, tc.open, tc.tokens)
			}
		})
	}
}

func TestQuantileInterpolatesInsideTheBucket(t *testing.T) {
	t.Parallel()
	before := []bucket{{0.1, 10}, {1, 10}, {math.Inf(1), 10}}
	for _, tc := range []struct {
		name  string
		after []bucket
		want  float64
	}{
		{"all new observations under 100ms", []bucket{{0.1, 110}, {1, 110}, {math.Inf(1), 110}}, 0.099},
		{"a tenth of them slow", []bucket{{0.1, 100}, {1, 110}, {math.Inf(1), 110}}, 0.1 + 0.9*0.9},
		{"nothing new", before, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := quantile(0.99, before, tc.after)
			if math.IsNaN(tc.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tc.want) > 1e-9) {
				t.Fatalf("p99 = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStatsAreCachedBriefly(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	loads := 0
	c := cached[int]{ttl: time.Second, now: func() time.Time { return now }, load: func(context.Context) (int, error) { loads++; return loads, nil }}
	c.get(context.Background())
	c.get(context.Background())
	now = now.Add(1500 * time.Millisecond)
	c.get(context.Background())
	if loads != 2 {
		t.Fatalf("loads = %d, want 2 (one per second)", loads)
	}
}

// noStream is a DeadLetters before any worker created the stream.
type noStream struct{ fakeLetters }

func (*noStream) List(context.Context, LetterFilter, uint64) ([]Letter, error) {
	return nil, ErrNoStream
}
func (*noStream) Count(context.Context, LetterFilter) (int, error) { return 0, ErrNoStream }
func (*noStream) Get(context.Context, uint64) (Letter, error)      { return Letter{}, ErrNoStream }

func TestBeforeTheStreamExistsThereAreNoDeadLetters(t *testing.T) {
	t.Parallel()
	srv := serveConsole(t, Config{Orders: &fakeOrders{}, DeadLetters: &noStream{}, Access: Access{OpenReads: true}})
	b := newBrowser(t, srv.URL)
	for _, tc := range []pageCase{
		{"/dlq", http.StatusOK, "0 dead letter(s) match"},
		{"/dlq/3", http.StatusNotFound, "No such dead letter"},
	} {
		if status, body := b.get(tc.path); status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d, want %d with %q", tc.path, status, tc.status, tc.want)
		}
	}
}
