// Package docs_test runs what docs/contract.md tells a team that does not
// write Go to do, against a real worker: its nats CLI lines, and the
// schemas of docs/schema on everything the worker publishes.
package docs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/internal/schematest"
	"github.com/coinsaga/coinsaga/worker"
)

// repoRoot is where the contract's shell lines run ("$(cat docs/...)").
const repoRoot = ".."

// startWorker runs one worker in this process on ns, with the sandbox's
// SUD, MOGS and Midas over loopback HTTP and SQLite in a temp dir, as
// `coinsaga serve --sandbox` does, and returns a connection to ns.
func startWorker(t *testing.T, ns *embednats.Server) *kit.JetStream {
	t.Helper()
	jet := kit.ConnectJetStream(t, ns)
	sb := kit.StartSandbox(t, 1)
	kit.StartWorker(t, worker.Config{
		Conn: jet.Conn, Store: kit.OpenStore(t), SUD: sb.SUD(t, nil), Wallets: sb.Wallets(nil),
		ConfirmInterval: 50 * time.Millisecond, ConfirmTimeout: 2 * time.Second,
	})
	return jet
}

// streamMsgs reads n messages of a stream from its start, waiting up to
// timeout for them to arrive.
func streamMsgs(t *testing.T, js jetstream.JetStream, stream string, n int, timeout time.Duration) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("%s: %v", stream, err)
	}
	var out []jetstream.Msg
	for len(out) < n {
		m, err := cons.Next(jetstream.FetchMaxWait(time.Until(deadlineOf(ctx))))
		if err != nil {
			t.Fatalf("%s: got %d of %d messages: %v", stream, len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// exampleIntent is docs/example-intent.json with edits.
func exampleIntent(t *testing.T, edit func(m map[string]any)) []byte {
	t.Helper()
	data, err := os.ReadFile("example-intent.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWorkerOutputValidates drives a real worker through a completed, a
// declined, a rejected, an invalid and a conflicting intent and checks
// every status event and dead letter it publishes against the schemas.
func TestWorkerOutputValidates(t *testing.T) {
	statusSchema := schematest.Load(t, "schema", "status-event.json")
	letterSchema := schematest.Load(t, "schema", "dead-letter-headers.json")
	jet := startWorker(t, embednats.StartTest(t))
	js, subjects := jet.JS, jet.Subjects
	publish := func(subject, msgID string, data []byte) {
		t.Helper()
		jet.Publish(t, subject, data, msgID)
	}
	const mg, room = "1468180338417074177", "9009"
	intents := subjects.Intent(mg, room)
	publish(intents, "w-completed", exampleIntent(t, func(m map[string]any) { m["out_order_id"] = "w-completed" }))
	publish(intents, "w-declined", exampleIntent(t, func(m map[string]any) {
		m["out_order_id"] = "w-declined"
		m["payment"].(map[string]any)["amount"] = 2000000 // above the sandbox's starting balance
	}))
	rejected := exampleIntent(t, func(m map[string]any) {
		m["out_order_id"] = "w-rejected"
		m["payment"].(map[string]any)["provider"] = "paypal"
	})
	publish(intents, "w-rejected", rejected)
	publish(intents, "", []byte(`{"not":"an intent"}`))

	// completed 4 events, declined 2 (accepted, failed), rejected 1.
	want := map[string][]events.State{
		"w-completed": {events.StateAccepted, events.StateOrdered, events.StateDebited, events.StateCompleted},
		"w-declined":  {events.StateAccepted, events.StateFailed},
		"w-rejected":  {events.StateRejected},
	}
	got := map[string][]events.State{}
	for _, m := range streamMsgs(t, js, "COINSAGA_STATUS", 7, 30*time.Second) {
		if err := schematest.Validate(statusSchema, m.Data()); err != nil {
			t.Errorf("status event on %s: %v\n%s", m.Subject(), err, m.Data())
		}
		var ev events.StatusEvent
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Seq != len(got[ev.OutOrderID])+1 {
			t.Errorf("%s: seq %d after %d events", ev.OutOrderID, ev.Seq, len(got[ev.OutOrderID]))
		}
		got[ev.OutOrderID] = append(got[ev.OutOrderID], ev.State)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("states %v, want %v", got, want)
	}

	// A different body under the rejected order's id: a conflict.
	publish(intents, "w-rejected-again", bytes.Replace(rejected, []byte("paypal"), []byte("venmo"), 1))
	reasons := map[string]bool{}
	for _, m := range streamMsgs(t, js, "COINSAGA_DLQ", 3, 30*time.Second) {
		if err := schematest.Validate(letterSchema, schematest.HeaderObject(t, m.Headers())); err != nil {
			t.Errorf("dead letter on %s: %v\n%v", m.Subject(), err, m.Headers())
		}
		reasons[m.Headers().Get(events.HeaderReason)] = true
	}
	if len(reasons) != 3 || !reasons["rejected"] || !reasons["invalid"] || !reasons["conflict"] {
		t.Errorf("dead-letter reasons %v, want rejected, invalid and conflict", reasons)
	}
}

// contractNatsBlock returns the ```sh block of the contract's section 1
// that publishes an intent with the nats CLI.
func contractNatsBlock(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("contract.md")
	if err != nil {
		t.Fatal(err)
	}
	var block strings.Builder
	in, section := false, ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			section = line
		case !in && line == "```sh" && strings.HasPrefix(section, "## 1."):
			in = true
			block.Reset()
		case in && line == "```":
			if strings.Contains(block.String(), "nats pub") {
				return block.String()
			}
			in = false
		case in:
			block.WriteString(line + "\n")
		}
	}
	t.Fatal("contract.md section 1 has no ```sh block with nats pub")
	return ""
}
