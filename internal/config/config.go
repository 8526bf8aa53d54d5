// Package config reads the file `coinsaga serve --config` names: provider
// endpoints, app ids and secrets, and the provider protection settings.
// Every problem in a file is reported, one line each, naming the file, the
// line and the key (docs/configuration.md documents every key).
package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/coinsaga/coinsaga/providers/protect"
	"github.com/coinsaga/coinsaga/providers/sandbox"
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
	// Timeout bounds one provider HTTP call; default DefaultTimeout.
	Timeout time.Duration
	// Now is the clients' clock for signatures and timestamps; nil is
	// time.Now. An in-process sandbox lends its own, which tests move.
	Now func() time.Time
	// Protect limits the calls to each provider endpoint: rate limits,
	// calls in flight and the circuit breaker (docs/configuration.md).
	Protect protect.Config
	// DatabaseURL is where the orders live: a postgres:// URL selects the
	// PostgreSQL store, empty keeps SQLite under --data-dir. It holds a
	// password, so it may come from database.url_env or url_file too;
	// `serve --database-url` (or COINSAGA_DATABASE_URL) wins over it.
	DatabaseURL string
}

// DefaultTimeout bounds one provider HTTP call when the file does not say.
const DefaultTimeout = 5 * time.Second

// Sandbox points every client at a sandbox serving at base with its
// default credentials (contract section 5).
func Sandbox(base string) *Config {
	d := sandbox.DefaultConfig()
	c := &Config{Timeout: DefaultTimeout}
	c.SUD.AppID, c.SUD.AppSecret = d.SUDAppID, d.SUDAppSecret
	c.SUD.CreateOrderURL, c.SUD.QueryOrderURL = base+"/sud/create_order", base+"/sud/query_order"
	c.MOGS.BaseURL, c.MOGS.AppID = base+"/mogs", d.MOGSAppID
	c.Midas.BaseURL, c.Midas.AppID, c.Midas.AppKey = base, d.MidasAppID, d.MidasAppKey
	return c
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
	Database struct {
		URL     string `yaml:"url"`
		URLEnv  string `yaml:"url_env"`
		URLFile string `yaml:"url_file"`
	} `yaml:"database"`
	Timeout string         `yaml:"timeout"`
	Protect protect.Config `yaml:"protect"`
}

// problem is one thing wrong in a config file: the key it is about
// ("sud.app_secret_env", "sud", or "" for the whole file), why, and its
// line when the key does not tell.
type problem struct {
	key, msg string
	line     int
}

// configFile is a config file being read: its name, and the line of
// every key it has, to point at the line of each problem.
type configFile struct {
	path  string
	lines map[string]int // "sud", "sud.app_id", "timeout", ...
}

// say is one line for p: "config F line N: key: why". A key the file
// lacks is placed at its section's line, if the section is there.
func (f *configFile) say(p problem) string {
	line := p.line
	if line == 0 {
		section, _, _ := strings.Cut(p.key, ".")
		line = cmp.Or(f.lines[p.key], f.lines[section])
	}
	where := "config " + f.path
	if line > 0 {
		where += fmt.Sprintf(" line %d", line)
	}
	if p.key == "" {
		return where + ": " + p.msg
	}
	return where + ": " + p.key + ": " + p.msg
}

// Load reads and validates a config file. Every problem found is
// reported, one line each, naming the file, the line and the key.
func Load(path string) (*Config, error) {
	file := &configFile{path: path, lines: map[string]int{}}
	fail := func(ps ...problem) error {
		lines := make([]string, len(ps))
		for i, p := range ps {
			lines[i] = file.say(p)
		}
		return errors.New(strings.Join(lines, "\n"))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %s", path, PathCause(err))
	}
	var raw rawConfig
	if p := file.decode(data, &raw); p != nil {
		return nil, fail(*p)
	}
	var c Config
	var problems []problem
	c.SUD.AppID, c.SUD.CreateOrderURL, c.SUD.QueryOrderURL, c.SUD.ASCBaseURL =
		raw.SUD.AppID, raw.SUD.CreateOrderURL, raw.SUD.QueryOrderURL, raw.SUD.ASCBaseURL
	c.MOGS.BaseURL, c.MOGS.AppID = raw.MOGS.BaseURL, raw.MOGS.AppID
	c.Midas.BaseURL, c.Midas.AppID = raw.Midas.BaseURL, raw.Midas.AppID
	reported := map[string]bool{} // secrets with a problem already said
	resolve := func(key, inline, env, file string) string {
		v, p := resolveSecret(key, inline, env, file)
		if p != nil {
			problems = append(problems, *p)
			reported[key] = true
		}
		return v
	}
	c.SUD.AppSecret = resolve("sud.app_secret", raw.SUD.AppSecret, raw.SUD.AppSecretEnv, raw.SUD.AppSecretFile)
	c.Midas.AppKey = resolve("midas.app_key", raw.Midas.AppKey, raw.Midas.AppKeyEnv, raw.Midas.AppKeyFile)
	c.DatabaseURL = resolve("database.url", raw.Database.URL, raw.Database.URLEnv, raw.Database.URLFile)
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		problems = append(problems, problem{key: "database.url", msg: "want a postgres:// URL (leave it out to keep SQLite under --data-dir)"})
	}
	c.Protect = raw.Protect
	for _, msg := range c.Protect.Problems() {
		problems = append(problems, problem{key: "protect", msg: msg})
	}
	c.Timeout = DefaultTimeout
	if raw.Timeout != "" {
		if c.Timeout, err = time.ParseDuration(raw.Timeout); err != nil || c.Timeout <= 0 {
			problems = append(problems, problem{key: "timeout", msg: fmt.Sprintf("%q is not a positive duration like 5s", raw.Timeout)})
		}
	}
	for _, p := range c.validate() {
		if !reported[p.key] {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return nil, fail(problems...)
	}
	return &c, nil
}

// PathCause is the reason in a file error, without the Go operation
// ("open", "read") in front of it.
func PathCause(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// resolveSecret finds the secret key (sud.app_secret) given inline, as
// key_env or as key_file; a problem names the key that has it.
func resolveSecret(key, inline, env, file string) (string, *problem) {
	var given []string
	for _, g := range []struct{ suffix, v string }{{"", inline}, {"_env", env}, {"_file", file}} {
		if g.v != "" {
			given = append(given, key+g.suffix)
		}
	}
	switch {
	case len(given) > 1:
		short := make([]string, len(given))
		for i, g := range given {
			_, short[i], _ = strings.Cut(g, ".")
		}
		return "", &problem{key: given[1], msg: fmt.Sprintf("give the secret one way only, not both %s", strings.Join(short, " and "))}
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", &problem{key: key + "_env", msg: fmt.Sprintf("the environment variable %s is not set", env)}
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", &problem{key: key + "_file", msg: fmt.Sprintf("%s: %s", file, PathCause(err))}
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", &problem{key: key + "_file", msg: fmt.Sprintf("%s is empty", file)}
		}
		return v, nil
	}
	return inline, nil
}

func (c *Config) validate() []problem {
	var p []problem
	needURL := func(name, v string, required bool) {
		if v == "" {
			if required {
				p = append(p, problem{key: name, msg: "required"})
			}
			return
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p = append(p, problem{key: name, msg: fmt.Sprintf("%q is not an http(s) URL", v)})
		}
	}
	if c.SUD.AppID == "" {
		p = append(p, problem{key: "sud.app_id", msg: "required"})
	}
	if c.SUD.AppSecret == "" {
		p = append(p, problem{key: "sud.app_secret", msg: "required: give app_secret, app_secret_env or app_secret_file"})
	}
	if c.SUD.CreateOrderURL == "" && c.SUD.ASCBaseURL == "" {
		p = append(p, problem{key: "sud", msg: "set create_order_url (and query_order_url), or asc_base_url for discovery"})
	}
	needURL("sud.create_order_url", c.SUD.CreateOrderURL, false)
	needURL("sud.query_order_url", c.SUD.QueryOrderURL, c.SUD.CreateOrderURL != "" && c.SUD.ASCBaseURL == "")
	needURL("sud.asc_base_url", c.SUD.ASCBaseURL, false)
	if c.MOGS.BaseURL == "" && c.Midas.BaseURL == "" {
		p = append(p, problem{key: "", msg: "configure at least one wallet: mogs.base_url or midas.base_url"})
	}
	if c.MOGS.BaseURL != "" {
		needURL("mogs.base_url", c.MOGS.BaseURL, true)
		if c.MOGS.AppID == "" {
			p = append(p, problem{key: "mogs.app_id", msg: "required with mogs.base_url"})
		}
	}
	if c.Midas.BaseURL != "" {
		needURL("midas.base_url", c.Midas.BaseURL, true)
		if c.Midas.AppID == "" {
			p = append(p, problem{key: "midas.app_id", msg: "required with midas.base_url (the offer id)"})
		}
		if c.Midas.AppKey == "" {
			p = append(p, problem{key: "midas.app_key", msg: "required with midas.base_url: give app_key, app_key_env or app_key_file"})
		}
	}
	return p
}
