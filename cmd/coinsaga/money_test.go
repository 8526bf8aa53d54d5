package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
)

var sandboxStarted = regexp.MustCompile(`msg="sandbox providers started" url=(\S+)`)

// TestServeSandboxWiresSUDsNotificationsToTheWorker runs `serve --sandbox`
// with SUD failing every action after a while: the order must end
// compensated with sud_execute_failed, and SUD's notification must have
// reached the worker through the HTTP listener that serve points the
// sandbox at.
func TestServeSandboxWiresSUDsNotificationsToTheWorker(t *testing.T) {
	t.Parallel()
	natsAddr := kit.ReserveAddr(t)
	srv := startChild(t, "serve", "--sandbox", "--sandbox-listen", "127.0.0.1:0", "--nats-listen", natsAddr,
		"--http-listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--confirm-interval", "20s")
	sandboxURL := srv.WaitLog(sandboxStarted, time.Minute)[1]
	httpAddr := srv.WaitLog(httpListening, time.Minute)[1]
	srv.WaitLog(workerStarted, time.Minute)

	fault := []byte(`{"endpoint":"sud.create_order","execute_fail_rate":1,"execute_delay_ms":300}`)
	resp, err := http.Post(sandboxURL+"/_sandbox/faults", "application/json", bytes.NewReader(fault))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("setting the fault: %s", resp.Status)
	}

	jet := kit.Connect(t, "nats://"+natsAddr)
	in := testIntent("notified-fail", "mogs", 25)
	data, _ := json.Marshal(in)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := events.PublishIntent(ctx, jet.JS, jet.Subjects, data, events.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	// The verdict polls every 5 s at most; the notification after 300 ms
	// must bring the decision well before the first of them.
	started := time.Now()
	jet.WaitTerminal(t, time.Minute, in.OutOrderID)
	took := time.Since(started)

	out, _, code := runCLI(t, ctx, "order", "get", "--nats-url", "nats://"+natsAddr, in.OutOrderID)
	if code != 0 || !strings.Contains(out, "compensated") || !strings.Contains(out, "sud_execute_failed") {
		t.Fatalf("order get (exit %d):\n%s", code, out)
	}
	m := scrape(t, "http://"+httpAddr+"/metrics")
	if n, _ := m.sum("coinsaga_sud_notifications_total", `status="EXECUTE_FAIL"`); n < 1 {
		t.Errorf("no EXECUTE_FAIL notification reached the worker (order took %s)", took)
	}
	t.Logf("compensated %s after the publish", took)
	srv.Stop(30 * time.Second)
}
