package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the coinsaga binary: with COINSAGA_TEST_MAIN
// set it runs main's command line instead of the tests, so child-process
// tests exercise exactly what `coinsaga` does, race detector included.
func TestMain(m *testing.M) {
	if os.Getenv("COINSAGA_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// child is a coinsaga process started by a test.
type child struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	all    []string      // every stderr line so far
	read   int           // lines waitLog has looked at
	more   chan struct{} // a line arrived (coalesced)
	exited chan struct{}
	err    error
}

// startChild runs `coinsaga args...` as a separate process.
func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	c := &child{t: t, more: make(chan struct{}, 1), exited: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], args...)
	c.cmd.Env = append(os.Environ(), "COINSAGA_TEST_MAIN=1")
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout = io.Discard
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.stderr.WriteString(line + "\n")
			c.all = append(c.all, line) // kept whole: a chatty child must not push a line out before it is waited for
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
		}
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

// waitLog waits for a log line matching re and returns its submatches.
func (c *child) waitLog(re *regexp.Regexp, timeout time.Duration) []string {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		for c.read < len(c.all) {
			line := c.all[c.read]
			c.read++
			if m := re.FindStringSubmatch(line); m != nil {
				c.mu.Unlock()
				return m
			}
		}
		c.mu.Unlock()
		select {
		case <-c.more:
		case <-c.exited:
			c.mu.Lock()
			unread := c.read < len(c.all)
			c.mu.Unlock()
			if unread {
				continue // the last lines came with the exit
			}
			c.t.Fatalf("coinsaga exited (%v) before logging %s; stderr:\n%s", c.err, re, c.output())
		case <-deadline:
			c.t.Fatalf("no log line matching %s within %s; stderr:\n%s", re, timeout, c.output())
		}
	}
}

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// kill ends the process at once, as a crash would.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// stop asks for a graceful shutdown and checks it exits 0.
func (c *child) stop(timeout time.Duration) {
	c.t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		if c.err != nil {
			c.t.Errorf("coinsaga did not exit cleanly on SIGTERM: %v\n%s", c.err, c.output())
		}
	case <-time.After(timeout):
		c.t.Fatalf("coinsaga did not stop within %s of SIGTERM", timeout)
	}
}

// runCLI runs a coinsaga command in-process and returns its output.
func runCLI(t *testing.T, ctx context.Context, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runWith(ctx, args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

func TestEveryCommandHasHelp(t *testing.T) {
	for name := range commands {
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
