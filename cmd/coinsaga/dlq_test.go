package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/deadletter"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// opsEnv is what an operator faces: JetStream and the sandbox live in the
// test (as a NATS cluster and the real providers would), the worker is a
// separate `coinsaga serve` process, and CLI commands run in-process.
type opsEnv struct {
	t          *testing.T
	natsURL    string
	nc         *nats.Conn
	js         jetstream.JetStream
	subjects   events.Subjects
	jet        *kit.JetStream
	sb         *kit.Sandbox
	sandbox    *sandbox.Sandbox
	sandboxURL string
	status     *kit.Status // every status event and dead letter as published
	worker     *child
	args       []string // the worker's command line
}

// startOpsEnv starts everything and waits for the worker to take work.
// serveArgs are added to (and may override) the serve flags the brief of
// these tests asks for.
func startOpsEnv(t *testing.T, serveArgs ...string) *opsEnv {
	t.Helper()
	jet := kit.StartJetStream(t)
	sb := kit.StartSandbox(t, 7)
	e := &opsEnv{t: t, natsURL: jet.URL, nc: jet.Conn, js: jet.JS, jet: jet, sb: sb, sandbox: sb.Sandbox, sandboxURL: sb.URL}
	// Tests wait on events rather than poll; a failed wait shows the
	// worker's last words.
	e.status = kit.WatchStatus(t, jet.Conn, e.subjects).WatchDeadLetters(t, jet.Conn, e.subjects)
	e.status.Diagnose = func() string { return "worker log tail:\n" + e.worker.Tail(30) }
	e.args = append([]string{"serve", "--nats-url", e.natsURL, "--sandbox-url", sb.URL, "--data-dir", t.TempDir(),
		"--http-listen", "127.0.0.1:0", "--max-attempts", "3", "--confirm-interval", "50ms", "--confirm-timeout", "2s"},
		serveArgs...)
	e.worker = startChild(t, e.args...)
	e.worker.WaitLog(workerStarted, 60*time.Second)
	return e
}

// restartWorker stops the worker gracefully and starts it again on the
// same data dir, with extra flags after the ones it had.
func (e *opsEnv) restartWorker(extra ...string) {
	e.t.Helper()
	e.worker.Stop(30 * time.Second)
	e.worker = startChild(e.t, append(slices.Clone(e.args), extra...)...)
	e.worker.WaitLog(workerStarted, 60*time.Second)
}

// waitFor waits until cond holds, re-checking whenever an event or a dead
// letter arrives (and now and then, for conditions on other things).
func (e *opsEnv) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	e.status.Wait(e.t, timeout, what, cond)
}

// last returns an order's highest-seq status event.
func (e *opsEnv) last(id string) events.StatusEvent {
	ev, _ := e.status.Last(id)
	return ev
}

// waitStates waits until every order's latest event is in one of states.
func (e *opsEnv) waitStates(ids []string, timeout time.Duration, states ...events.State) {
	e.t.Helper()
	e.status.WaitLatest(e.t, ids, timeout, states...)
}

// waitStored waits until the dead-letter stream holds at least n
// messages. A core subscriber can hear of a dead letter a moment before
// the stream has stored it, so tests that read the stream wait on it.
func (e *opsEnv) waitStored(what string, n uint64, timeout time.Duration) {
	e.t.Helper()
	e.waitFor(what, timeout, func() bool {
		msgs, _ := e.streamMsgs(e.subjects.DLQStream())
		return msgs >= n
	})
}

// publish sends intents the way a game server does.
func (e *opsEnv) publish(ins ...events.Intent) {
	e.t.Helper()
	e.jet.PublishIntent(e.t, ins...)
}

// stored returns every dead letter in the stream, oldest first.
func (e *opsEnv) stored() []events.DeadLetter {
	e.t.Helper()
	return e.jet.DeadLetters(e.t)
}

// streamMsgs returns how many messages a stream holds, and its last seq.
func (e *opsEnv) streamMsgs(name string) (uint64, uint64) {
	e.t.Helper()
	return e.jet.StreamState(e.t, name)
}

// pays returns each player's uncancelled pay bills.
func (e *opsEnv) pays() map[string][]sandbox.Bill { return e.sb.Pays() }

// cli runs a two-word coinsaga command ("dlq list", "order get") against
// this env's NATS. The URL goes right after the command words, as flags
// end at the first argument.
func (e *opsEnv) cli(args ...string) (string, string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append(slices.Clone(args[:2]), "--nats-url", e.natsURL)
	return runCLI(e.t, ctx, append(full, args[2:]...)...)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestReplayAfterAnOutageChargesEachOrderOnce is the acceptance test of
// issue 4: pay endpoints answer busy until orders land in the DLQ as
// failed; once the outage is over, `dlq replay` completes every one with
// one debit each, and replaying them again charges nothing.
func TestReplayAfterAnOutageChargesEachOrderOnce(t *testing.T) {
	t.Parallel()
	// An outage that outlasts --outage-hold: past the hold, a circuit's
	// refusals spend the retry budget and the orders are dead-lettered, as
	// every outage did before the breakers (an outage within the hold makes
	// no dead letters: worker's TestAnOutageThatEndsMakesNoDeadLetters).
	e := startOpsEnv(t, "--outage-hold", "1ms")
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.pay", BusyRate: 1})
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "midas.pay_m", BusyRate: 1})

	const n = 20
	var ids []string
	amounts := map[string]int64{} // by openid
	for i := 0; i < n; i++ {
		in := testIntent(fmt.Sprintf("outage-%d", i), []string{"mogs", "midas"}[i%2], int64(10+i))
		e.publish(in)
		ids = append(ids, in.OutOrderID)
		amounts[in.Payment.OpenID] = in.Payment.Amount
	}
	e.waitStored("every order is dead-lettered", n, 60*time.Second)
	e.waitStates(ids, 10*time.Second, events.StateFailed)
	stored := e.stored()
	if len(stored) != n {
		t.Fatalf("%d dead letters stored, want %d", len(stored), n)
	}
	for _, d := range stored {
		if d.Reason != events.ReasonFailed || d.State != "failed" {
			t.Errorf("dead letter %d for %s: reason %q state %q, want failed/failed", d.StreamSeq, d.OutOrderID, d.Reason, d.State)
		}
	}
	if p := e.pays(); len(p) != 0 {
		t.Fatalf("a busy pay charged someone: %v", p)
	}
	e.sandbox.ClearFaults()
	// The worker's circuits stay open until a probe succeeds, and past the
	// hold their refusals fail a replay before that probe is due (the
	// operator replays once coinsaga_provider_circuit_open is 0 again); a
	// restart starts with closed circuits and the usual hold.
	e.restartWorker("--outage-hold", "30m")

	t.Run("list shows each dead letter as a table row and as JSON", func(t *testing.T) {
		out, errOut, code := e.cli("dlq", "list", "--reason", "failed")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != n+1 || !regexp.MustCompile(`^SEQ\s+AGE\s+REASON\s+STATE\s+ORDER\s+ERROR$`).MatchString(lines[0]) {
			t.Fatalf("want a header and %d rows:\n%s", n, out)
		}
		for _, id := range ids {
			if !regexp.MustCompile(`(?m)^\d+\s+\d+[smhd]\S*\s+failed\s+failed\s+` + id + `\s+\S`).MatchString(out) {
				t.Errorf("no row for %s:\n%s", id, out)
			}
		}
		out, _, code = e.cli("dlq", "list", "--json", "--reason", "failed,needs_attention", "--limit", "5")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		lines = strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 5 {
			t.Fatalf("--limit 5 printed %d lines", len(lines))
		}
		for i, line := range lines {
			var entry deadletter.Entry
			if err := json.Unmarshal([]byte(line), &entry); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			if entry.Seq != stored[i].StreamSeq || entry.OutOrderID != stored[i].OutOrderID || entry.Reason != "failed" ||
				entry.FailedAt == nil || entry.Attempts < 1 || !strings.HasPrefix(entry.OriginalSubject, "coinsaga.intents.") {
				t.Errorf("entry %d: %+v", i, entry)
			}
		}
		if strings.Contains(out, "js-") || strings.Contains(out, "ok-") {
			t.Errorf("list --json leaks a login secret:\n%s", out)
		}
		out, _, _ = e.cli("dlq", "list", "--reason", "rejected")
		if strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("no rejected dead letters, yet:\n%s", out)
		}
	})

	t.Run("show masks the player's secrets unless asked for the raw body", func(t *testing.T) {
		for _, d := range stored[:2] { // one MOGS, one Midas
			seq := strconv.FormatUint(d.StreamSeq, 10)
			out, errOut, code := e.cli("dlq", "show", seq)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, want := range []string{"Coinsaga-Reason: failed", "Coinsaga-State: failed", "Coinsaga-Original-Subject: coinsaga.intents.", `"***"`, d.OutOrderID} {
				if !strings.Contains(out, want) {
					t.Errorf("show %s lacks %q:\n%s", seq, want, out)
				}
			}
			if strings.Contains(out, "js-"+d.OutOrderID) || strings.Contains(out, "ok-"+d.OutOrderID) || strings.Contains(out, `"pfk"`) {
				t.Errorf("show %s prints a secret:\n%s", seq, out)
			}
			raw, _, code := e.cli("dlq", "show", "--raw", seq)
			if code != 0 || raw != string(d.Data) {
				t.Errorf("show --raw %s = %q (exit %d), want the exact body %q", seq, raw, code, d.Data)
			}
		}
		if _, errOut, code := e.cli("dlq", "show", "999999"); code == 0 || !strings.Contains(errOut, "not found") {
			t.Errorf("show of a missing seq: exit %d, %q", code, errOut)
		}
	})

	t.Run("a dry run changes nothing", func(t *testing.T) {
		dlqBefore, _ := e.streamMsgs(e.subjects.DLQStream())
		_, intentsBefore := e.streamMsgs(e.subjects.IntentsStream())
		out, errOut, code := e.cli("dlq", "replay", "--reason", "failed", "--dry-run")
		if code != 0 {
			t.Fatalf("exit %d: %s\n%s", code, errOut, out)
		}
		if got := strings.Count(out, "would replay to coinsaga.intents."); got != n {
			t.Errorf("%d would-replay lines, want %d:\n%s", got, n, out)
		}
		if !strings.Contains(out, "dry run, nothing changed: would have replayed 20, already completed 0, failed 0") {
			t.Errorf("no dry-run summary:\n%s", out)
		}
		dlqAfter, _ := e.streamMsgs(e.subjects.DLQStream())
		_, intentsAfter := e.streamMsgs(e.subjects.IntentsStream())
		if dlqAfter != dlqBefore || intentsAfter != intentsBefore {
			t.Errorf("dry run changed the streams: DLQ %d -> %d messages, intents last seq %d -> %d",
				dlqBefore, dlqAfter, intentsBefore, intentsAfter)
		}
		if len(e.sandbox.Bills()) != 0 {
			t.Errorf("dry run made bills: %+v", e.sandbox.Bills())
		}
	})

	t.Run("replay brings every order to completed with exactly one debit", func(t *testing.T) {
		out, errOut, code := e.cli("dlq", "replay", "--reason", "failed")
		if code != 0 {
			t.Fatalf("exit %d: %s\n%s", code, errOut, out)
		}
		if !strings.Contains(out, "replayed 20, already completed 0, failed 0") {
			t.Errorf("summary missing:\n%s", out)
		}
		if !regexp.MustCompile(`replay \[=+\] 20/20 .* in `).MatchString(errOut) {
			t.Errorf("no final progress line on stderr:\n%s", errOut)
		}
		if msgs, _ := e.streamMsgs(e.subjects.DLQStream()); msgs != 0 {
			t.Errorf("%d dead letters left after the replay", msgs)
		}
		e.waitStates(ids, 60*time.Second, events.StateCompleted)
		pays := e.pays()
		for openid, amt := range amounts {
			if bs := pays[openid]; len(bs) != 1 || bs[0].Amt != amt {
				t.Errorf("player %s: uncancelled pays %+v, want one of %d", openid, bs, amt)
			}
		}
		// The replayed order went on from where it stopped: same seq numbering.
		ev := e.last(ids[0])
		if ev.Seq < 5 {
			t.Errorf("order %s ended at seq %d; a replay must continue the numbering", ids[0], ev.Seq)
		}
	})

	t.Run("replaying the same dead letters again charges nothing", func(t *testing.T) {
		billsBefore := len(e.sandbox.Bills())
		seqBefore := map[string]int{}
		for _, id := range ids {
			seqBefore[id] = e.last(id).Seq
		}
		// First behind the CLI's back: the saved bodies go straight to the
		// intents stream with the replay header, as an operator with the
		// stock nats tool might do. The worker alone must refuse to charge.
		for _, d := range stored {
			m := nats.NewMsg(d.OriginalSubject)
			m.Data = d.Data
			m.Header.Set(events.HeaderMsgID, d.OutOrderID+":replay-again")
			m.Header.Set(events.HeaderReplay, strconv.FormatUint(d.StreamSeq, 10))
			if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
		e.waitFor("the worker consumed the repeated replays", 30*time.Second, func() bool {
			msgs, _ := e.streamMsgs(e.subjects.IntentsStream()) // work queue: acked means gone
			return msgs == 0 && strings.Count(e.worker.Output(), "already done, nothing charged") >= n
		})
		// Then through the CLI: the dead letters put back as they were.
		for _, d := range stored {
			m := nats.NewMsg(d.Subject)
			m.Data = d.Data
			m.Header = events.DeadLetterHeaders(d)
			if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
		out, errOut, code := e.cli("dlq", "replay", "--reason", "failed")
		if code != 0 {
			t.Fatalf("exit %d: %s\n%s", code, errOut, out)
		}
		if !strings.Contains(out, "replayed 0, already completed 20, failed 0") ||
			strings.Count(out, "already completed: nothing will be charged") != n {
			t.Errorf("want 20 orders reported as already completed:\n%s", out)
		}
		if msgs, _ := e.streamMsgs(e.subjects.DLQStream()); msgs != 0 {
			t.Errorf("%d dead letters of completed orders left in place", msgs)
		}
		if got := len(e.sandbox.Bills()); got != billsBefore {
			t.Errorf("bills %d -> %d: a replay of completed orders charged", billsBefore, got)
		}
		for _, id := range ids {
			if ev := e.last(id); ev.State != events.StateCompleted || ev.Seq != seqBefore[id] {
				t.Errorf("order %s moved to %s seq %d (was completed seq %d)", id, ev.State, ev.Seq, seqBefore[id])
			}
		}
	})

	t.Run("purge removes only what its filters select", func(t *testing.T) {
		testPurge(t, e)
	})
}

// testPurge fills the DLQ with dead letters of two games, two reasons,
// two ages and one undecodable intent, then purges them a slice at a time.
func testPurge(t *testing.T, e *opsEnv) {
	const gameA, gameB = "1468180338417074177", "1472142747708284929"
	now := time.Now()
	put := func(mg, id string, reason events.Reason, failedAt time.Time) uint64 {
		t.Helper()
		d := events.DeadLetter{Reason: reason, Error: "test: " + string(reason), State: string(reason), Attempts: 3,
			FailedAt: failedAt, OriginalSubject: e.subjects.Intent(mg, "9009")}
		if reason == events.ReasonFailed {
			d.State = "failed"
		}
		m := nats.NewMsg(e.subjects.DeadLetter(mg, "9009", id))
		m.Header = events.DeadLetterHeaders(d)
		m.Data = []byte(`{"out_order_id":"` + id + `"}`)
		ack, err := e.js.PublishMsg(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	a1 := put(gameA, "purge-a1", events.ReasonNeedsAttention, now)
	put(gameA, "purge-a2", events.ReasonNeedsAttention, now)
	put(gameB, "purge-b-old1", events.ReasonFailed, now.Add(-3*time.Hour))
	put(gameB, "purge-b-old2", events.ReasonFailed, now.Add(-3*time.Hour))
	put(gameB, "purge-b-new", events.ReasonFailed, now)
	// A real undecodable intent: the worker dead-letters it as invalid.
	before, _ := e.streamMsgs(e.subjects.DLQStream())
	garbage := nats.NewMsg(e.subjects.Intent(gameA, "9009"))
	garbage.Data = []byte("{not json")
	garbage.Header.Set(events.HeaderMsgID, "garbage-1")
	if _, err := e.js.PublishMsg(context.Background(), garbage); err != nil {
		t.Fatal(err)
	}
	e.waitStored("the undecodable intent is dead-lettered", before+1, 10*time.Second)

	remaining := func() []string {
		var ids []string
		for _, d := range e.stored() {
			id := d.OutOrderID
			if id == "" {
				id = "-"
			}
			ids = append(ids, id)
		}
		return ids
	}
	expect := func(step string, want ...string) {
		t.Helper()
		if got := remaining(); !slices.Equal(got, want) {
			t.Errorf("after %s: dead letters %v, want %v", step, got, want)
		}
	}
	all := []string{"purge-a1", "purge-a2", "purge-b-old1", "purge-b-old2", "purge-b-new", "-"}
	expect("setup", all...)

	out, _, code := e.cli("dlq", "list", "--since", "1h", "--mg-id", gameB)
	if code != 0 || !strings.Contains(out, "purge-b-new") || strings.Contains(out, "purge-b-old") || strings.Contains(out, "purge-a") {
		t.Errorf("list --since 1h --mg-id B (exit %d):\n%s", code, out)
	}

	_, errOut, code := e.cli("dlq", "purge")
	if code == 0 || !strings.Contains(errOut, "--all") {
		t.Errorf("purge with no filter: exit %d, %q; it must refuse and name --all", code, errOut)
	}
	expect("a refused purge", all...)

	out, _, code = e.cli("dlq", "purge", "--reason", "invalid", "--dry-run")
	if code != 0 || !strings.Contains(out, "would have purged 1 dead letter(s)") {
		t.Errorf("dry run: exit %d\n%s", code, out)
	}
	expect("a dry run", all...)

	steps := []struct {
		args []string
		want []string
	}{
		{[]string{"--reason", "invalid"}, all[:5]},
		{[]string{"--mg-id", gameB, "--since", "1h"}, all[:4]},
		{[]string{"--reason", "needs_attention", "--seq", strconv.FormatUint(a1, 10)}, all[1:4]},
		{[]string{"--mg-id", gameB, "--since", now.Add(-4 * time.Hour).Format(time.RFC3339)}, all[1:2]},
		{[]string{"--all"}, nil},
	}
	for _, s := range steps {
		before := len(remaining())
		args := append([]string{"dlq", "purge"}, s.args...)
		out, errOut, code := e.cli(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", s.args, code, errOut)
		}
		if want := fmt.Sprintf("purged %d dead letter(s)", before-len(s.want)); !strings.Contains(out, want) {
			t.Errorf("%v printed %q, want %q", s.args, out, want)
		}
		expect(strings.Join(s.args, " "), s.want...)
	}
}

// TestOrderGetShowsTheWholeHistoryOfACompensatedOrder makes a debit that
// shows in the balance only after the confirmation gave up, so the order
// is compensated, and reads it back the way an operator would.
func TestOrderGetShowsTheWholeHistoryOfACompensatedOrder(t *testing.T) {
	t.Parallel()
	e := startOpsEnv(t)
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.pay", VisibilityDelayMS: 30_000})
	in := testIntent("compensated-1", "mogs", 70)
	e.publish(in)
	e.waitStates([]string{in.OutOrderID}, 30*time.Second, events.StateCompensated)

	out, errOut, code := e.cli("order", "get", in.OutOrderID)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"state", "compensated", "mogs / 70", "confirm_timeout", "bill_no", "history:"} {
		if !strings.Contains(out, want) {
			t.Errorf("order get lacks %q", want)
		}
	}
	history := out[strings.Index(out, "history:"):]
	var states []string
	for _, line := range strings.Split(history, "\n")[2:] {
		if f := strings.Fields(line); len(f) >= 4 {
			if _, err := time.Parse("2006-01-02T15:04:05.000Z", f[0]); err != nil {
				t.Errorf("history line without a timestamp: %q", line)
			}
			states = append(states, f[3])
		}
	}
	for _, want := range []string{"accepted", "ordered", "debited", "compensating", "compensated"} {
		if !slices.Contains(states, want) {
			t.Errorf("history states %v lack %s", states, want)
		}
	}
	if strings.Contains(out, "js-"+in.OutOrderID) {
		t.Errorf("order get shows the js_code:\n%s", out)
	}

	js, _, code := e.cli("order", "get", "--json", in.OutOrderID)
	if code != 0 {
		t.Fatalf("order get --json exit %d", code)
	}
	var reply struct {
		Order struct {
			State  string `json:"state"`
			BillNo string `json:"bill_no"`
		} `json:"order"`
		History []map[string]any `json:"history"`
	}
	if err := json.Unmarshal([]byte(js), &reply); err != nil {
		t.Fatalf("order get --json: %v\n%s", err, js)
	}
	if reply.Order.State != "compensated" || len(reply.History) < 5 {
		t.Errorf("order get --json: state %q, %d history entries\n%s", reply.Order.State, len(reply.History), js)
	}
	if !bytes.Contains([]byte(js), []byte(`"attempt"`)) {
		t.Errorf("history entries carry no attempt numbers:\n%s", js)
	}
}

// TestDLQShowMasksSecretsWhateverTheKeyCase is defect 8 of issue 12:
// encoding/json takes "JS_CODE" for js_code, so such an intent is valid
// and its secret reaches the dead letter, as does one cut off mid-value.
func TestDLQShowMasksSecretsWhateverTheKeyCase(t *testing.T) {
	t.Parallel()
	url, js, s := dlqOnly(t)
	ctx := context.Background()
	bodies := []struct{ name, body, secret string }{
		{"an upper-case js_code", `{"out_order_id":"upper-1","mg_id":"1468180338417074177","room_id":"9009","cmd":"specify_dice_roll",` +
			`"from_uid":"001","to_uid":"002","value":100,"payment":{"provider":"mogs","amount":10,"openid":"p-upper-1",` +
			`"mogs":{"JS_CODE":"UPPER-JS-SECRET","Session_Key":"MIXED-SK-SECRET","pay_item":"dice"}}}`, "UPPER-JS-SECRET"},
		{"a body cut off inside a secret", `{"out_order_id":"cut-1","payment":{"midas":{"pf":"qq_m_qq","OpenKey":"CUT-OK-SECRET`, "CUT-OK-SECRET"},
	}
	for _, b := range bodies {
		t.Run("show masks "+b.name, func(t *testing.T) {
			m := nats.NewMsg(s.DeadLetter("1468180338417074177", "9009", "x"))
			m.Header = events.DeadLetterHeaders(events.DeadLetter{Reason: events.ReasonInvalid, Error: "test", FailedAt: time.Now()})
			m.Data = []byte(b.body)
			ack, err := js.PublishMsg(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			seq := strconv.FormatUint(ack.Sequence, 10)
			out, errOut, code := runCLI(t, ctx, "dlq", "show", "--nats-url", url, seq)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, `"***"`) || strings.Contains(out, "SECRET") {
				t.Errorf("show %s prints a secret or masks nothing:\n%s", seq, out)
			}
			raw, _, code := runCLI(t, ctx, "dlq", "show", "--nats-url", url, "--raw", seq)
			if code != 0 || raw != b.body || !strings.Contains(raw, b.secret) {
				t.Errorf("show --raw %s = %q (exit %d), want the exact body", seq, raw, code)
			}
		})
	}
}

func TestDLQCommandLine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, sub := range []string{"list", "show", "replay", "purge"} {
		t.Run(sub+" --help prints its usage and exits 0", func(t *testing.T) {
			out, errOut, code := runCLI(t, ctx, "dlq", sub, "--help")
			if code != 0 || !strings.Contains(out+errOut, "Usage: coinsaga dlq "+sub) {
				t.Errorf("exit %d:\n%s%s", code, out, errOut)
			}
		})
	}
	// None of these reaches NATS: the URL points nowhere on purpose.
	nowhere := []string{"--nats-url", "nats://127.0.0.1:1"}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"an unknown subcommand exits 2 with the list", []string{"dlq", "frob"}, 2, "list|show|replay|purge"},
		{"no subcommand exits 2 with the list", []string{"dlq"}, 2, "list|show|replay|purge"},
		{"purge with no filter refuses and names --all", append([]string{"dlq", "purge"}, nowhere...), 1, "--all"},
		{"purge with only a limit still refuses", append([]string{"dlq", "purge", "--limit", "3"}, nowhere...), 1, "--all"},
		{"a bad reason is named", append([]string{"dlq", "list", "--reason", "oops"}, nowhere...), 1, `--reason "oops"`},
		{"show needs a number", append([]string{"dlq", "show"}, append(nowhere, "abc")...), 1, "not a stream sequence"},
		{"list takes no arguments", append([]string{"dlq", "list"}, append(nowhere, "12")...), 1, "--seq"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, ctx, tc.args...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, errOut, tc.wantCode, tc.wantErr)
			}
		})
	}
}

// dlqOnly is JetStream with the coinsaga streams and no worker.
func dlqOnly(t testing.TB) (string, jetstream.JetStream, events.Subjects) {
	t.Helper()
	jet := kit.StartJetStream(t).EnsureStreams(t)
	return jet.URL, jet.JS, jet.Subjects
}

// putDeadLetters stores n failed dead letters the way the worker writes
// them, returning their stream sequences.
func putDeadLetters(t testing.TB, js jetstream.JetStream, s events.Subjects, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, 0, n)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("dl-%d", i)
		in := testIntent(id, "mogs", 10)
		body, _ := json.Marshal(in)
		m := nats.NewMsg(s.DeadLetter(in.MgID, in.RoomID, id))
		m.Header = events.DeadLetterHeaders(events.DeadLetter{Reason: events.ReasonFailed, State: "failed", Attempts: 3,
			Error: "retries_exhausted: busy", FailedAt: time.Now(), OriginalSubject: s.Intent(in.MgID, in.RoomID)})
		m.Header.Set(events.HeaderMsgID, id+":dlq:3")
		m.Data = body
		ack, err := js.PublishMsg(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

func TestReplayWithoutAWorkerRepublishesWithANewMsgID(t *testing.T) {
	t.Parallel()
	url, js, s := dlqOnly(t)
	seqs := putDeadLetters(t, js, s, 3)
	ctx := context.Background()
	out, errOut, code := runCLI(t, ctx, "dlq", "replay", "--nats-url", url, "--seq", fmt.Sprint(seqs[1]))
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	if !strings.Contains(errOut, "cannot ask workers for order states") {
		t.Errorf("no warning that order states went unchecked: %q", errOut)
	}
	if !strings.Contains(out, "replayed 1, already completed 0, failed 0") || strings.Contains(errOut, "replay [") {
		t.Errorf("one replay wants a summary and no progress bar:\nstdout %s\nstderr %s", out, errOut)
	}
	intents, err := js.Stream(ctx, s.IntentsStream())
	if err != nil {
		t.Fatal(err)
	}
	m, err := intents.GetLastMsgForSubject(ctx, s.Intents())
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("dl-1:replay:%d", seqs[1])
	if m.Header.Get(events.HeaderMsgID) != want || m.Header.Get(events.HeaderReplay) != fmt.Sprint(seqs[1]) {
		t.Errorf("republished headers %v, want Nats-Msg-Id %s and Coinsaga-Replay %d", m.Header, want, seqs[1])
	}
	in := testIntent("dl-1", "mogs", 10)
	if body, _ := json.Marshal(in); !bytes.Equal(m.Data, body) || m.Subject != s.Intent(in.MgID, in.RoomID) {
		t.Errorf("republished %s %s, want the original bytes on the original subject", m.Subject, m.Data)
	}
	dlq, _ := js.Stream(ctx, s.DLQStream())
	if _, err := dlq.GetMsg(ctx, seqs[1]); err == nil {
		t.Error("the replayed dead letter is still there")
	}
	for _, seq := range []uint64{seqs[0], seqs[2]} {
		if _, err := dlq.GetMsg(ctx, seq); err != nil {
			t.Errorf("dead letter %d, not selected, is gone: %v", seq, err)
		}
	}
	// An interrupted run done again publishes the same Nats-Msg-Id, which
	// JetStream drops: the order sees one replay, not two.
	again := nats.NewMsg(m.Subject)
	again.Data, again.Header = m.Data, m.Header
	ack, err := js.PublishMsg(ctx, again)
	if err != nil || !ack.Duplicate {
		t.Errorf("a repeated replay publish: ack %+v, %v; want a duplicate", ack, err)
	}
}

// BenchmarkDLQ measures reading and replaying a backlog, the operator's
// morning after an outage: go test -run XXX -bench DLQ ./cmd/coinsaga/
func BenchmarkDLQ(b *testing.B) {
	const backlog = 2000
	for _, op := range []string{"list", "replay"} {
		b.Run(fmt.Sprintf("%s %d dead letters", op, backlog), func(b *testing.B) {
			url, js, s := dlqOnly(b)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				purge, _ := js.Stream(context.Background(), s.DLQStream())
				_ = purge.Purge(context.Background())
				putDeadLetters(b, js, s, backlog)
				b.StartTimer()
				var stdout, stderr bytes.Buffer
				if code := runWith(context.Background(), []string{"dlq", op, "--nats-url", url}, &stdout, &stderr); code != 0 {
					b.Fatalf("exit %d: %s", code, stderr.String())
				}
			}
			b.ReportMetric(float64(backlog*b.N)/b.Elapsed().Seconds(), "letters/s")
		})
	}
}
