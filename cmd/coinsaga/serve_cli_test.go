package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/internal/kit"
)

// busyPort is a loopback address something listens on until the test ends.
func busyPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func TestServeRefusesValuesItCannotRunWith(t *testing.T) {
	mistakesGetOneLine(t, []mistake{
		{"--concurrency -1", []string{"serve", "--sandbox", "--concurrency", "-1"}, nil, 2, "--concurrency -1: want 1 or more"},
		{"--max-attempts 0", []string{"serve", "--sandbox", "--max-attempts", "0"}, nil, 2, "--max-attempts 0: want 1 or more"},
		{"--stream-replicas 0", []string{"serve", "--sandbox", "--stream-replicas", "0"}, nil, 2, "--stream-replicas 0: want 1 or more"},
		{"--confirm-interval 0s", []string{"serve", "--sandbox", "--confirm-interval", "0s"}, nil, 2, "--confirm-interval 0s: want a positive duration"},
		{"--confirm-timeout -1s", []string{"serve", "--sandbox", "--confirm-timeout", "-1s"}, nil, 2, "--confirm-timeout -1s: want a positive duration"},
		{"--sud-execute-timeout 0", []string{"serve", "--sandbox", "--sud-execute-timeout", "0"}, nil, 2, "--sud-execute-timeout 0s: want a positive duration"},
		{"--status-max-age 0", []string{"serve", "--sandbox", "--status-max-age", "0"}, nil, 2, "--status-max-age 0s: want a positive duration"},
		{"--status-max-bytes 0", []string{"serve", "--sandbox", "--status-max-bytes", "0"}, nil, 2, "--status-max-bytes 0: want a size"},
		{"--retention -1h", []string{"serve", "--sandbox", "--retention", "-1h"}, nil, 2, "--retention -1h0m0s: want a duration like 720h, or 0"},
		{"--sud-notify-path without /", []string{"serve", "--sandbox", "--sud-notify-path", "notify"}, nil, 2, `--sud-notify-path "notify": want a path starting with "/"`},
		{"a bad value from the environment names the variable", []string{"serve", "--sandbox"}, map[string]string{"COINSAGA_CONFIRM_INTERVAL": "0s"}, 2,
			"--confirm-interval 0s (from COINSAGA_CONFIRM_INTERVAL): want a positive duration"},
		{"serve takes no arguments", []string{"serve", "now"}, nil, 2, `serve takes no arguments (got ["now"])`},
		{"sandbox with a negative balance", []string{"sandbox", "--initial-balance", "-5"}, nil, 2, "--initial-balance -5: want 0 or more"},
	})
}

func TestServeChecksItsAddressesFirst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, flag, want string
	}{
		{"the NATS port", "--nats-listen", "address already in use (another coinsaga or nats-server?); pass --nats-listen HOST:PORT or --nats-url URL"},
		{"the HTTP port", "--http-listen", "address already in use (another coinsaga?); pass --http-listen HOST:PORT"},
		{"the sandbox port", "--sandbox-listen", "address already in use (another coinsaga or coinsaga sandbox?); pass --sandbox-listen HOST:PORT, or --sandbox-url URL"},
	} {
		t.Run(tc.name+" in use fails at once, naming the flag", func(t *testing.T) {
			busy := busyPort(t)
			dataDir := t.TempDir()
			args := map[string]string{"--nats-listen": "127.0.0.1:0", "--http-listen": "127.0.0.1:0", "--sandbox-listen": "127.0.0.1:0"}
			args[tc.flag] = busy
			cmd := []string{"serve", "--sandbox", "--data-dir", dataDir}
			for k, v := range args {
				cmd = append(cmd, k, v)
			}
			start := time.Now()
			_, stderr, code := runCLI(t, context.Background(), cmd...)
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("took %s", took)
			}
			oneLine(t, stderr, code, 1, "coinsaga serve: "+tc.flag+" "+busy+": "+tc.want)
			if _, err := os.Stat(filepath.Join(dataDir, "coinsaga.db")); err == nil {
				t.Error("a store was created although serve could not start")
			}
		})
	}
}

func TestServeAndTheToolsShareCOINSAGA_NATS_URL(t *testing.T) {
	t.Run("an external URL that does not answer fails at once, saying how to get the embedded server", func(t *testing.T) {
		url := "nats://" + kit.ReserveAddr(t)
		t.Setenv("COINSAGA_NATS_URL", url)
		dataDir := t.TempDir()
		_, stderr, code := runCLI(t, context.Background(), "serve", "--sandbox", "--data-dir", dataDir,
			"--http-listen", "127.0.0.1:0", "--sandbox-listen", "127.0.0.1:0")
		oneLine(t, stderr, code, 1, "coinsaga serve: --nats-url "+url+" (from COINSAGA_NATS_URL): no NATS server answers; "+
			"start it, or unset COINSAGA_NATS_URL to run the embedded JetStream on --nats-listen")
		if _, err := os.Stat(filepath.Join(dataDir, "coinsaga.db")); err == nil {
			t.Error("a store was created although serve could not start")
		}
	})
	t.Run("on the command line the hint is to drop the flag", func(t *testing.T) {
		url := "nats://" + kit.ReserveAddr(t)
		_, stderr, code := runCLI(t, context.Background(), "serve", "--sandbox", "--nats-url", url, "--data-dir", t.TempDir(),
			"--http-listen", "127.0.0.1:0", "--sandbox-listen", "127.0.0.1:0")
		oneLine(t, stderr, code, 1, "--nats-url "+url+": no NATS server answers; start it, or drop --nats-url")
	})
	t.Run("the tools' URL naming serve's own address starts the embedded server there", func(t *testing.T) {
		addr := kit.ReserveAddr(t)
		t.Setenv("COINSAGA_NATS_URL", "nats://"+addr)
		t.Setenv("COINSAGA_NATS_LISTEN", addr)
		srv := startChild(t, "serve", "--sandbox", "--data-dir", t.TempDir(), "--log-format", "json",
			"--http-listen", "127.0.0.1:0", "--sandbox-listen", "127.0.0.1:0")
		httpAddr := srv.WaitLog(regexp.MustCompile(`"msg":"http listening","addr":"([^"]+)"`), time.Minute)[1]
		// Durations in the JSON log read as durations, not nanoseconds.
		srv.WaitLog(regexp.MustCompile(`"msg":"worker started".*"confirm_interval":"15s","confirm_timeout":"2m0s"`), time.Minute)
		if !strings.Contains(srv.Output(), `"msg":"embedded JetStream started","url":"nats://`+addr+`"`) {
			t.Errorf("the embedded server did not start at %s:\n%s", addr, srv.Output())
		}
		// A tool with the same environment reaches the worker.
		_, stderr, code := runCLI(t, context.Background(), "order", "get", "no-such-order")
		if code != 1 || !strings.Contains(stderr, "no-such-order not found") {
			t.Errorf("order get: exit %d, %q; want the worker's not found", code, stderr)
		}
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf(`go_version=%q`, runtime.Version())
		if !regexp.MustCompile(`(?m)^coinsaga_build_info\{.*` + regexp.QuoteMeta(want) + `.*\} 1$`).Match(body) {
			t.Errorf("no coinsaga_build_info{..., %s} 1 in /metrics", want)
		}
		srv.Stop(time.Minute)
	})
	t.Run("a NATS already answering at serve's own address is used", func(t *testing.T) {
		ns := embednats.StartTest(t)
		addr := strings.TrimPrefix(ns.ClientURL(), "nats://")
		f := serveFlags{natsListen: addr}
		f.nats.url = ns.ClientURL()
		if f.embeddedNATS(slog.New(slog.DiscardHandler)) {
			t.Error("serve would start its own server where one already answers")
		}
	})
}

func TestWhichURLNamesServesOwnAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, listen string
		want        bool
	}{
		{"nats://127.0.0.1:4222", "127.0.0.1:4222", true},
		{"nats://localhost:4222", "127.0.0.1:4222", true},
		{"127.0.0.1:4222", "127.0.0.1:4222", true},
		{"nats://127.0.0.1", "127.0.0.1:4222", true},
		{"nats://[::1]:4222", "127.0.0.1:4222", true},
		{"nats://127.0.0.1:4222", "0.0.0.0:4222", true},
		{"nats://127.0.0.1:4222", ":4222", true},
		{"nats://127.0.0.1:4223", "127.0.0.1:4222", false},
		{"nats://nats.internal:4222", "127.0.0.1:4222", false},
		{"nats://nats.internal:4222", "0.0.0.0:4222", false},
		{"nats://127.0.0.1:4222,nats://127.0.0.1:4223", "127.0.0.1:4222", false},
		{"tls://127.0.0.1:4222", "127.0.0.1:4222", false},
		{"nats://127.0.0.1:4222", "127.0.0.1:0", false},
	}
	for _, tc := range tests {
		if got := namesAddress(tc.url, tc.listen); got != tc.want {
			t.Errorf("namesAddress(%q, %q) = %v, want %v", tc.url, tc.listen, got, tc.want)
		}
	}
}

func TestServeHelpTellsWhatAnUnsetNATSURLMeans(t *testing.T) {
	t.Parallel()
	_, stderr, code := runCLI(t, context.Background(), "serve", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	i := strings.Index(stderr, "  --nats-url")
	if i < 0 {
		t.Fatalf("no --nats-url in:\n%s", stderr)
	}
	entry, _, _ := strings.Cut(stderr[i+2:], "\n  --")
	if strings.Contains(entry, "(default ") {
		t.Errorf("--nats-url shows a default although unset means embedded:\n%s", entry)
	}
	if !strings.Contains(entry, "unset: serve runs an embedded JetStream on --nats-listen") {
		t.Errorf("--nats-url does not say what unset means:\n%s", entry)
	}
	_, stderr, _ = runCLI(t, context.Background(), "order", "get", "--help")
	if !strings.Contains(stderr, `--nats-url string`) || !strings.Contains(stderr, `(default "nats://127.0.0.1:4222")`) {
		t.Errorf("the tools' --nats-url lost its default:\n%s", stderr)
	}
}

func TestLogsWriteDurationsAsText(t *testing.T) {
	t.Parallel()
	for format, want := range map[string]string{"json": `"took":"1.5s"`, "text": `took=1.5s`} {
		var b bytes.Buffer
		log, err := newLogger(&b, format, "info")
		if err != nil {
			t.Fatal(err)
		}
		log.Info("step", "took", 1500*time.Millisecond, slog.Group("g", "wait", 2*time.Minute))
		if !strings.Contains(b.String(), want) {
			t.Errorf("%s: %s; want %s", format, b.String(), want)
		}
		if format == "json" && !strings.Contains(b.String(), `"wait":"2m0s"`) {
			t.Errorf("json: a duration in a group: %s", b.String())
		}
	}
}
