package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// metricsText is a scraped /metrics page: sample lines by series
// (`name{labels}`, labels as the exposition prints them).
type metricsText map[string]float64

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)`)

func scrape(t *testing.T, url string) metricsText {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	m := metricsText{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		match := sampleLine.FindStringSubmatch(sc.Text())
		if match == nil {
			continue
		}
		v, err := strconv.ParseFloat(match[3], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", sc.Text(), err)
		}
		m[match[1]+match[2]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// sum adds the samples of name whose labels include every label="value"
// pair given, and says whether any sample matched.
func (m metricsText) sum(name string, labels ...string) (float64, bool) {
	total, found := 0.0, false
	for series, v := range m {
		n, rest, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains("{"+rest, "{"+l+",") && !strings.Contains("{"+rest, ","+l+",") &&
				!strings.Contains("{"+rest, "{"+l+"}") && !strings.Contains("{"+rest, ","+l+"}") {
				ok = false
				break
			}
		}
		if ok {
			total += v
			found = true
		}
	}
	return total, found
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestMetricsCountASmallRun runs 20 orders and one undecodable intent and
// reads every series an operator's dashboard needs.
func TestMetricsCountASmallRun(t *testing.T) {
	t.Parallel()
	// A reserved port: the address is known before serve starts, and no
	// other process can take it meanwhile.
	addr := kit.ReserveAddr(t)
	e := startOpsEnv(t, "--http-listen", addr)
	base := "http://" + addr

	const n = 20
	var ids []string
	for i := 0; i < n; i++ {
		in := testIntent(fmt.Sprintf("metrics-%d", i), []string{"mogs", "midas"}[i%2], int64(5+i))
		e.publish(in)
		ids = append(ids, in.OutOrderID)
	}
	garbage := nats.NewMsg(e.subjects.Intent("1468180338417074177", "9009"))
	garbage.Data = []byte("not an intent")
	if _, err := e.js.PublishMsg(context.Background(), garbage); err != nil {
		t.Fatal(err)
	}
	e.waitStates(ids, 60*time.Second, events.StateCompleted)

	// Order counts by state come from a periodic look at the store.
	var m metricsText
	e.waitFor("coinsaga_orders counts the completed orders", 15*time.Second, func() bool {
		m = scrape(t, base+"/metrics")
		v, _ := m.sum("coinsaga_orders", `state="completed"`)
		return v == n
	})

	tests := []struct {
		name     string
		series   string
		labels   []string
		min, max float64
	}{
		{"orders by state count every completed order", "coinsaga_orders", []string{`state="completed"`}, n, n},
		{"orders by state count none stuck in flight", "coinsaga_orders", []string{`state="debited"`}, 0, 0},
		{"transitions count each order entering completed once", "coinsaga_order_transitions_total", []string{`state="completed"`}, n, n},
		{"transitions count each order entering debited once", "coinsaga_order_transitions_total", []string{`state="debited"`}, n, n},
		{"MOGS pay requests are counted by outcome class", "coinsaga_provider_requests_total", []string{`provider="mogs"`, `endpoint="pay"`, `class="ok"`}, n / 2, n / 2},
		{"Midas pay_m requests are counted by outcome class", "coinsaga_provider_requests_total", []string{`provider="midas"`, `endpoint="pay_m"`, `class="ok"`}, n / 2, n / 2},
		{"SUD create_order requests are counted", "coinsaga_provider_requests_total", []string{`provider="sud"`, `endpoint="create_order"`}, n, n},
		{"balance polls are counted for both wallets", "coinsaga_provider_requests_total", []string{`class="ok"`}, 4 * n, 1e6},
		// Exactly one: a step never runs again on a row older than the
		// last committed one (worker.current re-reads before a step).
		{"the pay step latency has one sample per order", "coinsaga_step_duration_seconds_count", []string{`step="pay"`}, n, n},
		{"the step latency histogram has buckets", "coinsaga_step_duration_seconds_bucket", []string{`le="+Inf"`}, 3 * n, 1e6},
		{"end-to-end latency has one sample per completed order", "coinsaga_order_duration_seconds_count", []string{`state="completed"`}, n, n},
		{"end-to-end latency sums to a plausible time", "coinsaga_order_duration_seconds_sum", []string{`state="completed"`}, 0.001, 60 * n},
		{"no order is in flight after the run", "coinsaga_inflight_orders", nil, 0, 0},
		{"no order waits for confirmation after the run", "coinsaga_orders_waiting_confirmation", nil, 0, 0},
		{"the outbox is drained", "coinsaga_outbox_pending", nil, 0, 0},
		{"outbox lag is reported", "coinsaga_outbox_lag_seconds", nil, 0, 5},
		{"the undecodable intent is counted as a dead letter", "coinsaga_dead_letters_total", []string{`reason="invalid"`}, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := m.sum(tc.series, tc.labels...)
			if !ok {
				var names []string
				for s := range m {
					if strings.HasPrefix(s, "coinsaga_") {
						names = append(names, s)
					}
				}
				sort.Strings(names)
				t.Fatalf("no series %s%v; coinsaga series:\n%s", tc.series, tc.labels, strings.Join(names, "\n"))
			}
			if v < tc.min || v > tc.max {
				t.Errorf("%s%v = %v, want %v..%v", tc.series, tc.labels, v, tc.min, tc.max)
			}
		})
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code := httpStatus(t, base+path); code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, code)
		}
	}
}

// TestNoSecretLeaves runs orders whose login fields carry distinctive
// values, successes and failures of every kind, with debug JSON logs, and
// scans everything that leaves the worker: its logs, every status event,
// every dead letter's headers and the `order get` replies.
func TestNoSecretLeaves(t *testing.T) {
	t.Parallel()
	e := startOpsEnv(t, "--log-level", "debug", "--log-format", "json")
	d := sandbox.DefaultConfig()
	secrets := []string{d.SUDAppSecret, d.MidasAppKey}
	// secretIntent logs in with login (a js_code or an openkey) and a
	// second secret; both are secrets unless the login is "expired".
	secretIntent := func(id, provider, login string, amount int64) events.Intent {
		in := testIntent(id, provider, amount)
		var second string
		if provider == "mogs" {
			in.Payment.MOGS.JSCode, in.Payment.MOGS.SessionKey = login, "SECRET-sk-"+id
			second = in.Payment.MOGS.SessionKey
		} else {
			in.Payment.Midas.OpenKey, in.Payment.Midas.PFKey = login, "SECRET-pfkey-"+id
			second = in.Payment.Midas.PFKey
		}
		secrets = append(secrets, second)
		if login != "expired" {
			secrets = append(secrets, login)
		}
		return in
	}
	mogsIntent := func(id, jsCode string, amount int64) events.Intent { return secretIntent(id, "mogs", jsCode, amount) }
	midasIntent := func(id, openKey string, amount int64) events.Intent {
		return secretIntent(id, "midas", openKey, amount)
	}
	okMOGS := mogsIntent("secret-ok-mogs", "SECRET-js-123", 10)
	okMidas := midasIntent("secret-ok-midas", "SECRET-openkey-123", 10)
	poor := midasIntent("secret-poor", "SECRET-openkey-poor", 500)
	e.sandbox.SetAccount("midas", d.MidasAppID, poor.Payment.OpenID, 100, 0)
	expiredMOGS := mogsIntent("secret-expired-mogs", "expired", 10)
	expiredMidas := midasIntent("secret-expired-midas", "expired", 10)
	invalid := mogsIntent("secret-invalid", "SECRET-js-invalid", 0) // amount 0: rejected, dead-lettered
	ids := []string{okMOGS.OutOrderID, okMidas.OutOrderID, poor.OutOrderID, expiredMOGS.OutOrderID, expiredMidas.OutOrderID, invalid.OutOrderID}
	e.publish(okMOGS, okMidas, poor, expiredMOGS, expiredMidas, invalid)
	e.waitStates(ids, 30*time.Second, events.StateCompleted, events.StateFailed, events.StateRejected)

	// A pay outage: failed after its retries, dead-lettered.
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.pay", BusyRate: 1})
	busy := mogsIntent("secret-busy", "SECRET-js-busy", 10)
	e.publish(busy)
	ids = append(ids, busy.OutOrderID)
	e.waitStates(ids[len(ids)-1:], 30*time.Second, events.StateFailed)
	e.sandbox.ClearFaults()
	// The same out_order_id with another body: a conflict dead letter.
	conflict := mogsIntent(okMOGS.OutOrderID, "SECRET-js-conflict", 99)
	data, _ := json.Marshal(conflict)
	m := nats.NewMsg(e.subjects.Intent(conflict.MgID, conflict.RoomID))
	m.Data = data
	m.Header.Set(events.HeaderMsgID, "conflict-1")
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	// Undecodable bytes that still hold a secret.
	secrets = append(secrets, "SECRET-js-garbage")
	garbage := nats.NewMsg(e.subjects.Intent(conflict.MgID, conflict.RoomID))
	garbage.Data = []byte(`{"out_order_id":"x","payment":{"mogs":{"js_code":"SECRET-js-garbage"`)
	if _, err := e.js.PublishMsg(context.Background(), garbage); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the rejected, busy, conflict and undecodable intents are dead-lettered", 30*time.Second, func() bool {
		reasons := map[string]bool{}
		for _, m := range e.status.DeadLettersSeen() {
			reasons[m.Header.Get(events.HeaderReason)] = true
		}
		return reasons["rejected"] && reasons["failed"] && reasons["conflict"] && reasons["invalid"]
	})
	published := uint64(len(e.status.DeadLettersSeen()))
	e.waitStored("every dead letter is stored", published, 10*time.Second)

	sources := map[string]string{}
	for _, id := range ids {
		out, errOut, code := e.cli("order", "get", "--json", id)
		if code != 0 {
			t.Fatalf("order get --json %s: exit %d: %s", id, code, errOut)
		}
		sources["order get --json "+id] = out
		out, _, _ = e.cli("order", "get", id)
		sources["order get "+id] = out
	}
	out, _, _ := e.cli("dlq", "list", "--json")
	sources["dlq list --json"] = out
	for _, dl := range e.stored() {
		out, _, _ := e.cli("dlq", "show", strconv.FormatUint(dl.StreamSeq, 10))
		sources[fmt.Sprintf("dlq show %d", dl.StreamSeq)] = out
	}
	for i, raw := range e.status.Raw() {
		sources[fmt.Sprintf("status event %d", i)] = string(raw)
	}
	for i, m := range e.status.DeadLettersSeen() {
		var h strings.Builder
		for k, vs := range m.Header {
			fmt.Fprintf(&h, "%s: %s\n", k, strings.Join(vs, ", "))
		}
		sources[fmt.Sprintf("dead letter %d headers", i)] = h.String()
	}
	e.worker.Stop(30 * time.Second)
	logs := e.worker.Output()
	sources["worker log"] = logs

	if !strings.Contains(logs, `"level":"DEBUG"`) || !strings.Contains(logs, okMOGS.OutOrderID) {
		t.Fatalf("the worker log holds no debug lines about the orders; the scan would prove nothing:\n%s", tail(logs, 20))
	}
	for name, text := range sources {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s contains the secret %q:\n%s", name, s, excerpt(text, s))
			}
		}
	}
	t.Logf("scanned %d sources (%d bytes of worker log) for %d secrets", len(sources), len(logs), len(secrets))
}

// excerpt shows where s sits in text.
func excerpt(text, s string) string {
	i := strings.Index(text, s)
	from, to := max(0, i-200), min(len(text), i+len(s)+200)
	return "..." + text[from:to] + "..."
}
