package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/kit"
)

// The test binary doubles as the coinsaga binary (kit.RunAsChild): in a
// process kit.StartProcess started it runs main's command line instead of
// the tests, so child-process tests exercise exactly what `coinsaga`
// does, race detector included, with no second build.
func TestMain(m *testing.M) {
	kit.RunAsChild(func(args []string) int { return run(args, os.Stdout, os.Stderr) })
	os.Exit(m.Run())
}

// child is a coinsaga process started by a test: a kit.Process, which
// also answers to the short names tests written before the kit use.
type child struct{ *kit.Process }

// startChild runs `coinsaga args...` as a separate process.
func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	return &child{kit.StartProcess(t, args...)}
}

func (c *child) waitLog(re *regexp.Regexp, timeout time.Duration) []string {
	return c.WaitLog(re, timeout)
}
func (c *child) output() string             { return c.Output() }
func (c *child) kill()                      { c.Kill() }
func (c *child) stop(timeout time.Duration) { c.Stop(timeout) }

// runCLI runs a coinsaga command in-process and returns its output.
func runCLI(t *testing.T, ctx context.Context, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runWith(ctx, args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	for name := range program.Commands {
		t.Run(name+" --help prints its flags and exits 0", func(t *testing.T) {
			args := []string{name, "--help"}
			stdout, stderr, code := runCLI(t, context.Background(), args...)
			if code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stdout+stderr, "Usage: coinsaga "+name) {
				t.Errorf("no usage line in:\n%s%s", stdout, stderr)
			}
		})
	}
	t.Run("an unknown command exits 2 with the list of commands", func(t *testing.T) {
		_, stderr, code := runCLI(t, context.Background(), "frobnicate")
		if code != 2 || !strings.Contains(stderr, "serve") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

func TestFlagsComeFromTheEnvironment(t *testing.T) {
	t.Setenv("COINSAGA_CONCURRENCY", "not-a-number")
	_, stderr, code := runCLI(t, context.Background(), "serve", "--sandbox")
	if code == 0 || !strings.Contains(stderr, "COINSAGA_CONCURRENCY") {
		t.Errorf("exit %d, stderr %q: a bad environment value must be named", code, stderr)
	}
}

var _ = fmt.Sprintf

func TestConfigFile(t *testing.T) {
	t.Run("the example config loads when its secrets are in the environment", func(t *testing.T) {
		t.Setenv("SUD_APP_SECRET", "s")
		t.Setenv("MIDAS_APP_KEY", "k")
		c, err := loadConfig("../../docs/example-config.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if c.Midas.AppKey != "k" || c.SUD.AppSecret != "s" || c.MOGS.AppID != "10000" {
			t.Errorf("config %+v", c)
		}
	})
	t.Run("every problem is reported on its own line", func(t *testing.T) {
		path := t.TempDir() + "/bad.yaml"
		os.WriteFile(path, []byte("sud:\n  app_id: a\n  app_secret: s\n  app_secret_env: X\nmidas:\n  base_url: ftp://x\ntimeout: soon\n"), 0o600)
		_, err := loadConfig(path)
		if err == nil {
			t.Fatal("a broken config loaded")
		}
		for _, want := range []string{"sud.app_secret_env: give the secret one way only", "timeout:", "midas.base_url:", "midas.app_id: required", "sud: set create_order_url"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not mention %q:\n%v", want, err)
			}
		}
	})
	t.Run("an unknown key is an error", func(t *testing.T) {
		path := t.TempDir() + "/typo.yaml"
		os.WriteFile(path, []byte("mogs:\n  baseurl: x\n"), 0o600)
		if _, err := loadConfig(path); err == nil || !strings.Contains(err.Error(), "baseurl") {
			t.Errorf("err = %v, want it to name the unknown key", err)
		}
	})
}
