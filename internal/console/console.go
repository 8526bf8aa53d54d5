// Package console is the operator console in the browser: an overview of
// orders and providers, a live feed of status events, one order's whole
// story, and the dead-letter queue with replay and purge. `coinsaga serve`
// mounts it at / on its HTTP listener.
//
// Pages are server-rendered (html/template) with a little JavaScript for
// the live feed; everything is embedded, nothing is built. Reading needs
// no login on loopback; replay and purge need an operator token (Access),
// and every POST must come from the console's own pages (Origin,
// Sec-Fetch-Site and a per-form token). The login secrets of an intent
// never reach a page: bodies are shown through events.MaskSecrets.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coinsaga/coinsaga/internal/deadletter"
	"github.com/coinsaga/coinsaga/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ErrNoLetter: no dead letter with that sequence (replayed, purged, or
// never there).
var ErrNoLetter = errors.New("console: no such dead letter")

// ErrNoStream: the dead-letter stream does not exist yet (no worker has
// created the streams on this NATS and prefix); there are no letters.
var ErrNoStream = errors.New("console: no dead-letter stream yet")

// Config is what the console reads from and how it guards itself.
type Config struct {
	Orders Orders
	// DeadLetters backs /dlq; nil makes those pages say so.
	DeadLetters DeadLetters
	// Status backs /live; nil makes the page say so.
	Status StatusSource
	// Metrics is the worker's registry, for rates, p99, provider error
	// rates and circuits; nil leaves those out.
	Metrics prometheus.Gatherer
	Access  Access
	Logger  *slog.Logger
	Now     func() time.Time
	// SampleEvery is how often the metrics are read (default 5s); the
	// charts cover ChartSpan (default 10m).
	SampleEvery time.Duration
	ChartSpan   time.Duration
	// StatsTTL is how long one store.Stats answers the overview (default
	// 1s), so that a page reloaded by many operators costs one query.
	StatsTTL time.Duration
	// LetterCountsEvery is how often the dead letters are counted by
	// reason for the overview (default 15s).
	LetterCountsEvery time.Duration
	// FeedEvery is how often the live feed writes the events that arrived
	// since its last write (default 100ms).
	FeedEvery time.Duration
}

// Console is the console's http.Handler.
type Console struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	guard *guard
	mux   *http.ServeMux
	pages map[string]*template.Template
	hist  *history
	stats cached[store.Stats]
	ctx   context.Context // ends the background work: sampling, jobs

	lettersMu sync.RWMutex
	letters   letterCounts

	jobs *jobs
}

// New builds the console and starts its background sampling, which runs
// until ctx ends.
func New(ctx context.Context, cfg Config) (*Console, error) {
	if cfg.Orders == nil {
		return nil, errors.New("console: no order store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 5 * time.Second
	}
	if cfg.ChartSpan <= 0 {
		cfg.ChartSpan = 10 * time.Minute
	}
	if cfg.StatsTTL <= 0 {
		cfg.StatsTTL = time.Second
	}
	if cfg.LetterCountsEvery <= 0 {
		cfg.LetterCountsEvery = 15 * time.Second
	}
	if cfg.FeedEvery <= 0 {
		cfg.FeedEvery = 100 * time.Millisecond
	}
	c := &Console{cfg: cfg, log: cfg.Logger.With("component", "console"), now: cfg.Now,
		guard: newGuard(cfg.Access, cfg.Now), hist: &history{keep: cfg.ChartSpan}, ctx: ctx, jobs: newJobs()}
	c.stats = cached[store.Stats]{ttl: cfg.StatsTTL, now: cfg.Now, load: cfg.Orders.Stats}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	c.routes()
	if cfg.Metrics != nil {
		go sampleLoop(ctx, cfg.Metrics, c.hist, cfg.SampleEvery, cfg.Now, nil)
	}
	if cfg.DeadLetters != nil {
		go c.countLettersLoop(ctx)
	}
	return c, nil
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(http.FileServerFS(static))))
	m.HandleFunc("GET /login", c.loginPage)
	m.HandleFunc("POST /login", c.loginPost)
	m.HandleFunc("POST /logout", c.logoutPost)
	m.HandleFunc("GET /{$}", c.reads(c.overview))
	m.HandleFunc("GET /live", c.reads(c.livePage))
	m.HandleFunc("GET /live/events", c.reads(c.liveEvents))
	m.HandleFunc("GET /orders", c.reads(c.orderSearch))
	m.HandleFunc("GET /orders/{id}", c.reads(c.orderPage))
	m.HandleFunc("GET /dlq", c.reads(c.dlqPage))
	m.HandleFunc("GET /dlq/{seq}", c.reads(c.letterPage))
	m.HandleFunc("POST /dlq/preview", c.acts(c.dlqPreview))
	m.HandleFunc("POST /dlq/run", c.acts(c.dlqRun))
	m.HandleFunc("GET /dlq/jobs/{id}", c.reads(c.jobPage))
	m.HandleFunc("/", c.reads(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, "No such page", fmt.Sprintf("Nothing lives at %s.", r.URL.Path))
	}))
	c.mux = m
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// The pages embed nothing from elsewhere, and nothing may embed them.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	c.mux.ServeHTTP(w, r)
}

func cacheFor(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(w, r)
	})
}

// reads guards a read-only page: open on loopback, else a login.
func (c *Console) reads(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !c.cfg.Access.OpenReads && c.guard.who(r) == "" {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r)
	}
}

// acts guards a changing action: a same-site POST with the form token,
// by a logged-in operator.
func (c *Console) acts(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 4<<20)
		if err := c.guard.checkPost(r); err != nil {
			c.log.Warn("console action refused", "path", r.URL.Path, "why", err.Error(), "remote", r.RemoteAddr)
			c.fail(w, r, http.StatusForbidden, "Refused", err.Error())
			return
		}
		who := c.guard.who(r)
		switch {
		case len(c.cfg.Access.Tokens) == 0:
			c.log.Warn("console action refused", "path", r.URL.Path, "why", "no console token configured", "remote", r.RemoteAddr)
			c.fail(w, r, http.StatusForbidden, "Replay and purge are disabled",
				"This console was started without --console-token (or --console-token-file), so nothing can be changed from it. Use `coinsaga dlq`, or restart serve with a token.")
			return
		case who == "":
			c.log.Warn("console action refused", "path", r.URL.Path, "why", "not logged in", "remote", r.RemoteAddr)
			c.fail(w, r, http.StatusForbidden, "Log in first", "Replay and purge need the console token: log in, then try again.")
			return
		}
		h(w, r, who)
	}
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Who     string
	Actions string // "ok", "login" (a token exists; log in) or "disabled"
	CSRF    string
	Open    bool
	Data    any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	t := c.pages[name]
	p := page{Title: title, Nav: name, Who: c.guard.who(r), CSRF: c.guard.formToken(w, r), Open: c.cfg.Access.OpenReads, Data: data}
	switch {
	case len(c.cfg.Access.Tokens) == 0:
		p.Actions = "disabled"
	case p.Who == "":
		p.Actions = "login"
	default:
		p.Actions = "ok"
	}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		c.log.Error("console page", "page", name, "err", err)
		http.Error(w, "rendering the page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

type failure struct{ Heading, Text string }

func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, heading, text string) {
	c.render(w, r, status, "error", heading, failure{heading, text})
}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	out := map[string]*template.Template{}
	for _, name := range []string{"overview", "live", "order", "dlq", "letter", "preview", "job", "login", "error"} {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

var funcs = template.FuncMap{
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return ageText(now.Sub(t))
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000Z")
	},
	"pct": func(v float64) string {
		if v == 0 {
			return "0%"
		}
		if v < 0.001 {
			return "<0.1%"
		}
		return fmt.Sprintf("%.1f%%", v*100)
	},
	"f1":    func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"span":  ageText,
	"num":   thousands,
	"chart": chart,
	"dash": func(s string) string {
		if s == "" {
			return "–"
		}
		return s
	},
}

// ageText is how `coinsaga dlq list` prints ages (deadletter.Age).
var ageText = deadletter.Age

func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// sparkline is an inline SVG chart's data: the polyline's points in a
// 300x60 box, and the top of its scale.
type sparkline struct {
	Points string
	Max    float64
	Last   float64
	N      int
}

func chart(series []float64) sparkline {
	s := sparkline{N: len(series)}
	if len(series) == 0 {
		return s
	}
	for _, v := range series {
		s.Max = math.Max(s.Max, v)
	}
	s.Last = series[len(series)-1]
	top := s.Max
	if top == 0 {
		top = 1
	}
	var b strings.Builder
	for i, v := range series {
		x := 300.0
		if len(series) > 1 {
			x = 300 * float64(i) / float64(len(series)-1)
		}
		fmt.Fprintf(&b, "%.1f,%.1f ", x, 58-56*v/top)
	}
	s.Points = strings.TrimSpace(b.String())
	return s
}

// cached is a value loaded at most once per ttl; concurrent callers of a
// stale value wait for one load instead of each querying.
type cached[T any] struct {
	ttl  time.Duration
	now  func() time.Time
	load func(context.Context) (T, error)

	mu  sync.Mutex
	at  time.Time
	val T
	err error
}

func (c *cached[T]) get(ctx context.Context) (T, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.at.IsZero() || now.Sub(c.at) >= c.ttl || c.err != nil {
		c.val, c.err = c.load(ctx)
		c.at = now
	}
	return c.val, c.at, c.err
}
