package main

import (
	"context"
	"encoding/json"
	"github.com/coinsaga/coinsaga/internal/kit"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
)

// lines collects what a command writes, line by line, and lets a test
// wait for a line.
type lines struct {
	mu      sync.Mutex
	partial string
	all     []string
	added   chan struct{}
}

func newLines() *lines { return &lines{added: make(chan struct{}, 1)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial += string(p)
	for {
		i := strings.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.all = append(l.all, l.partial[:i])
		l.partial = l.partial[i+1:]
	}
	select {
	case l.added <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *lines) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}

// wait waits until a line containing want has been written, and returns
// it.
func (l *lines) wait(t *testing.T, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		for _, line := range l.snapshot() {
			if strings.Contains(line, want) {
				return line
			}
		}
		select {
		case <-l.added:
		case <-deadline.C:
			t.Fatalf("no line with %q within %s; have:\n%s", want, timeout, strings.Join(l.snapshot(), "\n"))
		}
	}
}

// watching runs `coinsaga watch args...` until it ends or the test does.
type watching struct {
	stdout, stderr *lines
	done           chan error
	cancel         context.CancelFunc
}

func startWatch(t *testing.T, url string, args ...string) *watching {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watching{stdout: newLines(), stderr: newLines(), done: make(chan error, 1), cancel: cancel}
	go func() {
		w.done <- runWatch(ctx, append([]string{"--nats-url", url}, args...), w.stdout, w.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	return w
}

// exit waits for the watch to end by itself and returns its error.
func (w *watching) exit(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-w.done:
		w.done <- err // for the cleanup
		return err
	case <-time.After(timeout):
		t.Fatalf("watch still running after %s; stdout:\n%s", timeout, strings.Join(w.stdout.snapshot(), "\n"))
		return nil
	}
}

func statusEvent(id string, seq int, state events.State) events.StatusEvent {
	return events.StatusEvent{OutOrderID: id, MgID: "mg", RoomID: "r1", FromUID: "001", State: state, Seq: seq,
		At: time.Date(2026, 12, 2, 6, 19, 13, 922_000_000, time.UTC), Provider: "mogs", Amount: 10}
}

func (e *publishEnv) publishStatus(t *testing.T, ev events.StatusEvent) *jetstream.PubAck {
	t.Helper()
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := e.js.Publish(context.Background(), e.s.Status(ev.MgID, ev.RoomID, ev.OutOrderID), body, jetstream.WithMsgID(ev.MsgID()))
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

func TestWatchRefusesFlagsThatContradict(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"--all with --since is refused", []string{"--all", "--since", "1h"}, "give --all or --since, not both"},
		{"--follow without --order is refused", []string{"--follow"}, "--follow needs --order"},
		{"an argument is refused", []string{"o1"}, `unexpected argument "o1"`},
		{"a bad --since is refused naming it", []string{"--since", "soon"}, `--since "soon": want a duration (10m, 2h) or an RFC 3339 time`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr strings.Builder
			err := runWatch(context.Background(), append([]string{"--nats-url", "nats://127.0.0.1:1"}, c.args...), &strings.Builder{}, &stderr)
			if err == nil || !strings.Contains(err.Error()+stderr.String(), c.want) {
				t.Errorf("error %v, stderr %q; want %q", err, stderr.String(), c.want)
			}
		})
	}
}

func TestWatchAnOrderEndsWithIt(t *testing.T) {
	t.Parallel()
	e := startPublishEnv(t)
	t.Run("an order that is done already is printed and the watch exits 0", func(t *testing.T) {
		e.publishStatus(t, statusEvent("done", 1, events.StateAccepted))
		e.publishStatus(t, statusEvent("done", 2, events.StateCompleted))
		w := startWatch(t, e.url, "--order", "done")
		if err := w.exit(t, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if got := w.stdout.snapshot(); len(got) != 1 || !strings.Contains(got[0], "seq 2  completed") {
			t.Errorf("printed %q, want only its terminal event", got)
		}
	})
	t.Run("an order still running is followed to its terminal event", func(t *testing.T) {
		e.publishStatus(t, statusEvent("running", 1, events.StateAccepted))
		w := startWatch(t, e.url, "--order", "running", "--json")
		w.stdout.wait(t, `"seq":1`, 10*time.Second)
		e.publishStatus(t, statusEvent("running", 2, events.StateDebited))
		e.publishStatus(t, statusEvent("running", 3, events.StateCompensated))
		e.publishStatus(t, statusEvent("other", 1, events.StateAccepted))
		if err := w.exit(t, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		got := w.stdout.snapshot()
		if len(got) != 3 || !strings.Contains(got[2], `"state":"compensated"`) {
			t.Errorf("printed %q, want seq 1 to 3 as JSON", got)
		}
	})
	t.Run("--follow keeps watching after the terminal event", func(t *testing.T) {
		e.publishStatus(t, statusEvent("replayed", 1, events.StateFailed))
		w := startWatch(t, e.url, "--order", "replayed", "--follow")
		w.stdout.wait(t, "seq 1  failed", 10*time.Second)
		e.publishStatus(t, statusEvent("replayed", 2, events.StateDebited)) // an operator replayed it
		w.stdout.wait(t, "seq 2  debited", 10*time.Second)
	})
	t.Run("a message that is not an event is told on stderr and the watch goes on", func(t *testing.T) {
		if _, err := e.js.Publish(context.Background(), e.s.Status("mg", "r1", "noisy"), []byte("not json")); err != nil {
			t.Fatal(err)
		}
		w := startWatch(t, e.url, "--order", "noisy")
		w.stderr.wait(t, "coinsaga watch: skipped status event", 10*time.Second)
		e.publishStatus(t, statusEvent("noisy", 1, events.StateRejected))
		if err := w.exit(t, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("--since starts at the first event stored since then", func(t *testing.T) {
		e.publishStatus(t, statusEvent("since", 1, events.StateAccepted))
		second := e.publishStatus(t, statusEvent("since", 2, events.StateOrdered))
		e.publishStatus(t, statusEvent("since", 3, events.StateRejected))
		st, err := e.js.Stream(context.Background(), e.s.StatusStream())
		if err != nil {
			t.Fatal(err)
		}
		m, err := st.GetMsg(context.Background(), second.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ since, first string }{
			{m.Time.Format(time.RFC3339Nano), "seq 2  ordered"},
			{"1h", "seq 1  accepted"},
		} {
			w := startWatch(t, e.url, "--order", "since", "--since", c.since)
			if err := w.exit(t, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if got := w.stdout.snapshot(); len(got) == 0 || !strings.Contains(got[0], c.first) || !strings.Contains(got[len(got)-1], "rejected") {
				t.Errorf("--since %s printed %q, want %q first and rejected last", c.since, got, c.first)
			}
		}
	})
}

func TestWatchTellsWhenNATSGoesAndComesBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A reserved port: the server comes back on it, and nothing else can
	// take it while the server is down.
	addr := kit.ReserveAddr(t)
	ns, err := embednats.Start(embednats.Options{Listen: addr, StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	url := ns.ClientURL()
	_, port, _ := net.SplitHostPort(addr)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			ns.Shutdown()
		}
	})
	e := &publishEnv{url: url}
	connect := func() { e.js = kit.Connect(t, url).JS }
	connect()
	if _, err := events.EnsureStreams(context.Background(), e.js, e.s, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	e.publishStatus(t, statusEvent("o1", 1, events.StateAccepted))
	w := startWatch(t, url, "--all")
	w.stdout.wait(t, "seq 1  accepted", 10*time.Second)
	if got := w.stderr.snapshot(); len(got) != 0 {
		t.Fatalf("stderr before any trouble: %q", got)
	}

	ns.Shutdown()
	stopped = true
	lost := w.stderr.wait(t, "lost the connection to NATS", 10*time.Second)
	ns, err = embednats.Start(embednats.Options{Listen: "127.0.0.1:" + port, StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	stopped = false
	back := w.stderr.wait(t, "reconnected to NATS at nats://127.0.0.1:"+port, 20*time.Second)

	connect()
	e.publishStatus(t, statusEvent("o1", 2, events.StateOrdered))
	w.stdout.wait(t, "seq 2  ordered", 30*time.Second)
	t.Logf("stderr:\n%s", strings.Join(w.stderr.snapshot(), "\n"))
	t.Run("the drop and the return are one line each on stderr", func(t *testing.T) {
		if got := w.stderr.snapshot(); len(got) != 2 || got[0] != lost || got[1] != back {
			t.Errorf("stderr %q", got)
		}
	})
	t.Run("events after the return are printed", func(t *testing.T) {
		if got := w.stdout.snapshot(); len(got) != 2 {
			t.Errorf("stdout %q, want seq 1 and 2", got)
		}
	})
	t.Run("ending the watch says nothing of a lost connection", func(t *testing.T) {
		w.cancel()
		if err := w.exit(t, 10*time.Second); err != nil {
			t.Error(err)
		}
		if got := w.stderr.snapshot(); len(got) != 2 {
			t.Errorf("stderr %q", got)
		}
	})
}
