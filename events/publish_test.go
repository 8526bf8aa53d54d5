package events

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/internal/embednats"
)

func startJetStream(t *testing.T) (context.Context, jetstream.JetStream) {
	t.Helper()
	s := embednats.StartTest(t)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	if _, err := EnsureStreams(ctx, js, Subjects{}, StreamOptions{Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	return ctx, js
}

func streamMsgs(ctx context.Context, t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestPublishIntent(t *testing.T) {
	ctx, js := startJetStream(t)
	s := Subjects{}
	c := DefaultCatalog()

	t.Run("an undecodable intent is refused without publishing", func(t *testing.T) {
		_, _, err := PublishIntent(ctx, js, s, []byte(`{"out_order_id":"a.b"}`), c)
		var ie *InvalidError
		if !errors.As(err, &ie) {
			t.Fatalf("want *InvalidError, got %v", err)
		}
	})
	t.Run("an intent the catalog refuses is not published", func(t *testing.T) {
		data := intentJSON(t, func(m map[string]any) { m["payload"] = map[string]any{"point": 9, "seq": 1} })
		_, in, err := PublishIntent(ctx, js, s, data, c)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "payload.point" {
			t.Fatalf("want payload.point refused, got %v", err)
		}
		if in.OutOrderID != "1659497694000" {
			t.Fatalf("the decoded intent should come back for the caller's report, got %+v", in)
		}
	})
	if n := streamMsgs(ctx, t, js, s.IntentsStream()); n != 0 {
		t.Fatalf("%d intents stored after refusals", n)
	}
	t.Run("a valid intent is published unchanged under its ids with its order id as message id", func(t *testing.T) {
		data := intentJSON(t, nil)
		ack, in, err := PublishIntent(ctx, js, s, data, c)
		if err != nil {
			t.Fatal(err)
		}
		if ack.Stream != "COINSAGA_INTENTS" || ack.Duplicate || in.OutOrderID != "1659497694000" {
			t.Fatalf("ack %+v", ack)
		}
		st, _ := js.Stream(ctx, s.IntentsStream())
		msg, err := st.GetMsg(ctx, ack.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Subject != s.Intent(in.MgID, in.RoomID) || msg.Header.Get(HeaderMsgID) != in.OutOrderID || string(msg.Data) != string(data) {
			t.Fatalf("stored %s %v %s", msg.Subject, msg.Header, msg.Data)
		}
		again, _, err := PublishIntent(ctx, js, s, data, c)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.Sequence != ack.Sequence {
			t.Fatalf("republish %+v, want a duplicate of %d", again, ack.Sequence)
		}
	})
}

func publishStatus(ctx context.Context, t *testing.T, js jetstream.JetStream, e StatusEvent) []byte {
	t.Helper()
	body, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, Subjects{}.Status(e.MgID, e.RoomID, e.OutOrderID), body, jetstream.WithMsgID(e.MsgID())); err != nil {
		t.Fatal(err)
	}
	return body
}

func TestWatch(t *testing.T) {
	ctx, js := startJetStream(t)
	s := Subjects{}
	old := StatusEvent{OutOrderID: "o1", MgID: "mg", RoomID: "r1", State: StateAccepted, Seq: 1}
	publishStatus(ctx, t, js, old)

	t.Run("by default only events after the start are delivered", func(t *testing.T) {
		w, err := Watch(ctx, js, s, WatchFilter{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		next := StatusEvent{OutOrderID: "o1", MgID: "mg", RoomID: "r1", State: StateOrdered, Seq: 2}
		publishStatus(ctx, t, js, next)
		got, err := w.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Event.Seq != 2 || got.Subject != "coinsaga.status.mg.r1.o1" {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("DeliverAll starts at the oldest event and a filter skips other orders", func(t *testing.T) {
		publishStatus(ctx, t, js, StatusEvent{OutOrderID: "o2", MgID: "mg", RoomID: "r2", State: StateAccepted, Seq: 1})
		w, err := Watch(ctx, js, s, WatchFilter{MgID: "mg", OutOrderID: "o1", DeliverAll: true})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		for _, wantSeq := range []int{1, 2} {
			got, err := w.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got.Event.OutOrderID != "o1" || got.Event.Seq != wantSeq {
				t.Fatalf("got %+v, want o1 seq %d", got.Event, wantSeq)
			}
		}
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if got, err := w.Next(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want no more events for o1, got %+v %v", got, err)
		}
	})
	t.Run("a body that is not an event is reported and the watch goes on", func(t *testing.T) {
		w, err := Watch(ctx, js, s, WatchFilter{RoomID: "r3"})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if _, err := js.Publish(ctx, s.Status("mg", "r3", "o3"), []byte("not json")); err != nil {
			t.Fatal(err)
		}
		publishStatus(ctx, t, js, StatusEvent{OutOrderID: "o3", MgID: "mg", RoomID: "r3", State: StateAccepted, Seq: 1})
		bad, err := w.Next(ctx)
		if err == nil || string(bad.Raw) != "not json" {
			t.Fatalf("want a decode error with the raw body, got %+v %v", bad, err)
		}
		good, err := w.Next(ctx)
		if err != nil || good.Event.OutOrderID != "o3" {
			t.Fatalf("got %+v %v", good, err)
		}
	})
	t.Run("a cancelled context ends Next with the context's error", func(t *testing.T) {
		w, err := Watch(ctx, js, s, WatchFilter{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := w.Next(cancelled); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("Next after Stop says the watch is closed", func(t *testing.T) {
		w, err := Watch(ctx, js, s, WatchFilter{})
		if err != nil {
			t.Fatal(err)
		}
		w.Stop()
		w.Stop()
		if _, err := w.Next(ctx); !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a filter id that is not a subject token is refused", func(t *testing.T) {
		if _, err := Watch(ctx, js, s, WatchFilter{MgID: "a.>"}); err == nil || !strings.Contains(err.Error(), "mg_id") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestDeadLetterRoundTripThroughTheStream(t *testing.T) {
	ctx, js := startJetStream(t)
	s := Subjects{}
	failedAt := time.Now().UTC()
	msg := &nats.Msg{
		Subject: s.DeadLetter("mg", "r1", "o1"),
		Data:    intentJSON(t, nil),
		Header: DeadLetterHeaders(DeadLetter{Reason: ReasonNeedsAttention, Error: "cancelpay: busy", State: string(StateNeedsAttention),
			Attempts: 12, FailedAt: failedAt, OriginalSubject: s.Intent("mg", "r1")}),
	}
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, s.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	d := DeadLetterFromMsg(raw)
	if d.Reason != ReasonNeedsAttention || d.Attempts != 12 || !d.FailedAt.Equal(failedAt) || d.OutOrderID != "o1" ||
		d.OriginalSubject != "coinsaga.intents.mg.r1" || string(d.Data) != string(msg.Data) || d.StreamSeq != ack.Sequence {
		t.Fatalf("dead letter %+v", d)
	}
}

func TestCheckSubject(t *testing.T) {
	in := Intent{OutOrderID: "o1", MgID: "mg", RoomID: "9009"}
	acme := Subjects{Prefix: "acme.pay"}
	for _, c := range []struct {
		name    string
		s       Subjects
		subject string
		says    []string // "" list: accepted
	}{
		{"the subject built from the body is accepted", Subjects{}, "coinsaga.intents.mg.9009", nil},
		{"a custom prefix's subject built from the body is accepted", acme, "acme.pay.intents.mg.9009", nil},
		{"another room's subject is refused naming both rooms", Subjects{}, "coinsaga.intents.mg.1234",
			[]string{"room_id 1234", "room_id 9009", "coinsaga.intents.mg.9009"}},
		{"another game's subject is refused naming both games", Subjects{}, "coinsaga.intents.other.9009",
			[]string{"mg_id other", "mg_id mg", "coinsaga.intents.mg.9009"}},
		{"a subject with an extra token is refused", Subjects{}, "coinsaga.intents.mg.9009.x",
			[]string{"coinsaga.intents.mg.9009.x is not coinsaga.intents.<mg_id>.<room_id>"}},
		{"another prefix's subject is refused", acme, "coinsaga.intents.mg.9009",
			[]string{"is not acme.pay.intents.<mg_id>.<room_id>"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := in.CheckSubject(c.s, c.subject)
			if c.says == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("want an *InvalidError, got %v", err)
			}
			for _, want := range c.says {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q does not say %q", err, want)
				}
			}
		})
	}
}

func TestPublish(t *testing.T) {
	ctx, js := startJetStream(t)
	s := Subjects{}
	valid, err := DecodeIntent(intentJSON(t, nil))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("an intent the worker would refuse is not published", func(t *testing.T) {
		bad := valid
		bad.Payment.Amount = 0
		_, err := Publish(ctx, js, s, bad)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "payment.amount" {
			t.Fatalf("want payment.amount refused, got %v", err)
		}
		bad = valid
		bad.Payload = json.RawMessage(`{"point":`)
		if _, err := Publish(ctx, js, s, bad); !errors.As(err, new(*InvalidError)) {
			t.Fatalf("want a payload that is not JSON refused as invalid, got %v", err)
		}
		if n := streamMsgs(ctx, t, js, s.IntentsStream()); n != 0 {
			t.Fatalf("%d intents stored", n)
		}
	})
	t.Run("a valid intent is stored on its room's subject under its order id and decodes as itself", func(t *testing.T) {
		res, err := Publish(ctx, js, s, valid)
		if err != nil {
			t.Fatal(err)
		}
		want := PublishResult{OutOrderID: valid.OutOrderID, Subject: "coinsaga.intents.1468180338417074177.9009", Stream: "COINSAGA_INTENTS", Sequence: res.Sequence}
		if res != want || res.Sequence == 0 {
			t.Fatalf("result %+v, want %+v", res, want)
		}
		st, _ := js.Stream(ctx, s.IntentsStream())
		msg, err := st.GetMsg(ctx, res.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeIntent(msg.Data)
		if err != nil || back.Hash() != valid.Hash() || msg.Subject != res.Subject || msg.Header.Get(HeaderMsgID) != valid.OutOrderID {
			t.Fatalf("stored %s %v %s (%v)", msg.Subject, msg.Header, msg.Data, err)
		}
		again, err := Publish(ctx, js, s, valid)
		if err != nil || !again.Duplicate || again.Sequence != res.Sequence {
			t.Fatalf("republish %+v %v, want a duplicate of %d", again, err, res.Sequence)
		}
	})
}

func TestWatchStarts(t *testing.T) {
	ctx, js := startJetStream(t)
	s := Subjects{}
	publishStatus(ctx, t, js, StatusEvent{OutOrderID: "o1", MgID: "mg", RoomID: "r1", State: StateAccepted, Seq: 1})
	publishStatus(ctx, t, js, StatusEvent{OutOrderID: "o1", MgID: "mg", RoomID: "r1", State: StateOrdered, Seq: 2})
	publishStatus(ctx, t, js, StatusEvent{OutOrderID: "o2", MgID: "mg", RoomID: "r1", State: StateAccepted, Seq: 1})
	st, err := js.Stream(ctx, s.StatusStream())
	if err != nil {
		t.Fatal(err)
	}
	second, err := st.GetMsg(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	first := func(t *testing.T, f WatchFilter) StatusEvent {
		t.Helper()
		w, err := Watch(ctx, js, s, f)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		got, err := w.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got.Event
	}
	t.Run("Since starts at the first event stored at or after it", func(t *testing.T) {
		if got := first(t, WatchFilter{Since: second.Time}); got.OutOrderID != "o1" || got.Seq != 2 {
			t.Errorf("first event %s seq %d, want o1 seq 2", got.OutOrderID, got.Seq)
		}
	})
	t.Run("LastPerOrder starts at an order's current state", func(t *testing.T) {
		if got := first(t, WatchFilter{OutOrderID: "o1", LastPerOrder: true}); got.Seq != 2 || got.State != StateOrdered {
			t.Errorf("first event seq %d %s, want seq 2 ordered", got.Seq, got.State)
		}
	})
	t.Run("two starting points are refused", func(t *testing.T) {
		if _, err := Watch(ctx, js, s, WatchFilter{DeliverAll: true, Since: second.Time}); err == nil {
			t.Error("DeliverAll with Since was accepted")
		}
	})
}

func TestWaitTerminal(t *testing.T) {
	ctx, js := startJetStream(t)
	s := Subjects{}
	ev := func(id string, seq int, state State) StatusEvent {
		return StatusEvent{OutOrderID: id, MgID: "mg", RoomID: "r1", State: state, Seq: seq}
	}
	wait := func(id string) <-chan StatusEvent {
		got := make(chan StatusEvent, 1)
		go func() {
			e, err := WaitTerminal(ctx, js, s, id)
			if err != nil {
				t.Errorf("WaitTerminal(%s): %v", id, err)
			}
			got <- e
		}()
		return got
	}

	t.Run("an order that ended before the call is returned at once", func(t *testing.T) {
		publishStatus(ctx, t, js, ev("done", 1, StateAccepted))
		publishStatus(ctx, t, js, ev("done", 2, StateFailed))
		if got := <-wait("done"); got.Seq != 2 || got.State != StateFailed {
			t.Errorf("got seq %d %s, want seq 2 failed", got.Seq, got.State)
		}
	})
	t.Run("an order still running is waited for", func(t *testing.T) {
		publishStatus(ctx, t, js, ev("running", 1, StateAccepted))
		got := wait("running")
		publishStatus(ctx, t, js, ev("running", 2, StateDebited))
		publishStatus(ctx, t, js, ev("running", 3, StateCompleted))
		if e := <-got; e.Seq != 3 || e.State != StateCompleted {
			t.Errorf("got seq %d %s, want seq 3 completed", e.Seq, e.State)
		}
	})
	t.Run("a replayed order's earlier failure does not count once it runs again", func(t *testing.T) {
		publishStatus(ctx, t, js, ev("replayed", 1, StateFailed))
		publishStatus(ctx, t, js, ev("replayed", 2, StateDebited)) // the replay runs
		got := wait("replayed")
		publishStatus(ctx, t, js, ev("replayed", 3, StateCompleted))
		if e := <-got; e.Seq != 3 || e.State != StateCompleted {
			t.Errorf("got seq %d %s, want seq 3 completed", e.Seq, e.State)
		}
	})
	t.Run("a body that is not an event is skipped", func(t *testing.T) {
		if _, err := js.Publish(ctx, s.Status("mg", "r1", "noisy"), []byte("not json")); err != nil {
			t.Fatal(err)
		}
		got := wait("noisy")
		publishStatus(ctx, t, js, ev("noisy", 1, StateRejected))
		if e := <-got; e.State != StateRejected {
			t.Errorf("got %s, want rejected", e.State)
		}
	})
	t.Run("the context bounds the wait", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := WaitTerminal(short, js, s, "never"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want the deadline", err)
		}
	})
	t.Run("an id that is not a subject token is refused", func(t *testing.T) {
		if _, err := WaitTerminal(ctx, js, s, "a.>"); err == nil {
			t.Error("accepted")
		}
	})
}
