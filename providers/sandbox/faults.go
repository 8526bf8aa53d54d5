package sandbox

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint names, as used by faults.
const (
	epSUDCreateOrder  = "sud.create_order"
	epSUDQueryOrder   = "sud.query_order"
	epMOGSGetBalance  = "mogs.getbalance"
	epMOGSPay         = "mogs.pay"
	epMOGSCancelPay   = "mogs.cancelpay"
	epMOGSPresent     = "mogs.present"
	epMidasGetBalance = "midas.get_balance_m"
	epMidasPay        = "midas.pay_m"
	epMidasCancelPay  = "midas.cancel_pay_m"
	epMidasPresent    = "midas.present_m"
	// EveryEndpoint as a Fault's Endpoint applies it to every provider
	// endpoint that has no fault of its own.
	EveryEndpoint = "*"
)

// Endpoints lists the endpoint names a Fault may name besides "*".
var Endpoints = []string{
	epSUDCreateOrder, epSUDQueryOrder,
	epMOGSGetBalance, epMOGSPay, epMOGSCancelPay, epMOGSPresent,
	epMidasGetBalance, epMidasPay, epMidasCancelPay, epMidasPresent,
}

// Fault makes one endpoint (or "*", every endpoint) misbehave. Rates are
// probabilities in [0,1], rolled independently per call in this order:
// error (HTTP 500, no effect), busy (the provider's busy code, no effect);
// otherwise the call takes effect, then LatencyMS passes (plus a uniform
// random 0 to LatencyJitterMS more), then the reply is dropped (connection
// closed without a byte) with DropReplyRate.
type Fault struct {
	Endpoint      string  `json:"endpoint"`
	ErrorRate     float64 `json:"error_rate"`
	BusyRate      float64 `json:"busy_rate"`
	DropReplyRate float64 `json:"drop_reply_rate"`
	LatencyMS     int     `json:"latency_ms"`
	// LatencyJitterMS adds to LatencyMS a uniform random extra latency of
	// 0 to LatencyJitterMS ms per call, drawn from the seeded dice, so that
	// replies spread over [latency_ms, latency_ms+latency_jitter_ms] like a
	// real provider's rather than arriving in lockstep. Left out of the
	// JSON when zero, for the admin clients of older sandboxes.
	LatencyJitterMS int `json:"latency_jitter_ms,omitempty"`
	// VisibilityDelayMS, on a debit endpoint (mogs.pay, midas.pay_m or "*"),
	// hides each debit from balance reads for that long after it happened.
	VisibilityDelayMS int `json:"visibility_delay_ms"`
	// ExecuteFailRate and ExecuteDelayMS, on sud.create_order (or "*"): a
	// created order is EXECUTING for ExecuteDelayMS by the sandbox clock, then
	// EXECUTE_FAIL with ExecuteFailRate, else EXECUTE_SUCCESS. Left out of
	// the JSON when zero, so that an admin client still talks to a sandbox
	// that predates them (it refuses unknown fields).
	ExecuteFailRate float64 `json:"execute_fail_rate,omitempty"`
	ExecuteDelayMS  int     `json:"execute_delay_ms,omitempty"`
}

// visibilityDelay is how long a debit made under f stays hidden from
// balance reads (VisibilityDelayMS), zero when it does not hide.
func (f Fault) visibilityDelay() time.Duration {
	if f.VisibilityDelayMS <= 0 {
		return 0
	}
	return time.Duration(f.VisibilityDelayMS) * time.Millisecond
}

func (f Fault) validate() error {
	if f.Endpoint != EveryEndpoint && !knownEndpoint(f.Endpoint) {
		return fmt.Errorf("unknown endpoint %q", f.Endpoint)
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"error_rate", f.ErrorRate}, {"busy_rate", f.BusyRate}, {"drop_reply_rate", f.DropReplyRate}} {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			return fmt.Errorf("%s %v not in [0,1]", r.name, r.v)
		}
	}
	if f.LatencyMS < 0 || f.LatencyJitterMS < 0 || f.VisibilityDelayMS < 0 {
		return fmt.Errorf("latency_ms, latency_jitter_ms and visibility_delay_ms must not be negative")
	}
	return f.validateSUD()
}

func knownEndpoint(name string) bool {
	for _, e := range Endpoints {
		if e == name {
			return true
		}
	}
	return false
}

// faultTable is read on every call and written rarely, so it is a
// copy-on-write map behind an atomic pointer: the no-fault path takes no lock.
type faultTable struct {
	set   atomic.Pointer[map[string]Fault]
	mu    sync.Mutex // serialises writers and guards rng
	rng   *rand.Rand
	empty map[string]Fault
}

func newFaultTable(seed int64) *faultTable {
	t := &faultTable{rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)), empty: map[string]Fault{}}
	t.set.Store(&t.empty)
	return t
}

func (t *faultTable) put(f Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.set.Load()
	next := make(map[string]Fault, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[f.Endpoint] = f
	t.set.Store(&next)
}

func (t *faultTable) clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.set.Store(&t.empty)
}

func (t *faultTable) list() []Fault {
	m := *t.set.Load()
	out := make([]Fault, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Endpoint < out[j].Endpoint })
	return out
}

func (t *faultTable) lookup(endpoint string) (Fault, bool) {
	m := *t.set.Load()
	if len(m) == 0 {
		return Fault{}, false
	}
	if f, ok := m[endpoint]; ok {
		return f, true
	}
	f, ok := m[EveryEndpoint]
	return f, ok
}

// dice is the outcome of one call's rolls.
type dice struct {
	fail, busy, drop bool
	pick             float64       // picks among several busy codes
	latency          time.Duration // LatencyMS plus this call's jitter
}

func (t *faultTable) roll(f Fault) dice {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := dice{
		fail:    t.rng.Float64() < f.ErrorRate,
		busy:    t.rng.Float64() < f.BusyRate,
		drop:    t.rng.Float64() < f.DropReplyRate,
		pick:    t.rng.Float64(),
		latency: time.Duration(f.LatencyMS) * time.Millisecond,
	}
	if f.LatencyJitterMS > 0 {
		// Rolled only when set, so that the dice of a fault without jitter
		// fall as they did before jitter existed.
		d.latency += time.Duration(t.rng.Int64N(int64(f.LatencyJitterMS)*int64(time.Millisecond) + 1))
	}
	return d
}

// SetFault sets or replaces the fault of f.Endpoint. It panics on an invalid
// fault (unknown endpoint, rate outside [0,1]): that is a bug in the test.
func (s *Sandbox) SetFault(f Fault) {
	if err := f.validate(); err != nil {
		panic("sandbox: SetFault: " + err.Error())
	}
	s.faults.put(f)
}

// ClearFaults removes every fault.
func (s *Sandbox) ClearFaults() { s.faults.clear() }

// Faults lists the faults in force, by endpoint name.
func (s *Sandbox) Faults() []Fault { return s.faults.list() }

// reply is a provider answer, built before any of it is written so that
// latency and dropped replies can be applied after the effect.
type reply struct {
	status      int
	contentType string
	body        []byte
}

// call is what an endpoint handler needs to know about its call.
type call struct {
	r     *http.Request
	fault Fault // zero when none applies
	now   time.Time
}

type handlerFunc func(c *call) reply

// endpoint wraps a provider handler with the fault machinery.
func (s *Sandbox) endpoint(name string, busy func(r *http.Request, pick float64) reply, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		f, faulty := s.faults.lookup(name)
		var d dice
		if faulty {
			d = s.faults.roll(f)
		}
		var rep reply
		switch {
		case d.fail:
			rep = reply{status: http.StatusInternalServerError, contentType: "text/plain; charset=utf-8", body: []byte("sandbox: injected error\n")}
		case d.busy:
			rep = busy(r, d.pick)
		default:
			rep = s.apply(h, f, r)
		}
		if d.latency > 0 {
			// The effect is already applied: a client that gives up during
			// this wait has been charged, like a real slow provider.
			t := time.NewTimer(d.latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if d.drop {
			s.cfg.Logger.Debug("sandbox: dropping reply", "endpoint", name)
			dropConnection(w)
			return
		}
		if s.cfg.Logger.Enabled(r.Context(), slog.LevelDebug) {
			s.cfg.Logger.Debug("sandbox call", "endpoint", name, "status", rep.status, "elapsed", time.Since(start))
		}
		writeReply(w, rep)
	}
}

// apply runs a provider handler as one change to the sandbox's state.
func (s *Sandbox) apply(h handlerFunc, f Fault, r *http.Request) reply {
	defer s.changing()()
	return h(&call{r: r, fault: f, now: s.now()})
}

func writeReply(w http.ResponseWriter, rep reply) {
	h := w.Header()
	h.Set("Content-Type", rep.contentType)
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

// dropConnection closes the connection without writing a byte of reply.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		conn, _, err := hj.Hijack()
		if err == nil {
			_ = conn.Close()
			return
		}
	}
	// HTTP/2 and recorders cannot be hijacked; aborting the handler makes
	// the server reset the stream or close the connection instead.
	panic(http.ErrAbortHandler)
}
