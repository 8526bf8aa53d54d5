package protect

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/coinsaga/coinsaga/providers/midas"
	"github.com/coinsaga/coinsaga/providers/mogs"
	"github.com/coinsaga/coinsaga/providers/sud"
)

// Defaults of a zero Config.
const (
	// DefaultMaxInFlight is generous on purpose: at 50 ms a call it lets
	// one endpoint carry 5000 calls/s, so it only bites when a provider
	// slows down so much that calls pile up.
	DefaultMaxInFlight = 256
	DefaultFailures    = 5               // outage failures in a row that open a circuit
	DefaultCoolDown    = 5 * time.Second // open time before the first probe
	DefaultMaxCoolDown = time.Minute     // the cool-down doubles on each failed probe, up to this
)

// Endpoints lists the names Config.ByEndpoint may use: provider "."
// endpoint, as the clients report calls to their providers.Observer and as
// the sandbox names its faults.
var Endpoints = []string{
	name(sud.Provider, sud.EndpointCreateOrder), name(sud.Provider, sud.EndpointQueryOrder),
	name(mogs.Provider, mogs.EndpointGetBalance), name(mogs.Provider, mogs.EndpointPay),
	name(mogs.Provider, mogs.EndpointCancelPay), name(mogs.Provider, mogs.EndpointPresent),
	name(midas.Provider, midas.EndpointGetBalance), name(midas.Provider, midas.EndpointPay),
	name(midas.Provider, midas.EndpointCancelPay), name(midas.Provider, midas.EndpointPresent),
}

func name(provider, endpoint string) string { return provider + "." + endpoint }

// Config configures the guards of every endpoint a decorator wraps. The
// zero Config is usable: no rate limit, DefaultMaxInFlight calls in flight
// per endpoint, and a breaker with the Default* settings.
//
// The data fields carry yaml tags so that a config file's block can be
// decoded into a Config directly (with KnownFields, a misspelt key is an
// error); call Validate or Problems after decoding.
type Config struct {
	// Default applies to every endpoint; a zero field takes the package
	// default.
	Default EndpointConfig `yaml:"default"`
	// ByEndpoint overrides Default for one endpoint ("midas.pay_m"); a
	// zero field takes Default's value.
	ByEndpoint map[string]EndpointConfig `yaml:"endpoints"`
	Breaker    BreakerConfig             `yaml:"breaker"`

	// Now is the breaker's clock; nil is time.Now. Rate limits and
	// bulkheads make real callers wait, so they use real time.
	Now func() time.Time `yaml:"-"`
	// Observer is told of circuit changes, refusals and waits; nil is
	// NopObserver.
	Observer Observer `yaml:"-"`
	// Logger gets one line when a circuit opens and one when it closes,
	// never one per call; nil discards.
	Logger *slog.Logger `yaml:"-"`
}

// EndpointConfig limits the calls to one endpoint.
type EndpointConfig struct {
	// RatePerSecond is how many calls may start per second, on average;
	// 0 is no limit. A caller over it waits for its turn.
	RatePerSecond float64 `yaml:"rate_per_second"`
	// Burst is how many calls may start at once after a quiet spell, with
	// a rate only; 0 is a tenth of a second's worth of the rate, at least 1.
	Burst int `yaml:"burst"`
	// MaxInFlight is how many calls may be in flight at once; 0 is
	// DefaultMaxInFlight. A caller over it waits for a call to end.
	MaxInFlight int `yaml:"max_in_flight"`
}

// BreakerConfig tunes the circuit breakers; it is the same for every
// endpoint, each of which has a breaker of its own.
type BreakerConfig struct {
	// Failures is how many outage failures in a row open the circuit;
	// 0 is DefaultFailures.
	Failures int `yaml:"failures"`
	// CoolDown is how long the circuit stays open before one probe call is
	// let through; 0 is DefaultCoolDown. It doubles after each failed
	// probe, up to MaxCoolDown (0 is DefaultMaxCoolDown), and is back to
	// CoolDown once the circuit closes.
	CoolDown    time.Duration `yaml:"cool_down"`
	MaxCoolDown time.Duration `yaml:"max_cool_down"`
}

// For returns the settings in force for endpoint: its ByEndpoint entry,
// then Default, then the package defaults, field by field.
func (c Config) For(endpoint string) EndpointConfig {
	e := c.ByEndpoint[endpoint]
	d := c.Default
	if e.RatePerSecond == 0 {
		e.RatePerSecond = d.RatePerSecond
	}
	if e.Burst == 0 {
		e.Burst = d.Burst
	}
	if e.MaxInFlight == 0 {
		e.MaxInFlight = d.MaxInFlight
	}
	if e.MaxInFlight == 0 {
		e.MaxInFlight = DefaultMaxInFlight
	}
	if e.Burst == 0 && e.RatePerSecond > 0 {
		e.Burst = max(1, int(math.Ceil(e.RatePerSecond/10)))
	}
	return e
}

func (b BreakerConfig) withDefaults() BreakerConfig {
	if b.Failures == 0 {
		b.Failures = DefaultFailures
	}
	if b.CoolDown == 0 {
		b.CoolDown = DefaultCoolDown
	}
	if b.MaxCoolDown == 0 {
		b.MaxCoolDown = max(DefaultMaxCoolDown, b.CoolDown)
	}
	return b
}

// Problems lists what is wrong with c, one line each, naming the endpoint
// (or "default", or "breaker"); nil when c is valid.
func (c Config) Problems() []string {
	var p []string
	check := func(where string, e EndpointConfig) {
		if math.IsNaN(e.RatePerSecond) || math.IsInf(e.RatePerSecond, 0) || e.RatePerSecond < 0 {
			p = append(p, fmt.Sprintf("%s: rate_per_second %v must be a positive number, or 0 for no limit", where, e.RatePerSecond))
		}
		if e.Burst < 0 {
			p = append(p, fmt.Sprintf("%s: burst %d must not be negative", where, e.Burst))
		}
		if e.MaxInFlight < 0 {
			p = append(p, fmt.Sprintf("%s: max_in_flight %d must not be negative", where, e.MaxInFlight))
		}
	}
	check("default", c.Default)
	if c.Default.Burst > 0 && c.Default.RatePerSecond == 0 {
		p = append(p, fmt.Sprintf("default: burst %d without a rate_per_second", c.Default.Burst))
	}
	names := make([]string, 0, len(c.ByEndpoint))
	for n := range c.ByEndpoint {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !known(n) {
			p = append(p, fmt.Sprintf("%s: unknown endpoint, want one of %s", n, strings.Join(Endpoints, ", ")))
			continue
		}
		check(n, c.ByEndpoint[n])
		if e := c.For(n); e.Burst > 0 && e.RatePerSecond == 0 {
			p = append(p, fmt.Sprintf("%s: burst %d without a rate_per_second", n, e.Burst))
		}
	}
	b := c.Breaker
	if b.Failures < 0 {
		p = append(p, fmt.Sprintf("breaker: failures %d must not be negative", b.Failures))
	}
	if b.CoolDown < 0 || b.MaxCoolDown < 0 {
		p = append(p, fmt.Sprintf("breaker: cool_down %v and max_cool_down %v must not be negative", b.CoolDown, b.MaxCoolDown))
	} else if b := b.withDefaults(); b.MaxCoolDown < b.CoolDown {
		p = append(p, fmt.Sprintf("breaker: max_cool_down %v is shorter than cool_down %v", b.MaxCoolDown, b.CoolDown))
	}
	return p
}

// Validate is Problems as one error, nil when c is valid.
func (c Config) Validate() error {
	p := c.Problems()
	if len(p) == 0 {
		return nil
	}
	return errors.New("protect: " + strings.Join(p, "; "))
}

func known(endpoint string) bool {
	for _, e := range Endpoints {
		if e == endpoint {
			return true
		}
	}
	return false
}
