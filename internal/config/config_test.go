package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	const valid = "sud:\n  app_id: a\n  app_secret: s\n  asc_base_url: https://a\nmogs:\n  base_url: https://m\n  app_id: x\n"
	cases := []struct {
		name, body string
		check      func(t *testing.T, c *Config, err error)
	}{
		{"a file without timeout gets the default", valid, func(t *testing.T, c *Config, err error) {
			if err != nil || c.Timeout != DefaultTimeout {
				t.Fatalf("config %+v, %v; want timeout %s", c, err, DefaultTimeout)
			}
		}},
		{"a timeout is read as a duration", valid + "timeout: 2s\n", func(t *testing.T, c *Config, err error) {
			if err != nil || c.Timeout.String() != "2s" {
				t.Fatalf("config %+v, %v; want timeout 2s", c, err)
			}
		}},
		{"a list where one value stands is named a list, on its line", valid + "timeout: [1]\n", func(t *testing.T, _ *Config, err error) {
			if err == nil || !strings.Contains(err.Error(), "line 8: timeout: holds a list; want one value") {
				t.Fatalf("error %v, want line 8: timeout: holds a list", err)
			}
		}},
		{"the database URL may come from the environment", valid + "database:\n  url_env: COINSAGA_TEST_CONFIG_DB\n", func(t *testing.T, c *Config, err error) {
			if err != nil || c.DatabaseURL != "postgres://u:p@db/coinsaga" {
				t.Fatalf("config %+v, %v; want the URL from COINSAGA_TEST_CONFIG_DB", c, err)
			}
		}},
		{"a database URL that is not postgres:// is refused on its key", valid + "database:\n  url: ./coinsaga.db\n", func(t *testing.T, _ *Config, err error) {
			if err == nil || !strings.Contains(err.Error(), "database.url: want a postgres:// URL") {
				t.Fatalf("error %v, want database.url: want a postgres:// URL", err)
			}
		}},
	}
	os.Setenv("COINSAGA_TEST_CONFIG_DB", "postgres://u:p@db/coinsaga") // read by one case; no other test reads it
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "coinsaga.yaml")
			if err := os.WriteFile(path, []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			c.check(t, cfg, err)
		})
	}
}

func TestTheSandboxConfigIsAValidConfig(t *testing.T) {
	t.Parallel()
	c := Sandbox("http://127.0.0.1:9311")
	if p := c.validate(); len(p) > 0 {
		t.Errorf("the sandbox's config has problems: %+v", p)
	}
	if c.Timeout != DefaultTimeout {
		t.Errorf("timeout %s, want %s", c.Timeout, DefaultTimeout)
	}
}
