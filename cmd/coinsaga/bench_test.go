package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/pgtest"
)

func TestBenchSelfRunsEveryOrderToCompletion(t *testing.T) {
	if testing.Short() {
		t.Skip("starts JetStream, the sandbox and a worker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	profile := filepath.Join(t.TempDir(), "cpu.prof")
	stdout, stderr, code := runCLI(t, ctx, "bench", "--self", "--orders", "300", "--baseline",
		"--profile", profile, "--timeout", "50s")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 1 {
		t.Fatalf("want exactly one line on stdout, got %d:\n%s", len(lines), stdout)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &res); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
	}
	for _, key := range []string{"orders", "completed"} {
		if res[key] != float64(300) {
			t.Errorf("%s = %v, want 300", key, res[key])
		}
	}
	if res["failed"] != float64(0) {
		t.Errorf("failed = %v, want 0", res["failed"])
	}
	for _, key := range []string{"seconds", "orders_per_sec", "p50_ms", "p95_ms", "p99_ms", "max_rss_mb",
		"event_lag_p50_ms", "event_lag_p99_ms",
		"store_bytes_per_order", "provider_ceiling_per_sec", "jetstream_ceiling_per_sec", "ratio_provider", "ratio_jetstream",
		"cpu_ms_per_order", "provider_ceiling_cpu_ms_per_order", "ratio_provider_cpu"} {
		v, ok := res[key].(float64)
		if !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", key, res[key])
		}
	}
	if p50, p99 := res["p50_ms"].(float64), res["p99_ms"].(float64); p50 > p99 {
		t.Errorf("p50 %v ms above p99 %v ms", p50, p99)
	}
	// Each order's event lag is part of its latency, so each percentile
	// of the one is at most the same percentile of the other.
	for _, p := range []string{"p50", "p99"} {
		if lag, lat := res["event_lag_"+p+"_ms"].(float64), res[p+"_ms"].(float64); lag > lat {
			t.Errorf("event lag %s %v ms above the latency %s %v ms", p, lag, p, lat)
		}
	}
	if fi, err := os.Stat(profile); err != nil || fi.Size() == 0 {
		t.Errorf("no CPU profile written: %v", err)
	}
	if !strings.Contains(stderr, "orders") {
		t.Errorf("no progress on stderr:\n%s", stderr)
	}
}

func TestBenchSelfOnPostgreSQLSpreadsTheOrdersOverItsWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts JetStream, the sandbox and two workers on PostgreSQL")
	}
	dbURL := pgtest.DB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stdout, stderr, code := runCLI(t, ctx, "bench", "--self", "--database-url", dbURL, "--workers", "2",
		"--orders", "300", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	var res struct {
		Orders, Completed, Failed int
		CPU                       float64  `json:"cpu_ms_per_order"`
		StoreBytes                *float64 `json:"store_bytes_per_order"`
		Workers                   *struct {
			Orders []int
			Other  int
		}
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
	}
	if res.Completed != 300 || res.Failed != 0 {
		t.Errorf("completed %d, failed %d; want 300 and 0", res.Completed, res.Failed)
	}
	if res.CPU <= 0 {
		t.Errorf("cpu_ms_per_order = %v, want a positive number", res.CPU)
	}
	if res.StoreBytes != nil {
		t.Errorf("store_bytes_per_order = %v: it measures the SQLite file, and there is none", *res.StoreBytes)
	}
	if res.Workers == nil || len(res.Workers.Orders) != 2 {
		t.Fatalf("workers = %+v, want the orders of each of 2 workers", res.Workers)
	}
	sum := 0
	for _, n := range res.Workers.Orders {
		sum += n
	}
	t.Logf("orders per worker: %v (other %d)", res.Workers.Orders, res.Workers.Other)
	if sum != 300 || res.Workers.Other != 0 {
		t.Errorf("the workers own %v and no running worker %d of the 300 orders, want all 300 among the two", res.Workers.Orders, res.Workers.Other)
	}
	if !strings.Contains(stderr, "2 worker(s)") {
		t.Errorf("stderr does not say the run has 2 workers:\n%s", stderr)
	}
}

func TestBenchSelfIgnoresAnExportedDatabaseURL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts JetStream, the sandbox and a worker")
	}
	// Exported for serve, it must not send bench orders to that database:
	// only the flag does. This one would refuse every connection.
	t.Setenv("COINSAGA_DATABASE_URL", "postgres://nobody@127.0.0.1:1/production")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stdout, stderr, code := runCLI(t, ctx, "bench", "--self", "--orders", "20", "--timeout", "50s")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "coinsaga.db") {
		t.Errorf("the run did not say it used SQLite:\n%s", stderr)
	}
	if !strings.Contains(stdout, `"completed":20`) {
		t.Errorf("stdout %q, want 20 completed orders", stdout)
	}
}

func TestBenchRefusesFlagsThatCannotApply(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no orders is refused", []string{"--self", "--orders", "0"}, "--orders"},
		{"a Midas share above one is refused", []string{"--self", "--midas-share", "1.5"}, "--midas-share"},
		{"--self with a NATS URL is refused", []string{"--self", "--nats-url", "nats://127.0.0.1:1"}, "--self"},
		{"--preload without --self is refused", []string{"--preload", "10"}, "--preload"},
		{"faults without a sandbox URL are refused", []string{"--latency-ms", "5"}, "--sandbox-url"},
		{"several workers on SQLite are refused", []string{"--self", "--workers", "2"}, "--database-url"},
		{"--database-url without --self is refused", []string{"--database-url", "postgres://127.0.0.1:1/x"}, "--database-url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, context.Background(), append([]string{"bench"}, c.args...)...)
			if code == 0 {
				t.Fatalf("exit 0, want an error; stdout %q", stdout)
			}
			if stdout != "" {
				t.Errorf("a refused run printed a result: %q", stdout)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q does not name %s", stderr, c.want)
			}
		})
	}
}

func TestBenchReadsStatusEventsAsJSONWould(t *testing.T) {
	bal := int64(900)
	cases := []struct {
		name string
		ev   events.StatusEvent
	}{
		{"a completed event with a balance", events.StatusEvent{OutOrderID: "run1-17", State: events.StateCompleted, Seq: 4, Balance: &bal,
			At: time.Date(2026, 12, 1, 14, 0, 0, 123456789, time.UTC)}},
		{"an event on a whole second", events.StatusEvent{OutOrderID: "run1-19", State: events.StateDebited, Seq: 2,
			At: time.Date(2026, 12, 1, 14, 0, 1, 0, time.UTC)}},
		{"an error message that quotes a state field", events.StatusEvent{OutOrderID: "run1-18", State: events.StateFailed, Seq: 3,
			Error: &events.EventError{Code: "busy", Message: `reply {"state":"completed"} \ 系统繁忙`}}},
		{"an event without an id", events.StatusEvent{State: events.StateAccepted, Seq: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := json.Marshal(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			var want statusLite
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			got, ok := readStatusLite(data)
			if !ok || got != want {
				t.Errorf("readStatusLite(%s) = %+v, %v; want %+v", data, got, ok, want)
			}
		})
	}
	if _, ok := readStatusLite([]byte("not json")); ok {
		t.Error("readStatusLite accepted a body that is not JSON")
	}
}

func TestBenchBaselineWithLatencyComparesToAZeroLatencyRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts JetStream, the sandbox and a worker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stdout, stderr, code := runCLI(t, ctx, "bench", "--self", "--orders", "100", "--latency-ms", "5",
		"--latency-jitter-ms", "5", "--baseline", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	var res map[string]float64
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &res); err != nil {
		t.Fatalf("stdout is not one JSON object of numbers: %v\n%s", err, stdout)
	}
	zero, ratio := res["zero_latency_orders_per_sec"], res["ratio_zero_latency"]
	if zero <= 0 || ratio <= 0 {
		t.Fatalf("zero-latency rate %v, ratio %v; want both measured", zero, ratio)
	}
	if want := res["orders_per_sec"] / zero; math.Abs(want-ratio) > 0.01 {
		t.Errorf("ratio %v, but orders_per_sec / zero_latency_orders_per_sec = %v", ratio, want)
	}
}
