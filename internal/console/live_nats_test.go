package console_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
)

// feedLines opens /live/events?query and returns its lines as they come,
// once the ready event has been read.
func feedLines(t *testing.T, e *consoleEnv, query string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"/live/events?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /live/events?%s = %d", query, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != "event: ready" {
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// states reads the feed until the order reaches state (or the deadline),
// and returns the states it showed for the order, in order.
func states(t *testing.T, lines <-chan string, id string, until events.State) []string {
	t.Helper()
	var got []string
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line, open := <-lines:
			if !open {
				t.Fatalf("the feed ended after %v", got)
			}
			if !strings.HasPrefix(line, "data: ") || !strings.Contains(line, `"out_order_id":"`+id+`"`) {
				continue
			}
			state := strings.SplitN(strings.SplitN(line, `"state":"`, 2)[1], `"`, 2)[0]
			got = append(got, state)
			if state == string(until) {
				return got
			}
		case <-deadline:
			t.Fatalf("order %s did not reach %s in the feed in 30s (seen %v)", id, until, got)
		}
	}
}

func TestTheLiveFeedFollowsOrdersOnNATS(t *testing.T) {
	e := startConsoleEnv(t, false)
	t.Run("an unfiltered feed shows every state of an order published after ready", func(t *testing.T) {
		lines := feedLines(t, e, "")
		id := e.publish(t, events.ProviderMOGS)
		got := states(t, lines, id, events.StateCompleted)
		if got[0] != string(events.StateAccepted) || len(got) < 4 {
			t.Errorf("states %v, want accepted first and every step to completed", got)
		}
	})
	t.Run("a game and room filter shows their orders", func(t *testing.T) {
		lines := feedLines(t, e, "game=1468180338417074177&room=9009")
		id := e.publish(t, events.ProviderMidas)
		states(t, lines, id, events.StateCompleted)
	})
	t.Run("a state filter shows only those states", func(t *testing.T) {
		lines := feedLines(t, e, "state=completed")
		id := e.publish(t, events.ProviderMOGS)
		if got := states(t, lines, id, events.StateCompleted); len(got) != 1 {
			t.Errorf("states %v, want completed alone", got)
		}
	})
	t.Run("an order filter starts from the order's last event", func(t *testing.T) {
		id := e.publish(t, events.ProviderMOGS)
		e.waitState(t, id, events.StateCompleted)
		lines := feedLines(t, e, "order="+id)
		if got := states(t, lines, id, events.StateCompleted); len(got) != 1 {
			t.Errorf("states %v, want the last one, completed", got)
		}
	})
	t.Run("a room filter leaves other rooms out", func(t *testing.T) {
		other := feedLines(t, e, "room=another-room")
		all := feedLines(t, e, "")
		id := e.publish(t, events.ProviderMOGS)
		states(t, all, id, events.StateCompleted)
		// The unfiltered feed has shown completed, and the other feed
		// writes what it got on the same ticks: anything of this order
		// would be there by now.
		deadline := time.After(time.Second)
		for {
			select {
			case line := <-other:
				if strings.Contains(line, id) {
					t.Fatalf("a feed of another room shows %s", line)
				}
			case <-deadline:
				return
			}
		}
	})
}
