package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
)

// TestWorkedExample is the README's worked example: `serve --sandbox`, then
// `publish` of docs/example-intent.json, seen by `watch --json` as four
// events with seq 1 to 4.
func TestWorkedExample(t *testing.T) {
	t.Parallel()
	natsAddr := kit.ReserveAddr(t)
	srv := startChild(t, "serve", "--sandbox", "--sandbox-listen", "127.0.0.1:0", "--nats-listen", natsAddr,
		"--http-listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--confirm-interval", "100ms")
	srv.WaitLog(regexp.MustCompile(`worker started`), 60*time.Second)
	natsURL := "nats://" + natsAddr

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	watchDone := make(chan int, 1)
	go func() {
		code := runWith(ctx, []string{"watch", "--json", "--nats-url", natsURL, "--order", "1659497694000"}, pw, io.Discard)
		pw.Close()
		watchDone <- code
	}()
	// The watcher must be subscribed before anything is published: wait
	// for its consumer on the status stream (the worker has none there).
	waitWatcher(t, ctx, natsURL, events.Subjects{}.StatusStream())

	intent, err := os.ReadFile("../../docs/example-intent.json")
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, ctx, "publish", "--nats-url", natsURL, strings.TrimSpace(string(intent)))
	if code != 0 || !strings.Contains(stdout, "published 1659497694000") {
		t.Fatalf("publish exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	t.Logf("$ coinsaga publish ...\n%s", stdout)

	sc := bufio.NewScanner(pr)
	var got []string
	for len(got) < 4 && sc.Scan() {
		var ev events.StatusEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("watch --json printed %q: %v", sc.Text(), err)
		}
		if ev.Seq != len(got)+1 {
			t.Errorf("event %d has seq %d", len(got)+1, ev.Seq)
		}
		got = append(got, string(ev.State))
		t.Logf("%s", sc.Text())
	}
	if want := "accepted ordered debited completed"; strings.Join(got, " ") != want {
		t.Errorf("states %q, want %q", strings.Join(got, " "), want)
	}
	cancel()
	<-watchDone
	srv.Stop(30 * time.Second)
}

// waitWatcher waits until the stream has a consumer: a watch is following it.
func waitWatcher(t *testing.T, ctx context.Context, natsURL, stream string) {
	t.Helper()
	jet := kit.Connect(t, natsURL)
	kit.Eventually(t, 30*time.Second, "a watcher consumer on "+stream, func() bool {
		st, err := jet.JS.Stream(ctx, stream)
		return err == nil && st.CachedInfo().State.Consumers > 0
	})
}
