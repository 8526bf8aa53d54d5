package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is what serve reads from the --config file (YAML): provider
// endpoints, app ids and secrets. Every secret may be given inline, from an
// environment variable (`*_env: NAME`) or from a file (`*_file: /path`), so
// that the file itself can be committed or mounted without secrets in it.
// docs/configuration.md documents every key; docs/example-config.yaml
// targets the public test endpoints.
type Config struct {
	SUD struct {
		AppID, AppSecret                          string
		CreateOrderURL, QueryOrderURL, ASCBaseURL string
	}
	MOGS  struct{ BaseURL, AppID string }
	Midas struct{ BaseURL, AppID, AppKey string }
	// Timeout bounds one provider HTTP call; default 5s.
	Timeout time.Duration
	// Now is the clients' clock for signatures and timestamps; nil is
	// time.Now. An in-process sandbox lends its own, which tests move.
	Now func() time.Time
}

// rawConfig is the file's shape, with the three keys of each secret.
type rawConfig struct {
	SUD struct {
		AppID          string `yaml:"app_id"`
		AppSecret      string `yaml:"app_secret"`
		AppSecretEnv   string `yaml:"app_secret_env"`
		AppSecretFile  string `yaml:"app_secret_file"`
		CreateOrderURL string `yaml:"create_order_url"`
		QueryOrderURL  string `yaml:"query_order_url"`
		ASCBaseURL     string `yaml:"asc_base_url"`
	} `yaml:"sud"`
	MOGS struct {
		BaseURL string `yaml:"base_url"`
		AppID   string `yaml:"app_id"`
	} `yaml:"mogs"`
	Midas struct {
		BaseURL    string `yaml:"base_url"`
		AppID      string `yaml:"app_id"`
		AppKey     string `yaml:"app_key"`
		AppKeyEnv  string `yaml:"app_key_env"`
		AppKeyFile string `yaml:"app_key_file"`
	} `yaml:"midas"`
	Timeout string `yaml:"timeout"`
}

// loadConfig reads and validates a config file. Every problem found is
// reported, one line each.
func loadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var raw rawConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var c Config
	var problems []string
	c.SUD.AppID, c.SUD.CreateOrderURL, c.SUD.QueryOrderURL, c.SUD.ASCBaseURL =
		raw.SUD.AppID, raw.SUD.CreateOrderURL, raw.SUD.QueryOrderURL, raw.SUD.ASCBaseURL
	c.MOGS.BaseURL, c.MOGS.AppID = raw.MOGS.BaseURL, raw.MOGS.AppID
	c.Midas.BaseURL, c.Midas.AppID = raw.Midas.BaseURL, raw.Midas.AppID
	resolve := func(name, inline, env, file string) string {
		v, err := resolveSecret(inline, env, file)
		if err != nil {
			problems = append(problems, name+": "+err.Error())
		}
		return v
	}
	c.SUD.AppSecret = resolve("sud.app_secret", raw.SUD.AppSecret, raw.SUD.AppSecretEnv, raw.SUD.AppSecretFile)
	c.Midas.AppKey = resolve("midas.app_key", raw.Midas.AppKey, raw.Midas.AppKeyEnv, raw.Midas.AppKeyFile)
	c.Timeout = 5 * time.Second
	if raw.Timeout != "" {
		if c.Timeout, err = time.ParseDuration(raw.Timeout); err != nil || c.Timeout <= 0 {
			problems = append(problems, fmt.Sprintf("timeout: %q is not a positive duration like 5s", raw.Timeout))
		}
	}
	problems = append(problems, c.validate()...)
	if len(problems) > 0 {
		return nil, fmt.Errorf("config %s has %d problem(s):\n  %s", path, len(problems), strings.Join(problems, "\n  "))
	}
	return &c, nil
}

func resolveSecret(inline, env, file string) (string, error) {
	n := 0
	for _, s := range []string{inline, env, file} {
		if s != "" {
			n++
		}
	}
	switch {
	case n > 1:
		return "", errors.New("give the secret one way only: inline, _env or _file")
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading secret file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return inline, nil
}

func (c *Config) validate() []string {
	var p []string
	needURL := func(name, v string, required bool) {
		if v == "" {
			if required {
				p = append(p, name+": required")
			}
			return
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p = append(p, fmt.Sprintf("%s: %q is not an http(s) URL", name, v))
		}
	}
	if c.SUD.AppID == "" {
		p = append(p, "sud.app_id: required")
	}
	if c.SUD.AppSecret == "" {
		p = append(p, "sud.app_secret: required (inline, app_secret_env or app_secret_file)")
	}
	if c.SUD.CreateOrderURL == "" && c.SUD.ASCBaseURL == "" {
		p = append(p, "sud: set create_order_url (and query_order_url), or asc_base_url for discovery")
	}
	needURL("sud.create_order_url", c.SUD.CreateOrderURL, false)
	needURL("sud.query_order_url", c.SUD.QueryOrderURL, c.SUD.CreateOrderURL != "" && c.SUD.ASCBaseURL == "")
	needURL("sud.asc_base_url", c.SUD.ASCBaseURL, false)
	if c.MOGS.BaseURL == "" && c.Midas.BaseURL == "" {
		p = append(p, "configure at least one wallet: mogs.base_url or midas.base_url")
	}
	if c.MOGS.BaseURL != "" {
		needURL("mogs.base_url", c.MOGS.BaseURL, true)
		if c.MOGS.AppID == "" {
			p = append(p, "mogs.app_id: required with mogs.base_url")
		}
	}
	if c.Midas.BaseURL != "" {
		needURL("midas.base_url", c.Midas.BaseURL, true)
		if c.Midas.AppID == "" {
			p = append(p, "midas.app_id: required with midas.base_url (the offer id)")
		}
		if c.Midas.AppKey == "" {
			p = append(p, "midas.app_key: required with midas.base_url (inline, app_key_env or app_key_file)")
		}
	}
	return p
}
