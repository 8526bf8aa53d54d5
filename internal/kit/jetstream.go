package kit

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
)

// JetStream is an embedded nats-server with JetStream on 127.0.0.1 and a
// port of its own, and a connection to it.
type JetStream struct {
	Server   *embednats.Server
	URL      string
	Conn     *nats.Conn
	JS       jetstream.JetStream
	Subjects events.Subjects // the default prefix, as serve uses
}

// StartJetStream starts a server (tune may change its options) and
// connects to it; both end with the test.
func StartJetStream(t testing.TB, tune ...func(*embednats.Options)) *JetStream {
	t.Helper()
	return ConnectJetStream(t, embednats.StartTest(t, tune...))
}

// ConnectJetStream connects to a server the test started itself.
func ConnectJetStream(t testing.TB, ns *embednats.Server) *JetStream {
	t.Helper()
	j := Connect(t, ns.ClientURL())
	j.Server = ns
	return j
}

// Connect connects to the JetStream at url (a child process's, say, or a
// cluster's comma-separated URLs) with opts until the test ends; Server
// is nil.
func Connect(t testing.TB, url string, opts ...nats.Option) *JetStream {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &JetStream{URL: url, Conn: nc, JS: js}
}

// EnsureStreams creates coinsaga's streams, as a worker would, for tests
// that run the tools without one.
func (j *JetStream) EnsureStreams(t testing.TB) *JetStream {
	t.Helper()
	if _, err := events.EnsureStreams(context.Background(), j.JS, j.Subjects, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	return j
}

// Publish sends data to subject through JetStream with msgID as its
// de-duplication id (none when empty), the way a game server does.
func (j *JetStream) Publish(t testing.TB, subject string, data []byte, msgID string) *jetstream.PubAck {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = data
	if msgID != "" {
		m.Header.Set(events.HeaderMsgID, msgID)
	}
	ack, err := j.JS.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatalf("publish to %s: %v", subject, err)
	}
	return ack
}

// PublishIntent sends each intent on its subject, its out_order_id as its
// de-duplication id.
func (j *JetStream) PublishIntent(t testing.TB, ins ...events.Intent) {
	t.Helper()
	for _, in := range ins {
		data, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		j.Publish(t, j.Subjects.Intent(in.MgID, in.RoomID), data, in.OutOrderID)
	}
}

// Replay sends a dead letter's intent back to its subject under msgID,
// marked as a replay, as `coinsaga dlq replay` does.
func (j *JetStream) Replay(t testing.TB, dl events.DeadLetter, msgID string) {
	t.Helper()
	m := nats.NewMsg(dl.OriginalSubject)
	m.Data = dl.Data
	m.Header.Set(events.HeaderMsgID, msgID)
	m.Header.Set(events.HeaderReplay, "1")
	if _, err := j.JS.PublishMsg(context.Background(), m); err != nil {
		t.Fatalf("replay %s: %v", msgID, err)
	}
}

// StreamState returns how many messages a stream holds and its last seq.
func (j *JetStream) StreamState(t testing.TB, name string) (msgs, lastSeq uint64) {
	t.Helper()
	s, err := j.JS.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs, info.State.LastSeq
}

// Messages returns every message a stream holds, oldest first.
func (j *JetStream) Messages(t testing.TB, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	stream, err := j.JS.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		out = append(out, m)
	}
	return out
}

// DeadLetters returns every dead letter the stream holds, oldest first.
func (j *JetStream) DeadLetters(t testing.TB) []events.DeadLetter {
	t.Helper()
	var out []events.DeadLetter
	for _, m := range j.Messages(t, j.Subjects.DLQStream()) {
		out = append(out, events.DeadLetterFromMsg(m))
	}
	return out
}

// WaitDeadLetter waits until the stream holds a dead letter about id.
func (j *JetStream) WaitDeadLetter(t testing.TB, id string, timeout time.Duration) events.DeadLetter {
	t.Helper()
	var found events.DeadLetter
	Eventually(t, timeout, "a dead letter for "+id, func() bool {
		for _, dl := range j.DeadLetters(t) {
			if dl.OutOrderID == id {
				found = dl
				return true
			}
		}
		return false
	})
	return found
}

// WaitTerminal follows the status stream from its start until every id
// has announced a terminal state as its latest: proof that the outbox
// delivered the news, across restarts and crashes too. It needs no
// subscription made before the orders ran.
func (j *JetStream) WaitTerminal(t testing.TB, timeout time.Duration, ids ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w, err := events.Watch(ctx, j.JS, j.Subjects, events.WatchFilter{DeliverAll: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	last := map[string]events.StatusEvent{}
	terminal := 0
	for terminal < len(want) {
		ev, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("%d of %d orders announced a terminal state before %v", terminal, len(want), err)
		}
		id := ev.Event.OutOrderID
		if !want[id] || ev.Event.Seq <= last[id].Seq {
			continue
		}
		wasTerminal := last[id].State.Terminal()
		last[id] = ev.Event
		switch isT := ev.Event.State.Terminal(); {
		case isT && !wasTerminal:
			terminal++
		case !isT && wasTerminal:
			terminal--
		}
	}
}
