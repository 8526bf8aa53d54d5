package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigProtectBlock(t *testing.T) {
	t.Parallel()
	base := "sud:\n  app_id: a\n  app_secret: s\n  create_order_url: https://sud/c\n  query_order_url: https://sud/q\nmogs:\n  base_url: https://mogs\n  app_id: \"1\"\n"
	write := func(t *testing.T, body string) string {
		path := filepath.Join(t.TempDir(), "coinsaga.yaml")
		if err := os.WriteFile(path, []byte(base+body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Run("rate limits, in-flight caps and the breaker are read per endpoint", func(t *testing.T) {
		c, err := loadConfig(write(t, "protect:\n  default:\n    max_in_flight: 32\n  endpoints:\n    midas.pay_m: {rate_per_second: 100, burst: 1}\n  breaker:\n    failures: 3\n    cool_down: 2s\n"))
		if err != nil {
			t.Fatal(err)
		}
		p := c.Protect
		if p.Default.MaxInFlight != 32 || p.ByEndpoint["midas.pay_m"].RatePerSecond != 100 || p.Breaker.Failures != 3 || p.Breaker.CoolDown != 2*time.Second {
			t.Fatalf("protect = %+v", p)
		}
	})
	for name, body := range map[string]string{
		"an unknown endpoint":       "protect:\n  endpoints:\n    mogs.payy: {rate_per_second: 1}\n",
		"a negative rate":           "protect:\n  endpoints:\n    mogs.pay: {rate_per_second: -1}\n",
		"a misspelt key":            "protect:\n  default:\n    maxinflight: 3\n",
		"a list where a map stands": "protect:\n  endpoints:\n    - mogs.pay\n",
	} {
		t.Run(name+" is one line naming it", func(t *testing.T) {
			_, err := loadConfig(write(t, body))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "protect") || strings.Contains(msg, "main.") {
				t.Fatalf("error %q: want one line naming protect", msg)
			}
		})
	}
}
