package main

import (
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestServeMountsTheConsoleBesideItsMetrics(t *testing.T) {
	t.Parallel()
	srv := startChild(t, "serve", "--sandbox", "--data-dir", t.TempDir(), "--log-format", "json",
		"--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--sandbox-listen", "127.0.0.1:0",
		"--console-token", "ops:not-in-any-log")
	// The console is built before the listener serves, so its line comes first.
	srv.waitLog(regexp.MustCompile(`"msg":"console at /".*"tokens":\["ops"\].*"replay_and_purge":true`), time.Minute)
	addr := srv.waitLog(regexp.MustCompile(`"msg":"http listening","addr":"([^"]+)"`), time.Minute)[1]
	for _, tc := range []struct{ path, want string }{
		{"/", "Orders by state"},
		{"/dlq", `href="/login"`}, // a token exists: log in to replay
		{"/metrics", "coinsaga_orders"},
		{"/healthz", "ok"},
	} {
		resp, err := http.Get("http://" + addr + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tc.want) {
			t.Errorf("GET %s = %d, want 200 with %q:\n%.1500s", tc.path, resp.StatusCode, tc.want, body)
		}
	}
	if strings.Contains(srv.output(), "not-in-any-log") {
		t.Error("the console token's secret is in the log")
	}
}

func TestServeRefusesAConsoleBeyondLoopbackWithoutAToken(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	_, stderr, code := runCLI(t, context.Background(), "serve", "--sandbox", "--data-dir", dataDir,
		"--nats-listen", "127.0.0.1:0", "--http-listen", "0.0.0.0:0", "--sandbox-listen", "127.0.0.1:0")
	oneLine(t, stderr, code, 1, "coinsaga serve: --http-listen 0.0.0.0:0 reaches beyond loopback and the console has no token: give --console-token NAME:SECRET")
	if _, err := os.Stat(filepath.Join(dataDir, "coinsaga.db")); err == nil {
		t.Error("a store was created although serve could not start")
	}
}

func TestTheImagesCommandPassesTheConsoleCheck(t *testing.T) {
	t.Parallel()
	stages := dockerStages(parseDockerfile(t, readRepoFile(t, "Dockerfile")))
	cmds := find(stages[len(stages)-1], "CMD")
	if len(cmds) != 1 {
		t.Fatalf("%d CMD lines", len(cmds))
	}
	args := execForm(t, cmds[0])
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatal(err)
	}
	// The image listens on 0.0.0.0 and carries no secret, so its console
	// must be off (or given a token), or the container would not start.
	if err := f.console.Check(f.httpListen); err != nil {
		t.Fatalf("CMD %v: %v", args, err)
	}
}
