package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/console"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/midas"
	"github.com/coinsaga/coinsaga/providers/mogs"
	"github.com/coinsaga/coinsaga/providers/protect"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/worker"
)

// serveFlags are the flags of `coinsaga serve`.
type serveFlags struct {
	nats            natsFlags
	natsListen      string
	dataDir         string
	sandbox         bool
	sandboxListen   string
	sandboxURL      string
	httpListen      string
	configFile      string
	concurrency     int
	maxSteps        int
	confirmInterval time.Duration
	confirmTimeout  time.Duration
	maxAttempts     int
	sudExecTimeout  time.Duration
	outageHold      time.Duration
	sudNotifyPath   string
	retention       time.Duration
	syncFull        bool
	initStore       bool
	streamReplicas  int
	statusMaxAge    time.Duration
	statusMaxBytes  byteSize
	jsMaxStore      byteSize
	logFormat       string
	logLevel        string
	console         console.Flags
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	f.nats.register(fs)
	// Unset means "embedded" for serve, not the tools' default URL.
	f.nats.url = ""
	natsURL := fs.Lookup("nats-url")
	natsURL.DefValue = ""
	natsURL.Usage = "external NATS server URL(s), comma-separated for a cluster; unset: serve runs an embedded JetStream on --nats-listen.\n" +
		"A URL naming --nats-listen's own address (nats://127.0.0.1:4222, the tools' default) uses the NATS answering there,\n" +
		"or starts the embedded one there when none does: COINSAGA_NATS_URL exported for the tools keeps serve working"
	fs.StringVar(&f.natsListen, "nats-listen", "127.0.0.1:4222", "listen address of the embedded JetStream server (when --nats-url is unset, or names this address and no NATS answers there)")
	fs.StringVar(&f.dataDir, "data-dir", "./data", "folder for the SQLite store and the embedded JetStream files")
	fs.BoolVar(&f.sandbox, "sandbox", false, "start the sandbox providers in-process and use them")
	fs.StringVar(&f.sandboxListen, "sandbox-listen", "127.0.0.1:9311", "listen address of the in-process sandbox (with --sandbox)")
	fs.StringVar(&f.sandboxURL, "sandbox-url", "", "use a sandbox already running at this URL (a separate `coinsaga sandbox`)")
	fs.StringVar(&f.httpListen, "http-listen", "127.0.0.1:8080", "listen address for /metrics, /healthz and /readyz")
	fs.StringVar(&f.configFile, "config", "", "YAML file with provider endpoints and secrets (see docs/configuration.md)")
	fs.IntVar(&f.concurrency, "concurrency", 64, "least orders with a saga step under way; the limit grows while providers keep their latency, up to --max-steps")
	fs.IntVar(&f.maxSteps, "max-steps", 2048, "most orders with a saga step under way (nearly all waiting for a provider)")
	fs.DurationVar(&f.confirmInterval, "confirm-interval", 15*time.Second, "time between balance polls confirming a debit")
	fs.DurationVar(&f.confirmTimeout, "confirm-timeout", 2*time.Minute, "how long a debit may take to show before it is compensated")
	fs.IntVar(&f.maxAttempts, "max-attempts", 6, "calls per saga step before a transient failure counts as final")
	fs.StringVar(&f.sudNotifyPath, "sud-notify-path", "/sud/notify", "path on --http-listen where SUD posts its order-changed notifications (empty: none; with --sandbox the sandbox is pointed at it)")
	fs.DurationVar(&f.outageHold, "outage-hold", 30*time.Minute, "how long orders wait in their step, spending no retry, while a provider endpoint's circuit is open")
	fs.DurationVar(&f.sudExecTimeout, "sud-execute-timeout", 2*time.Minute, "how long SUD may take to decide an order's action before the order goes to an operator (needs_attention)")
	fs.DurationVar(&f.retention, "retention", 0, "delete terminal orders this long after they ended (0 keeps them)")
	fs.BoolVar(&f.syncFull, "sync-full", false, "fsync every SQLite commit (survives power loss; slower)")
	fs.BoolVar(&f.initStore, "init-store", false, "start with a new, empty store although NATS shows an earlier store's work (after a deliberate reset: orders of the lost store stay unfinished)")
	fs.IntVar(&f.streamReplicas, "stream-replicas", 1, "replicas of the streams coinsaga creates (3 on a NATS cluster); existing streams are never changed")
	fs.DurationVar(&f.statusMaxAge, "status-max-age", events.DefaultStatusMaxAge, "how long the status stream keeps events (when coinsaga creates it)")
	f.statusMaxBytes = events.DefaultStatusMaxBytes
	fs.Var(&f.statusMaxBytes, "status-max-bytes", "size limit of the status stream, a `size` like 256MiB, reserved in full by JetStream when coinsaga creates it")
	fs.Var(&f.jsMaxStore, "jetstream-max-store", "disk the embedded JetStream may use, a `size` like 10GiB (0: 75% of the free disk under --data-dir)")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.console.Register(fs)
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := newFlags("serve", "serve [flags]", stderr)
	f.register(fs)
	src, err := parseSources(fs, args)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("serve takes no arguments (got %q)", fs.Args())
	}
	if err := f.check(src); err != nil {
		return err
	}
	if err := f.console.Check(f.httpListen); err != nil {
		return err
	}
	log, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	if f.sandbox && f.sandboxURL != "" {
		return errors.New("--sandbox and --sandbox-url exclude each other")
	}
	var cfg *Config
	switch {
	case f.configFile != "":
		if cfg, err = loadConfig(f.configFile); err != nil {
			return err
		}
	case !f.sandbox && f.sandboxURL == "":
		return errors.New("no providers: give --sandbox, --sandbox-url URL or --config FILE")
	}
	// Everything that can fail at once fails before the store exists: the
	// addresses serve listens on, and an external NATS that must answer.
	embedded := f.embeddedNATS(log)
	if embedded {
		if err := probeListen(f.natsListen); err != nil {
			return listenError("nats-listen", f.natsListen, src, err, "another coinsaga or nats-server?", " or --nats-url URL")
		}
	}
	httpLn, err := net.Listen("tcp", f.httpListen)
	if err != nil {
		return listenError("http-listen", f.httpListen, src, err, "another coinsaga?", "")
	}
	defer httpLn.Close()
	if f.sandbox {
		if err := probeListen(f.sandboxListen); err != nil {
			return listenError("sandbox-listen", f.sandboxListen, src, err, "another coinsaga or coinsaga sandbox?", ", or --sandbox-url URL to use a running sandbox")
		}
	}
	var nc *nats.Conn
	if !embedded {
		if nc, err = f.nats.connect("serve"); err != nil {
			return f.natsError(src, err)
		}
		defer nc.Close()
	}

	if err := os.MkdirAll(f.dataDir, 0o750); err != nil {
		return fmt.Errorf("--data-dir %s: %s", f.dataDir, pathCause(err))
	}
	subjects := events.Subjects{Prefix: f.nats.prefix}
	dbPath := filepath.Join(f.dataDir, "coinsaga.db")
	existed, err := store.SQLiteExists(dbPath)
	if err != nil {
		return err
	}

	// The store first: its lock says whether another process owns this
	// data dir, before anything else starts.
	var storeOpts []store.Option
	if f.syncFull {
		storeOpts = append(storeOpts, store.WithSynchronousFull())
	}
	st, err := store.OpenSQLite(ctx, dbPath, append(storeOpts, store.WithLogger(log))...)
	if err != nil {
		return err
	}
	defer st.Close()

	// abandon removes a store this start created, so that the next start
	// checks NATS for an earlier store's work again (CheckNewStore).
	abandon := func() {
		if !existed {
			st.Close()
			store.RemoveSQLite(dbPath)
		}
	}
	natsURL := f.nats.url
	jsDir := filepath.Join(f.dataDir, "jetstream")
	if embedded {
		srv, err := embednats.Start(embednats.Options{Listen: f.natsListen, StoreDir: jsDir, MaxStore: int64(f.jsMaxStore), Logger: log})
		if err != nil {
			abandon()
			var le *embednats.ListenError
			if errors.As(err, &le) {
				return listenError("nats-listen", f.natsListen, src, le.Err, "another coinsaga or nats-server?", " or --nats-url URL")
			}
			return fmt.Errorf("embedded NATS: %w", err)
		}
		defer srv.Shutdown()
		go srv.KeepJetStream(ctx, 5*time.Second)
		natsURL = srv.ClientURL()
		log.Info("embedded JetStream started", "url", natsURL, "store", jsDir)
		f.nats.url = natsURL
		if nc, err = f.nats.connect("serve"); err != nil {
			abandon()
			return err
		}
		defer nc.Close()
	}

	switch {
	case !existed && f.initStore:
		log.Warn("starting with an empty store on purpose (--init-store)", "store", dbPath)
	case !existed:
		checkCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := worker.CheckNewStore(checkCtx, nc, subjects, dbPath)
		cancel()
		if err != nil {
			// Leave no empty database behind: the next start must ask again.
			st.Close()
			store.RemoveSQLite(dbPath)
			return err
		}
	case f.initStore:
		log.Info("--init-store ignored: the store exists and keeps its orders", "store", dbPath)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerBuildInfo(reg)
	metrics := worker.NewMetrics(reg)

	var sb *sandbox.Sandbox
	if f.sandbox {
		var url string
		var stop func()
		if sb, url, stop, err = startSandboxState(f.sandboxListen, filepath.Join(f.dataDir, "sandbox.json"), log); err != nil {
			return err
		}
		defer stop()
		cfg = sandboxConfig(url)
		cfg.Now = sb.Now
		log.Info("sandbox providers started", "url", url)
	} else if f.sandboxURL != "" {
		cfg = sandboxConfig(strings.TrimRight(f.sandboxURL, "/"))
	}
	sudClient, wallets, err := newProviders(cfg, metrics)
	if err != nil {
		return err
	}
	orders, wallets := protectProviders(sudClient, wallets, cfg.Protect, metrics, log)

	absDataDir, err := filepath.Abs(f.dataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	owner := worker.ThisProcess(absDataDir, time.Now())
	w, err := worker.New(worker.Config{
		Conn: nc, Subjects: subjects, Store: st, Owner: &owner, SUD: orders, Wallets: wallets,
		Streams:     events.StreamOptions{Replicas: f.streamReplicas, StatusMaxAge: f.statusMaxAge, StatusMaxBytes: int64(f.statusMaxBytes)},
		Concurrency: f.concurrency, MaxSteps: f.maxSteps, ConfirmInterval: f.confirmInterval, ConfirmTimeout: f.confirmTimeout,
		SUDExecuteTimeout: f.sudExecTimeout, OutageHold: f.outageHold,
		Retry:  worker.RetryPolicy{MaxAttempts: f.maxAttempts},
		Logger: log, Metrics: metrics,
	})
	if err != nil {
		return err
	}
	var notify http.Handler
	if f.sudNotifyPath != "" {
		notify = sud.NotifyHandler(sud.NotifyConfig{AppID: cfg.SUD.AppID, AppSecret: cfg.SUD.AppSecret, Now: cfg.Now, Logger: log},
			func(ctx context.Context, n sud.Notification) error {
				return w.SUDNotified(ctx, n.Order.OutOrderID, n.Order.Status)
			})
	}
	ui, err := f.console.Handler(ctx, console.Serve{Conn: nc, Subjects: subjects, Orders: st, Metrics: reg, Logger: log})
	if err != nil {
		return err
	}
	httpSrv, httpAddr := startHTTP(httpLn, reg, w, st, nc, f.sudNotifyPath, notify, ui, log)
	defer shutdownHTTP(httpSrv)
	if sb != nil && notify != nil {
		sb.SetSUDNotifyURL("http://" + httpAddr + f.sudNotifyPath)
	}
	if f.retention > 0 {
		go pruneLoop(ctx, st, f.retention, log)
	}
	log.Info("coinsaga serving", "nats", natsURL, "http", httpAddr, "data_dir", f.dataDir)
	if err := w.Run(ctx); err != nil {
		if embedded && errors.Is(err, events.ErrStreamStorage) {
			free, _ := embednats.FreeBytes(f.dataDir)
			return fmt.Errorf("%w; the embedded JetStream may use %s (--jetstream-max-store; by default 75%% of the %s free under %s): free disk space, or lower --status-max-bytes",
				err, maxStoreText(f.jsMaxStore), events.FormatBytes(free), f.dataDir)
		}
		return err
	}
	return nil
}

func maxStoreText(b byteSize) string {
	if b == 0 {
		return "75% of the free disk"
	}
	return events.FormatBytes(int64(b))
}

// sandboxConfig points every client at a sandbox with its default
// credentials (contract section 5).
func sandboxConfig(base string) *Config {
	d := sandbox.DefaultConfig()
	c := &Config{Timeout: 5 * time.Second}
	c.SUD.AppID, c.SUD.AppSecret = d.SUDAppID, d.SUDAppSecret
	c.SUD.CreateOrderURL, c.SUD.QueryOrderURL = base+"/sud/create_order", base+"/sud/query_order"
	c.MOGS.BaseURL, c.MOGS.AppID = base+"/mogs", d.MOGSAppID
	c.Midas.BaseURL, c.Midas.AppID, c.Midas.AppKey = base, d.MidasAppID, d.MidasAppKey
	return c
}

// protectProviders puts the guards of cfg (bulkheads, rate limits, circuit
// breakers, per endpoint) around the SUD client and every wallet.
func protectProviders(sc *sud.Client, wallets map[string]providers.Wallet, cfg protect.Config, m *worker.Metrics, log *slog.Logger) (worker.OrderService, map[string]providers.Wallet) {
	cfg.Observer, cfg.Logger = m, log.With("component", "protect")
	guarded := make(map[string]providers.Wallet, len(wallets))
	for name, w := range wallets {
		guarded[name] = protect.Wallet(w, cfg)
	}
	return protect.Orders(sc, cfg), guarded
}

// newProviders builds the SUD client and the wallets from cfg; every call
// is observed by obs.
func newProviders(cfg *Config, obs providers.Observer) (*sud.Client, map[string]providers.Wallet, error) {
	httpClient := providers.NewHTTPClient(cfg.Timeout)
	sc, err := sud.New(sud.Config{
		AppID: cfg.SUD.AppID, AppSecret: cfg.SUD.AppSecret,
		CreateOrderURL: cfg.SUD.CreateOrderURL, QueryOrderURL: cfg.SUD.QueryOrderURL, ASCBaseURL: cfg.SUD.ASCBaseURL,
		HTTP: httpClient, Timeout: cfg.Timeout, Observer: obs, Now: cfg.Now,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sud client: %w", err)
	}
	wallets := map[string]providers.Wallet{}
	if cfg.MOGS.BaseURL != "" {
		wallets[events.ProviderMOGS] = mogs.New(mogs.Config{BaseURL: cfg.MOGS.BaseURL, AppID: cfg.MOGS.AppID,
			HTTP: httpClient, Timeout: cfg.Timeout, Observer: obs})
	}
	if cfg.Midas.BaseURL != "" {
		wallets[events.ProviderMidas] = midas.New(midas.Config{BaseURL: cfg.Midas.BaseURL, AppID: cfg.Midas.AppID,
			AppKey: cfg.Midas.AppKey, HTTP: httpClient, Timeout: cfg.Timeout, Observer: obs, Now: cfg.Now})
	}
	return sc, wallets, nil
}

// startSandbox serves the sandbox providers on addr in this process, in
// memory only.
func startSandbox(addr string, log *slog.Logger) (*sandbox.Sandbox, string, func(), error) {
	return startSandboxState(addr, "", log)
}

// startSandboxState is startSandbox keeping the sandbox's ledger in
// stateFile ("" for memory only), so that a restart finishes the orders in
// flight against the accounts and bills they left. The stop function
// serves no more requests, then writes the file a last time.
func startSandboxState(addr, stateFile string, log *slog.Logger) (*sandbox.Sandbox, string, func(), error) {
	cfg := sandbox.DefaultConfig()
	cfg.Games = events.DefaultCatalog()
	cfg.Logger = log.With("component", "sandbox")
	cfg.StateFile = stateFile
	sb, err := sandbox.Open(cfg)
	if err != nil {
		return nil, "", nil, err
	}
	if stateFile != "" {
		log.Info("sandbox state file", "file", stateFile, "bills", len(sb.Bills()), "sud_orders", len(sb.SUDOrders()))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = sb.Close()
		return nil, "", nil, fmt.Errorf("sandbox listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := sb.Close(); err != nil {
			log.Error("sandbox state not saved", "file", stateFile, "err", err)
		}
	}
	// The clients in this process reach the sandbox on loopback, also when
	// it listens on every interface (the container image's 0.0.0.0:9311).
	// Go listens on both IPv4 and IPv6 for 0.0.0.0 and [::] alike, so
	// 127.0.0.1 answers either way.
	a := ln.Addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return sb, "http://" + net.JoinHostPort(host, strconv.Itoa(a.Port)), stop, nil
}

// startHTTP serves /metrics, /healthz (the process is up) and /readyz (it is
// taking work: NATS and the store answer) on ln.
// notify, when not nil, takes SUD's notifications at POST notifyPath; ui,
// the operator console, takes every other path.
func startHTTP(ln net.Listener, reg *prometheus.Registry, w *worker.Worker, st store.Store, nc *nats.Conn,
	notifyPath string, notify, ui http.Handler, log *slog.Logger) (*http.Server, string) {
	mux := http.NewServeMux()
	if ui != nil {
		mux.Handle("/", ui)
	}
	if notify != nil {
		mux.Handle("POST "+notifyPath, notify)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(rw, "ok")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		if !w.Ready() {
			http.Error(rw, fmt.Sprintf("not ready: nats %s, store ping %v", nc.Status(), st.Ping(r.Context())), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "ready")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("http listening", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	return srv, ln.Addr().String()
}

func shutdownHTTP(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// pruneLoop deletes old terminal orders so the store stays the size of the
// recent past.
func pruneLoop(ctx context.Context, st store.Store, retention time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		for {
			n, err := st.PruneTerminal(ctx, time.Now().Add(-retention), 5000)
			if err != nil {
				log.Warn("pruning old orders", "err", err)
			}
			if n < 5000 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: durationText}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// durationText writes a time.Duration as Go writes it ("1.5s") in the
// JSON logs too, where slog would write nanoseconds.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// check refuses the values that serve cannot run with, one line each,
// instead of silently using a default.
func (f *serveFlags) check(src sources) error {
	var bad []string
	want := func(name string, ok bool, value any, what string) {
		if !ok {
			bad = append(bad, fmt.Sprintf("--%s %v%s: %s", name, value, src.from(name), what))
		}
	}
	want("concurrency", f.concurrency > 0, f.concurrency, "want 1 or more steps at once")
	want("max-steps", f.maxSteps >= f.concurrency, f.maxSteps, "want at least --concurrency")
	want("max-attempts", f.maxAttempts > 0, f.maxAttempts, "want 1 or more calls per step")
	want("stream-replicas", f.streamReplicas > 0, f.streamReplicas, "want 1 or more (3 on a NATS cluster)")
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"confirm-interval", f.confirmInterval}, {"confirm-timeout", f.confirmTimeout},
		{"sud-execute-timeout", f.sudExecTimeout}, {"outage-hold", f.outageHold}, {"status-max-age", f.statusMaxAge},
	} {
		want(d.name, d.v > 0, d.v, "want a positive duration like 15s or 2m")
	}
	want("retention", f.retention >= 0, f.retention, "want a duration like 720h, or 0 to keep every order")
	want("status-max-bytes", f.statusMaxBytes > 0, f.statusMaxBytes.String(), "want a size like 256MiB")
	want("sud-notify-path", f.sudNotifyPath == "" || strings.HasPrefix(f.sudNotifyPath, "/"), fmt.Sprintf("%q", f.sudNotifyPath),
		`want a path starting with "/", or "" for none`)
	if len(bad) > 0 {
		return usageError{strings.Join(bad, "\n")}
	}
	return nil
}

// embeddedNATS says whether serve runs its own JetStream, by this rule:
// no --nats-url, yes; a --nats-url naming --nats-listen's own address,
// yes unless a NATS already answers there; any other URL, no. The rule
// lets COINSAGA_NATS_URL exported for the tools (nats://127.0.0.1:4222,
// the embedded server's address) leave `make run` as it was.
func (f *serveFlags) embeddedNATS(log *slog.Logger) bool {
	if f.nats.url == "" {
		return true
	}
	if !namesAddress(f.nats.url, f.natsListen) {
		return false
	}
	if conn, err := net.DialTimeout("tcp", dialable(f.natsListen), time.Second); err == nil {
		conn.Close()
		log.Info("a NATS server answers at --nats-url, the --nats-listen address: using it", "url", f.nats.url)
		return false
	}
	log.Info("no NATS server answers at --nats-url, the --nats-listen address: starting the embedded one there", "url", f.nats.url)
	return true
}

// namesAddress reports whether the NATS URL u (one server) points at the
// listen address addr of this machine.
func namesAddress(u, addr string) bool {
	if strings.Contains(u, ",") {
		return false
	}
	if !strings.Contains(u, "://") {
		u = "nats://" + u
	}
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "nats" && parsed.Scheme != "tcp") {
		return false
	}
	port := cmp.Or(parsed.Port(), "4222")
	host, listenPort, err := net.SplitHostPort(addr)
	if err != nil || port != listenPort {
		return false
	}
	loopback := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "localhost" || (ip != nil && ip.IsLoopback())
	}
	uh := parsed.Hostname()
	switch {
	case uh == host:
		return true
	case host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified():
		return loopback(uh)
	}
	return loopback(uh) && loopback(host)
}

// dialable is a listen address a client can dial: 0.0.0.0:4222 and
// :4222 are reached at the loopback address.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// probeListen reports whether addr can be listened on now.
func probeListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// listenError is the one line for a listen address serve cannot use:
// which flag, the cause, and what to pass instead.
func listenError(name, addr string, src sources, err error, who, or string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("--%s %s%s: address already in use (%s); pass --%s HOST:PORT%s", name, addr, src.from(name), who, name, or)
	}
	return fmt.Errorf("--%s %s%s: %s", name, addr, src.from(name), embednats.ListenCause(err))
}

// natsError is the one line for an external NATS serve cannot reach,
// saying how to get the embedded server instead.
func (f *serveFlags) natsError(src sources, err error) error {
	drop := "drop --nats-url"
	if env := src["nats-url"]; env != "" {
		drop = "unset " + env
	}
	var dns *net.DNSError
	var op *net.OpError
	why, fix := "", "start it"
	switch {
	case errors.As(err, &dns):
		why, fix = "the host "+dns.Name+" is not known", "fix the URL"
	case errors.Is(err, nats.ErrNoServers):
		why = "no NATS server answers"
	case errors.As(err, &op):
		why = "no NATS server answers (" + embednats.ListenCause(op) + ")"
	}
	if why != "" {
		return fmt.Errorf("--nats-url %s%s: %s; %s, or %s to run the embedded JetStream on --nats-listen",
			f.nats.url, src.from("nats-url"), why, fix, drop)
	}
	cause := err
	if inner := errors.Unwrap(err); inner != nil {
		cause = inner
	}
	return fmt.Errorf("--nats-url %s%s: %s", f.nats.url, src.from("nats-url"), strings.TrimPrefix(cause.Error(), "nats: "))
}
