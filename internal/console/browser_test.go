package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/console"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/worker"
)

// consoleEnv is a whole coinsaga on loopback, as `serve --sandbox` runs
// it (embedded JetStream, the sandbox over HTTP, SQLite, one worker, the
// console on its own listener), and a headless Chromium on it.
type consoleEnv struct {
	base     string // the console's URL
	js       jetstream.JetStream
	subjects events.Subjects
	sandbox  *sandbox.Sandbox
	letters  console.DeadLetters
	tab      context.Context // the browser tab
	token    string          // the operator's secret
	secrets  []string        // every login secret value an intent of this test carried
	seed     uint64
	n        int
}

// startConsoleEnv starts everything and, with browser, the browser;
// everything stops at the test's end. Without Chromium a browser test
// skips, naming the Debian package; under CI (CI=true) a missing Chromium
// fails it instead.
func startConsoleEnv(t testing.TB, browser bool) *consoleEnv {
	t.Helper()
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" && browser {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed, and CI must run the console's browser tests: apt-get install -y chromium")
		}
		t.Skip("chromium not installed (Debian package chromium); the console's browser tests need it")
	}
	seed := rand.Uint64()
	t.Logf("seed %d (secrets and order ids)", seed)

	jet := kit.StartJetStream(t)
	sb := kit.StartSandbox(t, int64(seed>>1))
	st := kit.OpenStore(t)
	reg := prometheus.NewRegistry()
	metrics := worker.NewMetrics(reg)
	// No circuit breakers: a dead letter must come from a few failed calls
	// at once, not after an outage hold.
	kit.StartWorker(t, worker.Config{
		Conn: jet.Conn, Store: st, SUD: sb.SUD(t, metrics), Wallets: sb.Wallets(metrics),
		Concurrency: 64, ConfirmInterval: 50 * time.Millisecond, ConfirmTimeout: 5 * time.Second,
		Retry:   worker.RetryPolicy{MaxAttempts: 3, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		Metrics: metrics,
	})
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)

	e := &consoleEnv{js: jet.JS, sandbox: sb.Sandbox, seed: seed, token: fmt.Sprintf("console-secret-%x", seed)}
	e.letters = console.NATSDeadLetters(jet.Conn, e.subjects)
	c, err := console.New(ctx, console.Config{
		Orders: st, DeadLetters: e.letters, Status: console.NATSStatus(jet.JS, e.subjects), Metrics: reg,
		Access:      console.Access{OpenReads: true, Tokens: []console.Token{{Name: "browser-test", Secret: e.token}}},
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		SampleEvery: 250 * time.Millisecond, LetterCountsEvery: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	e.base = "http://" + ln.Addr().String()
	if !browser {
		return e
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800))
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	// The first action starts the browser; it must not run under a timeout.
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	e.tab = tab
	return e
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// publish sends a purchase intent whose login fields are secrets unique
// to this run, and returns its out_order_id.
func (e *consoleEnv) publish(t testing.TB, provider string) string {
	t.Helper()
	e.n++
	id := fmt.Sprintf("br%x-%d", e.seed%0xffffff, e.n)
	in := events.Intent{
		OutOrderID: id, OutGroupID: "g1", MgID: "1468180338417074177", RoomID: "9009",
		Cmd: "specify_dice_roll", FromUID: "001", ToUID: "002", Value: 100, Payload: json.RawMessage(`{"point":6,"seq":1}`),
		Payment: events.Payment{Provider: provider, Amount: 100, OpenID: "player-" + id},
	}
	secret := func(kind string) string {
		s := fmt.Sprintf("%s-%x-%d", kind, e.seed, e.n)
		e.secrets = append(e.secrets, s)
		return s
	}
	switch provider {
	case events.ProviderMOGS:
		in.Payment.MOGS = &events.MOGSPayment{JSCode: secret("jscode"), SessionKey: secret("sessionkey"), AppPlat: 1, OSPlatID: 1, PayItem: "dice"}
	case events.ProviderMidas:
		in.Payment.Midas = &events.MidasPayment{OpenKey: secret("openkey"), PF: "qq_m_qq-2001-android", PFKey: secret("pfkey"),
			ZoneID: "1", SessionType: "kp_actoken", AccountType: "common"}
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := events.PublishIntent(ctx, e.js, e.subjects, data, nil); err != nil {
		t.Fatal(err)
	}
	return id
}

// waitState waits for the order's status events to say state.
func (e *consoleEnv) waitState(t *testing.T, id string, state events.State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := events.Watch(ctx, e.js, e.subjects, events.WatchFilter{OutOrderID: id, LastPerOrder: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var seen []events.State
	for {
		got, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("order %s did not reach %s (seen %v): %v", id, state, seen, err)
		}
		seen = append(seen, got.Event.State)
		if got.Event.State == state {
			return
		}
	}
}

// waitLetter waits for the order's dead letter and returns its sequence.
func (e *consoleEnv) waitLetter(t *testing.T, id string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := e.js.OrderedConsumer(ctx, e.subjects.DLQStream(), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{e.subjects.DeadLetterFilter("", "", id)}, HeadersOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchContext(ctx))
	if err != nil {
		t.Fatalf("no dead letter for %s: %v", id, err)
	}
	meta, err := m.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	return meta.Sequence.Stream
}

// run runs browser actions with a deadline.
func (e *consoleEnv) run(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.tab, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

func (e *consoleEnv) text(t *testing.T, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.tab, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func eval[T any](t *testing.T, e *consoleEnv, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.tab, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("browser: %s: %v", js, err)
	}
	return v
}

// noSecrets checks the whole DOM of the page shown, and says which page
// a secret leaked on.
func (e *consoleEnv) noSecrets(t *testing.T) {
	t.Helper()
	dom := eval[string](t, e, `document.documentElement.outerHTML + "\n" + document.body.innerText + "\n" +
		Array.from(document.querySelectorAll("input, textarea")).map(i => i.value).join("\n")`)
	for _, s := range append([]string{e.token}, e.secrets...) {
		if strings.Contains(dom, s) {
			t.Errorf("%s shows the secret %q", eval[string](t, e, "location.pathname"), s)
		}
	}
}

// fits checks that the page needs no sideways scrolling: wide tables
// scroll in their own box.
func (e *consoleEnv) fits(t *testing.T) {
	t.Helper()
	if w := eval[[]int](t, e, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		t.Errorf("%s is %dpx wide in a %dpx window", eval[string](t, e, "location.pathname"), w[0], w[1])
	}
}

// shot saves a PNG of the window to docs/img when COINSAGA_SCREENSHOTS
// is set, for the README.
func (e *consoleEnv) shot(t *testing.T, name string) {
	t.Helper()
	if os.Getenv("COINSAGA_SCREENSHOTS") == "" {
		return
	}
	ctx, cancel := context.WithTimeout(e.tab, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "docs", "img")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConsoleInABrowser(t *testing.T) {
	e := startConsoleEnv(t, true)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	var done string // an order that completed
	t.Run("an order published during the test appears in the live feed and reaches completed", func(t *testing.T) {
		e.run(t, chromedp.Navigate(e.base+"/live"), chromedp.WaitVisible(css(`#feed[data-ready="true"]`)))
		done = e.publish(t, events.ProviderMOGS)
		e.run(t, chromedp.WaitVisible(css(`#feed tr[data-order="`+done+`"][data-state="accepted"]`)),
			chromedp.WaitVisible(css(`#feed tr[data-order="`+done+`"][data-state="completed"]`)))
		e.noSecrets(t)
		e.fits(t)
		e.shot(t, "console-live.png")
	})

	t.Run("the overview loads, with the orders by state and the provider endpoints", func(t *testing.T) {
		e.publish(t, events.ProviderMidas)
		e.run(t, chromedp.Navigate(e.base+"/"), chromedp.WaitVisible(css("#states")), chromedp.WaitVisible(css("#endpoints")))
		if h := e.text(t, "h1"); h != "Overview" {
			t.Errorf("h1 %q", h)
		}
		if got := e.text(t, "#states"); !strings.Contains(got, "completed") {
			t.Errorf("the states table says %q", got)
		}
		if got := e.text(t, "#endpoints"); !strings.Contains(got, "mogs.pay") {
			t.Errorf("the endpoints table says %q, want mogs.pay", got)
		}
		e.noSecrets(t)
		e.fits(t)
		e.shot(t, "console-overview.png")
	})

	t.Run("the order page shows its state, the SUD order and bill numbers and the history", func(t *testing.T) {
		e.run(t, chromedp.Navigate(e.base+"/orders/"+done), chromedp.WaitVisible(css("#history")))
		if s := e.text(t, "#order-state"); s != "completed" {
			t.Errorf("state %q, want completed", s)
		}
		if b := e.text(t, "#bill-no"); b != done {
			t.Errorf("bill_no %q, want the out_order_id %s (the first bill)", b, done)
		}
		if s := e.text(t, "#sud-order-id"); s == "" || s == "–" {
			t.Errorf("SUD order_id %q", s)
		}
		if n := eval[int](t, e, `document.querySelectorAll("#history tbody tr").length`); n < 4 {
			t.Errorf("%d history lines, want every step", n)
		}
		if got := e.text(t, "#intent"); !strings.Contains(got, `"js_code": "***"`) {
			t.Errorf("the intent is not shown masked:\n%s", got)
		}
		e.noSecrets(t)
		e.fits(t)
		e.shot(t, "console-order.png")
	})

	// A dead letter: SUD refuses every create_order until the faults clear.
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ErrorRate: 1})
	failed := e.publish(t, events.ProviderMOGS)
	e.waitState(t, failed, events.StateFailed)
	seq := e.waitLetter(t, failed)
	e.sandbox.ClearFaults()
	pick := fmt.Sprintf("#pick-%d", seq)

	t.Run("replay without a token is refused", func(t *testing.T) {
		e.run(t, chromedp.Navigate(e.base+fmt.Sprintf("/dlq/%d", seq)), chromedp.WaitVisible(css("#body")))
		e.noSecrets(t)
		e.run(t, chromedp.Navigate(e.base+"/dlq"), chromedp.WaitVisible(css(pick)),
			chromedp.Click(css(pick)), chromedp.Click(css("#replay-selected")), chromedp.WaitVisible(css("#failure")))
		if h := e.text(t, "#failure"); h != "Log in first" {
			t.Errorf("replay without logging in shows %q, want Log in first", h)
		}
		if _, err := e.letters.Get(context.Background(), seq); err != nil {
			t.Errorf("the dead letter is gone after a refused replay: %v", err)
		}
	})

	t.Run("a dead letter is replayed from the page and its order completes", func(t *testing.T) {
		// Logging in by keyboard alone: the token field has the focus.
		e.run(t, chromedp.Navigate(e.base+"/login?next=/dlq"), chromedp.WaitVisible(css("#token")),
			chromedp.KeyEvent(e.token+"\r"), chromedp.WaitVisible(css(pick)))
		if who := e.text(t, ".who span"); who != "browser-test" {
			t.Errorf("logged in as %q", who)
		}
		e.noSecrets(t)
		e.shot(t, "console-dlq.png")
		e.run(t, chromedp.Click(css(pick)), chromedp.Click(css("#replay-selected")), chromedp.WaitVisible(css("#preview-summary")))
		if s := e.text(t, "#preview-summary"); !strings.Contains(s, "Nothing has changed yet") || !strings.Contains(s, "replayed: 1") {
			t.Errorf("preview says %q", s)
		}
		if _, err := e.letters.Get(context.Background(), seq); err != nil {
			t.Errorf("the dry run removed the dead letter: %v", err)
		}
		e.noSecrets(t)
		e.shot(t, "console-preview.png")
		e.run(t, chromedp.Click(css("#run")), chromedp.WaitVisible(css(`#job-status[data-finished="true"]`)))
		e.noSecrets(t)
		e.shot(t, "console-job.png")
		if s := e.text(t, "#job-status"); !strings.Contains(s, "replayed 1") {
			t.Errorf("the job says %q", s)
		}
		e.waitState(t, failed, events.StateCompleted)
		e.run(t, chromedp.Navigate(e.base+"/orders/"+failed), chromedp.WaitVisible(css("#history")))
		if s := e.text(t, "#order-state"); s != "completed" {
			t.Errorf("the replayed order is %q, want completed", s)
		}
		e.noSecrets(t)
	})

	t.Run("every page is usable with the keyboard", func(t *testing.T) {
		e.run(t, chromedp.Navigate(e.base+"/dlq"), chromedp.WaitVisible(css("main h1")), chromedp.KeyEvent("\t"))
		if c := eval[string](t, e, "document.activeElement.className"); c != "skip" {
			t.Errorf("the first Tab focuses %q, want the skip link", c)
		}
		e.run(t, chromedp.KeyEvent("\r"))
		if id := eval[string](t, e, "document.activeElement.id"); id != "main" {
			t.Errorf("the skip link leads to %q, want main", id)
		}
		// Every control can take the focus: none is a div with a click handler.
		if n := eval[int](t, e, `document.querySelectorAll("[onclick], div[role=button]").length`); n != 0 {
			t.Errorf("%d mouse-only controls", n)
		}
	})

	t.Run("the pages fit a phone-sized window", func(t *testing.T) {
		e.run(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		defer e.run(t, chromedp.EmulateViewport(1280, 800))
		for _, path := range []string{"/", "/live", "/dlq", "/orders/" + done} {
			e.run(t, chromedp.Navigate(e.base+path), chromedp.WaitVisible(css("main h1")))
			e.fits(t)
			e.noSecrets(t)
			if path == "/" {
				e.shot(t, "console-overview-phone.png")
			}
		}
	})
}
