package sandbox

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Sandbox. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// InitialBalance is what a new account starts with, all of it purchased
	// coins: balance = save_amt = save_sum = InitialBalance, gen_balance 0.
	InitialBalance int64
	MOGSAppID      string // MOGS appid accepted on /mogs/*
	MidasAppID     string // Midas offer id accepted on /mpay/*
	MidasAppKey    string // key of the Midas sig check
	SUDAppID       string // SUD app_id accepted in Sud-Auth
	SUDAppSecret   string // key of the Sud-Auth signature and of discovery
	// Seed drives the fault dice; 0 picks a time-based seed.
	Seed int64
	// Now is the clock of bills, idempotency expiry and visibility delays;
	// tests replace it to move time without sleeping. nil = time.Now.
	Now func() time.Time
	// AllowRemoteAdmin serves /_sandbox/* to non-loopback peers too.
	AllowRemoteAdmin bool
	// Logger gets one debug line per provider call; nil = discard. Secrets
	// are never logged.
	Logger *slog.Logger
	// Games checks mg_id/cmd/value/payload of SUD create_order for known
	// games; nil accepts every game with the generic checks only.
	Games GameChecker
	// StateFile, when set, is where the sandbox keeps its ledger across
	// restarts (see Open); "" keeps everything in memory only.
	StateFile string
}

// GameChecker validates a SUD create_order against a game catalog. It must
// accept a mg_id it does not know (SUD's own example uses one) and refuse a
// known game's unknown cmd or a value/payload out of shape. Safe for
// concurrent use.
type GameChecker interface {
	CheckCommand(mgID, cmd string, value int32, payload json.RawMessage) error
}

// DefaultConfig returns the credentials of contract.md section 5.
func DefaultConfig() Config {
	return Config{
		InitialBalance: 1000000,
		MOGSAppID:      "10000",
		MidasAppID:     "1450000000",
		MidasAppKey:    "sandbox-midas-appkey",
		SUDAppID:       "sandbox-sud-app",
		SUDAppSecret:   "sandbox-sud-secret",
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.InitialBalance == 0 {
		c.InitialBalance = d.InitialBalance
	}
	if c.MOGSAppID == "" {
		c.MOGSAppID = d.MOGSAppID
	}
	if c.MidasAppID == "" {
		c.MidasAppID = d.MidasAppID
	}
	if c.MidasAppKey == "" {
		c.MidasAppKey = d.MidasAppKey
	}
	if c.SUDAppID == "" {
		c.SUDAppID = d.SUDAppID
	}
	if c.SUDAppSecret == "" {
		c.SUDAppSecret = d.SUDAppSecret
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Sandbox fakes SUD, MOGS and Midas on one http.Handler. Safe for
// concurrent use; its state is in memory, and also in Config.StateFile
// when that is set (state.go).
type Sandbox struct {
	cfg    Config
	ledger *ledger
	sud    *sudBook
	faults *faultTable
	mux    *http.ServeMux
	// billSeq makes server-generated MOGS bill numbers unique.
	billSeq atomic.Uint64
	// clockOffset is how far AdvanceClock moved the clock, in nanoseconds.
	clockOffset atomic.Int64
	// persist keeps Config.StateFile; nil without one.
	persist   *persister
	closeOnce sync.Once
	closeErr  error
}

// New returns a Sandbox; zero fields of cfg take defaults. With a
// StateFile it is Open, and panics where Open returns an error: use Open
// wherever the file may be damaged or unwritable.
func New(cfg Config) *Sandbox {
	s, err := Open(cfg)
	if err != nil {
		panic(err)
	}
	return s
}

func newSandbox(cfg Config) *Sandbox {
	cfg = cfg.withDefaults()
	s := &Sandbox{
		cfg:    cfg,
		ledger: newLedger(cfg.InitialBalance),
		sud:    newSUDBook(cfg.Now()),
		faults: newFaultTable(cfg.Seed),
	}
	s.billSeq.Store(uint64(cfg.Now().UnixMilli()) * 1000)
	s.mux = s.routes()
	return s
}

func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Sandbox) routes() *http.ServeMux {
	m := http.NewServeMux()

	m.HandleFunc("GET /sud/asc/{key}", s.sudDiscovery)
	m.HandleFunc("POST /sud/create_order", s.endpoint(epSUDCreateOrder, busySUD, s.sudCreateOrder))
	m.HandleFunc("POST /sud/query_order", s.endpoint(epSUDQueryOrder, busySUD, s.sudQueryOrder))

	m.HandleFunc("POST /mogs/getbalance", s.endpoint(epMOGSGetBalance, busyMOGS, s.mogsGetBalance))
	m.HandleFunc("POST /mogs/pay", s.endpoint(epMOGSPay, busyMOGS, s.mogsPay))
	m.HandleFunc("POST /mogs/cancelpay", s.endpoint(epMOGSCancelPay, busyMOGS, s.mogsCancelPay))
	m.HandleFunc("POST /mogs/present", s.endpoint(epMOGSPresent, busyMOGS, s.mogsPresent))

	m.HandleFunc("GET /mpay/get_balance_m", s.endpoint(epMidasGetBalance, busyMidas, s.midasGetBalance))
	m.HandleFunc("GET /mpay/pay_m", s.endpoint(epMidasPay, busyMidas, s.midasPay))
	m.HandleFunc("GET /mpay/cancel_pay_m", s.endpoint(epMidasCancelPay, busyMidas, s.midasCancelPay))
	m.HandleFunc("GET /mpay/present_m", s.endpoint(epMidasPresent, busyMidas, s.midasPresent))

	s.adminRoutes(m)
	return m
}

// now is the sandbox clock: Config.Now moved on by AdvanceClock.
func (s *Sandbox) now() time.Time { return s.cfg.Now().Add(time.Duration(s.clockOffset.Load())) }
