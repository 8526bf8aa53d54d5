package console

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/worker"
)

func TestRatesFromTheWorkersMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := worker.NewMetrics(reg)
	start := time.Unix(1_800_000_000, 0)
	h := &history{keep: 10 * time.Minute}
	first, err := readSample(reg, start)
	if err != nil {
		t.Fatal(err)
	}
	h.add(first)
	// In the next minute: 90 good pays and 10 busy ones; the pay circuit
	// opens and refuses 3 calls.
	for range 90 {
		m.ObserveCall("mogs", "pay", providers.OK, 10*time.Millisecond)
	}
	for range 10 {
		m.ObserveCall("mogs", "pay", providers.Retryable, 10*time.Millisecond)
	}
	m.CircuitChanged("mogs.pay", true)
	for range 3 {
		m.CallRefused("mogs.pay")
	}
	now, err := readSample(reg, start.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	r := h.rates(now)
	if len(r.Endpoints) != 1 {
		t.Fatalf("endpoints %+v, want mogs.pay alone", r.Endpoints)
	}
	e := r.Endpoints[0]
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"name", e.Name, "mogs.pay"},
		{"calls per second", e.PerSecond, 100.0 / 60},
		{"retryable share", e.Retryable, 0.1},
		{"final share", e.Final, 0.0},
		{"circuit open", e.Open, true},
		{"circuit reported", e.HasBreak, true},
		{"refused calls", e.Refused, 3.0},
		{"window", r.Window, time.Minute},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestTheLiveFeedFiltersByStateOnTheServer(t *testing.T) {
	t.Parallel()
	var evs []events.Watched
	for i, s := range []events.State{events.StateAccepted, events.StateOrdered, events.StateCompleted, events.StateFailed} {
		e := events.StatusEvent{OutOrderID: "o-1", State: s, Seq: i + 1}
		evs = append(evs, events.Watched{Event: e, Raw: []byte(`{"out_order_id":"o-1","state":"` + string(s) + `"}`)})
	}
	srv := serveConsole(t, Config{Orders: &fakeOrders{orders: map[string]store.Order{}}, Status: &listStatus{evs: evs}, Access: Access{OpenReads: true}})
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"no state filter passes every event", "", []string{"accepted", "ordered", "completed", "failed"}},
		{"two states pass those two", "?state=completed&state=failed", []string{"completed", "failed"}},
		{"a comma list works as well", "?state=ordered,failed", []string{"ordered", "failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/live/events" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Fatalf("Content-Type %q", ct)
			}
			var got []string
			sc := bufio.NewScanner(resp.Body)
			ready := false
			for sc.Scan() {
				line := sc.Text()
				switch {
				case line == "event: ready":
					ready = true
				case line == "event: end":
					if !ready {
						t.Error("no ready event before the events")
					}
					if strings.Join(got, ",") != strings.Join(tc.want, ",") {
						t.Fatalf("states %v, want %v", got, tc.want)
					}
					return
				case strings.HasPrefix(line, `data: {"out_order_id"`):
					got = append(got, strings.TrimSuffix(strings.SplitN(line, `"state":"`, 2)[1], `"}`))
				}
			}
			t.Fatalf("the stream ended without its end event; states %v", got)
		})
	}
	if resp, err := http.Get(srv.URL + "/live/events?state=bogus"); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an unknown state: %v %v, want 400", resp.StatusCode, err)
	}
}

// listStatus is a StatusSource whose every watch delivers evs, then ends.
type listStatus struct{ evs []events.Watched }

func (l *listStatus) Watch(context.Context, events.WatchFilter) (StatusStream, error) {
	return &listStream{evs: l.evs}, nil
}

type listStream struct{ evs []events.Watched }

func (l *listStream) Next(ctx context.Context) (events.Watched, error) {
	if len(l.evs) == 0 {
		return events.Watched{}, context.Canceled
	}
	ev := l.evs[0]
	l.evs = l.evs[1:]
	return ev, ctx.Err()
}

func (l *listStream) Stop() {}
