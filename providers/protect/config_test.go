package protect_test

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/coinsaga/coinsaga/providers/protect"
)

func TestConfig(t *testing.T) {
	t.Parallel()

	t.Run("an endpoint takes its own settings, then the default's, then the package's, field by field", func(t *testing.T) {
		t.Parallel()
		c := protect.Config{
			Default: protect.EndpointConfig{MaxInFlight: 64},
			ByEndpoint: map[string]protect.EndpointConfig{
				"midas.pay_m": {RatePerSecond: 100},
				"mogs.pay":    {RatePerSecond: 2, Burst: 7, MaxInFlight: 3},
			},
		}
		cases := []struct {
			endpoint string
			want     protect.EndpointConfig
		}{
			{"midas.pay_m", protect.EndpointConfig{RatePerSecond: 100, Burst: 10, MaxInFlight: 64}},
			{"mogs.pay", protect.EndpointConfig{RatePerSecond: 2, Burst: 7, MaxInFlight: 3}},
			{"sud.create_order", protect.EndpointConfig{MaxInFlight: 64}},
		}
		for _, tc := range cases {
			if got := c.For(tc.endpoint); got != tc.want {
				t.Errorf("For(%s) = %+v, want %+v", tc.endpoint, got, tc.want)
			}
		}
		if got := (protect.Config{}).For("mogs.pay"); got != (protect.EndpointConfig{MaxInFlight: protect.DefaultMaxInFlight}) {
			t.Errorf("zero config: %+v", got)
		}
		slow := protect.Config{Default: protect.EndpointConfig{RatePerSecond: 0.5}}
		if got := slow.For("mogs.pay").Burst; got != 1 {
			t.Errorf("burst of 0.5 calls/s = %d, want at least 1", got)
		}
	})

	t.Run("the zero config and every known endpoint are valid", func(t *testing.T) {
		t.Parallel()
		c := protect.Config{ByEndpoint: map[string]protect.EndpointConfig{}}
		for _, ep := range protect.Endpoints {
			c.ByEndpoint[ep] = protect.EndpointConfig{RatePerSecond: 10, MaxInFlight: 8}
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if err := (protect.Config{}).Validate(); err != nil {
			t.Fatal(err)
		}
	})

	problems := []struct {
		name string
		cfg  protect.Config
		want string
	}{
		{"an unknown endpoint is refused by name", protect.Config{ByEndpoint: map[string]protect.EndpointConfig{"mogs.payy": {}}}, "mogs.payy: unknown endpoint"},
		{"a negative rate is refused", protect.Config{ByEndpoint: map[string]protect.EndpointConfig{"midas.pay_m": {RatePerSecond: -1}}}, "midas.pay_m: rate_per_second -1"},
		{"an infinite rate is refused", protect.Config{Default: protect.EndpointConfig{RatePerSecond: math.Inf(1)}}, "default: rate_per_second +Inf"},
		{"a NaN rate is refused", protect.Config{Default: protect.EndpointConfig{RatePerSecond: math.NaN()}}, "default: rate_per_second NaN"},
		{"a negative burst is refused", protect.Config{ByEndpoint: map[string]protect.EndpointConfig{"mogs.pay": {RatePerSecond: 1, Burst: -2}}}, "mogs.pay: burst -2"},
		{"a burst without a rate is refused", protect.Config{ByEndpoint: map[string]protect.EndpointConfig{"sud.query_order": {Burst: 3}}}, "sud.query_order: burst 3 without a rate_per_second"},
		{"a default burst without a rate is refused", protect.Config{Default: protect.EndpointConfig{Burst: 3}}, "default: burst 3 without a rate_per_second"},
		{"a negative max_in_flight is refused", protect.Config{ByEndpoint: map[string]protect.EndpointConfig{"mogs.present": {MaxInFlight: -1}}}, "mogs.present: max_in_flight -1"},
		{"negative breaker failures are refused", protect.Config{Breaker: protect.BreakerConfig{Failures: -1}}, "breaker: failures -1"},
		{"a negative cool-down is refused", protect.Config{Breaker: protect.BreakerConfig{CoolDown: -time.Second}}, "breaker: cool_down -1s"},
		{"a cap below the cool-down is refused", protect.Config{Breaker: protect.BreakerConfig{CoolDown: time.Minute, MaxCoolDown: time.Second}}, "breaker: max_cool_down 1s is shorter than cool_down 1m0s"},
	}
	for _, tc := range problems {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := tc.cfg.Problems()
			if len(p) != 1 || !strings.HasPrefix(p[0], tc.want) || strings.Contains(p[0], "\n") {
				t.Fatalf("problems = %q, want one line starting %q", p, tc.want)
			}
			if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v", err)
			}
		})
	}

	t.Run("a long cool-down raises the default cap to itself", func(t *testing.T) {
		t.Parallel()
		if p := (protect.Config{Breaker: protect.BreakerConfig{CoolDown: 2 * time.Minute}}).Problems(); p != nil {
			t.Fatal(p)
		}
	})

	t.Run("Wallet panics on an invalid config, naming the problem", func(t *testing.T) {
		t.Parallel()
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "mogs.payy") {
				t.Fatalf("recovered %v", r)
			}
		}()
		protect.Wallet(newFake(nil), protect.Config{ByEndpoint: map[string]protect.EndpointConfig{"mogs.payy": {}}})
	})

	t.Run("a config file's block decodes into a Config, and a misspelt key is an error", func(t *testing.T) {
		t.Parallel()
		const block = `
default:
  max_in_flight: 128
endpoints:
  midas.pay_m:
    rate_per_second: 100
    burst: 10
  mogs.pay:
    max_in_flight: 32
breaker:
  failures: 3
  cool_down: 2s
  max_cool_down: 30s
`
		var c protect.Config
		dec := yaml.NewDecoder(strings.NewReader(block))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			t.Fatal(err)
		}
		want := protect.Config{
			Default: protect.EndpointConfig{MaxInFlight: 128},
			ByEndpoint: map[string]protect.EndpointConfig{
				"midas.pay_m": {RatePerSecond: 100, Burst: 10},
				"mogs.pay":    {MaxInFlight: 32},
			},
			Breaker: protect.BreakerConfig{Failures: 3, CoolDown: 2 * time.Second, MaxCoolDown: 30 * time.Second},
		}
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("decoded %+v, want %+v", c, want)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		dec = yaml.NewDecoder(strings.NewReader("endpoints:\n  mogs.pay:\n    rate_per_secnd: 1\n"))
		dec.KnownFields(true)
		if err := dec.Decode(&protect.Config{}); err == nil {
			t.Fatal("a misspelt key decoded")
		}
	})
}
