package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
		info, err := w.js.Stream(ctx, "UNBOUND")
		if err != nil {
			t.Fatal(err)
		}
		if got := info.CachedInfo().State.Msgs; got != 1 {
			t.Errorf("stream UNBOUND holds %d messages, want 1", got)
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
