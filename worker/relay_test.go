package worker

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/storetest"
)

func TestRelay(t *testing.T) {
	t.Run("a failed publish holds the cursor and is retried until it goes out", func(t *testing.T) {
		w, st := relayWorker(t)
		ctx := t.Context()
		status := w.cfg.Subjects.Status("mg", "room", "o-1")
		msgs := []store.Message{
			{Subject: status, MsgID: "o-1:1", Data: []byte(`{"seq":1}`)},
			{Subject: "unbound.o-1", MsgID: "o-1:x", Data: []byte(`no stream takes this yet`)},
			{Subject: status, MsgID: "o-1:2", Data: []byte(`{"seq":2}`)},
		}
		if _, err := st.Accept(ctx, []store.Accept{{Order: storetest.Order("o-1", time.Now()), Outbox: msgs}}); err != nil {
			t.Fatal(err)
		}
		stored, err := st.PendingOutbox(ctx, 0, 10)
		if err != nil || len(stored) != 3 {
			t.Fatalf("outbox = %+v, %v; want three messages", stored, err)
		}

		if _, err := w.relayOnce(ctx); err == nil {
			t.Fatal("relayOnce reported no error for a message no stream takes")
		}
		if w.outbox.cursor != stored[0].ID {
			t.Errorf("cursor = %d, want %d: the message before the failed one", w.outbox.cursor, stored[0].ID)
		}
		w.outbox.wait(ctx)
		left, err := st.PendingOutbox(ctx, 0, 10)
		if err != nil || len(left) != 1 || left[0].MsgID != "o-1:x" {
			t.Fatalf("outbox after the first pass = %+v, %v; want only the failed message", left, err)
		}

		// The next pass tries it again, and it goes out once a stream takes it.
		if _, err := w.relayOnce(ctx); err == nil {
			t.Fatal("second pass: no error while the message still has no stream")
		}
		if _, err := w.js.CreateStream(ctx, jetstream.StreamConfig{Name: "UNBOUND", Subjects: []string{"unbound.>"}, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
		if n, err := w.relayOnce(ctx); err != nil || n != 1 {
			t.Fatalf("third pass: relayed %d, %v; want the one message", n, err)
		}
		if w.outbox.cursor != stored[1].ID {
			t.Errorf("cursor = %d, want %d", w.outbox.cursor, stored[1].ID)
		}
		w.outbox.wait(ctx)
		if left, err := st.PendingOutbox(ctx, 0, 10); err != nil || len(left) != 0 {
			t.Errorf("outbox after the message went out = %+v, %v; want empty", left, err)
		}
		if got := streamMsgs(t, w, "UNBOUND"); got != 1 {
			t.Errorf("stream UNBOUND holds %d messages, want 1", got)
		}
	})

	t.Run("a dead letter larger than the server takes goes out truncated", func(t *testing.T) {
		w, st := relayWorker(t)
		ctx := t.Context()
		body := bytes.Repeat([]byte("x"), int(w.cfg.Conn.MaxPayload()))
		dl := store.Message{Subject: w.cfg.Subjects.DeadLetter("mg", "room", "o-2"), MsgID: "o-2:dlq:2",
			Header: map[string]string{events.HeaderReason: string(events.ReasonRejected)}, Data: body}
		if _, err := st.Accept(ctx, []store.Accept{{Order: storetest.Order("o-2", time.Now()), Outbox: []store.Message{dl}}}); err != nil {
			t.Fatal(err)
		}
		if n, err := w.relayOnce(ctx); err != nil || n != 1 {
			t.Fatalf("relayed %d, %v; want the dead letter out", n, err)
		}
		w.outbox.wait(ctx)
		if left, err := st.PendingOutbox(ctx, 0, 10); err != nil || len(left) != 0 {
			t.Errorf("outbox = %d messages, %v; want empty", len(left), err)
		}
		stream, err := w.js.Stream(ctx, w.cfg.Subjects.DLQStream())
		if err != nil {
			t.Fatal(err)
		}
		got, err := stream.GetLastMsgForSubject(ctx, dl.Subject)
		if err != nil {
			t.Fatal(err)
		}
		if h := got.Header.Get(events.HeaderTruncated); h != strconv.Itoa(len(body)) {
			t.Errorf("%s = %q, want %d", events.HeaderTruncated, h, len(body))
		}
		if len(got.Data) == 0 || len(got.Data) >= len(body) {
			t.Errorf("body is %d bytes, want the first bytes of %d", len(got.Data), len(body))
		}
	})

	t.Run("a message the server can never take is dropped and those after it go out", func(t *testing.T) {
		w, st := relayWorker(t)
		ctx := t.Context()
		status := w.cfg.Subjects.Status("mg", "room", "o-3")
		msgs := []store.Message{
			{Subject: status, MsgID: "o-3:1", Data: bytes.Repeat([]byte("x"), int(w.cfg.Conn.MaxPayload())+1)},
			{Subject: status, MsgID: "o-3:2", Data: []byte(`{"seq":2}`)},
		}
		if _, err := st.Accept(ctx, []store.Accept{{Order: storetest.Order("o-3", time.Now()), Outbox: msgs}}); err != nil {
			t.Fatal(err)
		}
		stored, err := st.PendingOutbox(ctx, 0, 10)
		if err != nil || len(stored) != 2 {
			t.Fatalf("outbox = %d messages, %v; want two", len(stored), err)
		}
		if _, err := w.relayOnce(ctx); err != nil {
			t.Fatalf("relayOnce: %v", err)
		}
		if w.outbox.cursor != stored[1].ID {
			t.Errorf("cursor = %d, want %d: past both", w.outbox.cursor, stored[1].ID)
		}
		w.outbox.wait(ctx)
		if left, err := st.PendingOutbox(ctx, 0, 10); err != nil || len(left) != 0 {
			t.Errorf("outbox = %d messages, %v; want empty", len(left), err)
		}
		if got := streamMsgs(t, w, w.cfg.Subjects.StatusStream()); got != 1 {
			t.Errorf("status stream holds %d messages, want the one that fits", got)
		}
	})

	t.Run("a flush at shutdown waits for the deletes", func(t *testing.T) {
		w, st := relayWorker(t)
		ctx := context.Background()
		var reqs []store.Accept
		for i := range 700 { // more than one relay batch
			id := fmt.Sprintf("f-%03d", i)
			reqs = append(reqs, store.Accept{Order: storetest.Order(id, time.Now()),
				Outbox: []store.Message{{Subject: w.cfg.Subjects.Status("mg", "room", "f"), MsgID: id, Data: []byte(`{}`)}}})
		}
		if _, err := st.Accept(ctx, reqs); err != nil {
			t.Fatal(err)
		}
		w.flushOutbox(10 * time.Second)
		if left, err := st.PendingOutbox(ctx, 0, 10); err != nil || len(left) != 0 {
			t.Errorf("outbox after the flush holds %d messages, %v; want none", len(left), err)
		}
	})
}

// streamMsgs is how many messages stream holds on the worker's JetStream.
func streamMsgs(t *testing.T, w *Worker, stream string) uint64 {
	t.Helper()
	info, err := w.js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return info.CachedInfo().State.Msgs
}
