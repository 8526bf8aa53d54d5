package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/worker"
)

// Dead letters of intents too large to be carried whole (issue 12,
// defect 6): the dead letter is the intent plus a few hundred bytes of
// headers, so an intent near the limit cannot go out as one.

func TestAnIntentJustUnderTheMaxPayloadIsDeadLetteredOnce(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	e := startEnv(t, logs.option)
	// 1,048,376 bytes, plus its Nats-Msg-Id header, fits the server's
	// 1 MiB; with the dead-letter headers it does not.
	const size = 1_048_376
	body := paddedBody(`{"out_order_id":"big","pad":"`, size, `"}`)
	e.publish(e.subjects.Intent("g", "r"), body, "big-1")

	dl := e.waitDeadLetterWhere(t, 10*time.Second, "the oversize intent", func(d events.DeadLetter) bool {
		return d.Reason == events.ReasonInvalid
	})
	t.Run("its dead letter says why and that it holds only the intent's first bytes", func(t *testing.T) {
		if dl.Subject != e.subjects.DeadLetterInvalid() {
			t.Errorf("subject %s, want %s", dl.Subject, e.subjects.DeadLetterInvalid())
		}
		if !strings.Contains(dl.Error, "exceeds") {
			t.Errorf("error header %q does not say the intent is oversize", dl.Error)
		}
		if dl.TruncatedFrom != size {
			t.Errorf("%s says %d, want the original size %d", events.HeaderTruncated, dl.TruncatedFrom, size)
		}
		if len(dl.Data) == 0 || len(dl.Data) >= size || !bytes.HasPrefix(body, dl.Data) {
			t.Errorf("body is %d bytes, want a non-empty prefix of the %d-byte intent", len(dl.Data), size)
		}
		if logs.Line("dead letter truncated") == "" {
			t.Errorf("no log line says the dead letter was truncated; log:\n%s", logs)
		}
	})

	ev := e.run(intent(events.ProviderMidas, 5), 10*time.Second) // behind what the test published before
	t.Run("intents after it are still processed", func(t *testing.T) {
		if ev.State != events.StateCompleted {
			t.Fatalf("good intent ended %s, want completed", ev.State)
		}
	})
	t.Run("the intent is acked after one delivery and dead-lettered once", func(t *testing.T) {
		if n := e.waitIntentsDrained(t, 5*time.Second); n != 0 {
			t.Errorf("%d intents were delivered more than once", n)
		}
		if n := len(e.deadLetters()); n != 1 {
			t.Errorf("%d dead letters, want 1", n)
		}
	})
}

func TestADeadLetterTooLargeForTheServerGoesOutThroughTheOutboxTruncated(t *testing.T) {
	t.Parallel()
	// A valid-looking intent may be up to events.MaxIntentSize; a server
	// run with a smaller max_payload takes the intent but not its dead
	// letter, which waits in the outbox ahead of every later status event.
	const maxPayload = 32 << 10
	ns := embednats.StartTest(t, func(o *embednats.Options) { o.MaxPayload = maxPayload })
	logs := &logBuffer{}
	e := startEnvOn(t, ns, logs.option)

	big := intent(events.ProviderMOGS, 0) // amount 0: rejected
	body := padIntent(t, big, maxPayload-200)
	e.publish(e.subjects.Intent(big.MgID, big.RoomID), body, big.OutOrderID)
	small := intent(events.ProviderMOGS, 0)
	e.publishIntent(small)
	ev := e.run(intent(events.ProviderMidas, 5), 10*time.Second) // behind what the test published before

	t.Run("status events of later orders still go out", func(t *testing.T) {
		if ev.State != events.StateCompleted {
			t.Fatalf("good intent ended %s, want completed", ev.State)
		}
	})
	t.Run("the rejected order's dead letter carries the intent's first bytes and says so", func(t *testing.T) {
		dl := e.waitDeadLetterWhere(t, 10*time.Second, big.OutOrderID, func(d events.DeadLetter) bool { return d.OutOrderID == big.OutOrderID })
		if dl.Reason != events.ReasonRejected {
			t.Errorf("reason %q, want rejected", dl.Reason)
		}
		if dl.TruncatedFrom != len(body) {
			t.Errorf("%s says %d, want the original size %d", events.HeaderTruncated, dl.TruncatedFrom, len(body))
		}
		if len(dl.Data) == 0 || len(dl.Data) >= len(body) || !bytes.HasPrefix(body, dl.Data) {
			t.Errorf("body is %d bytes, want a non-empty prefix of the %d-byte intent", len(dl.Data), len(body))
		}
	})
	t.Run("a dead letter that fits still carries the intent byte for byte", func(t *testing.T) {
		dl := e.waitDeadLetterWhere(t, 10*time.Second, small.OutOrderID, func(d events.DeadLetter) bool { return d.OutOrderID == small.OutOrderID })
		want, _ := json.Marshal(small)
		if dl.TruncatedFrom != 0 || !bytes.Equal(dl.Data, want) {
			t.Errorf("dead letter truncated from %d with body %q, want the whole intent %q", dl.TruncatedFrom, dl.Data, want)
		}
	})
}

func TestADeadLetterTooLargeForTheDeadLetterStreamGoesOutTruncated(t *testing.T) {
	t.Parallel()
	// An operator may cap the dead-letter stream's max_msg_size below the
	// server's max_payload: then JetStream, not the client, refuses.
	e := startEnv(t)
	const maxMsgSize = 8 << 10
	ctx := context.Background()
	stream, err := e.js.Stream(ctx, e.subjects.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	cfg.MaxMsgSize = maxMsgSize
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}

	garbage := paddedBody("not json ", 12<<10, "")
	e.publish(e.subjects.Intent("g", "r"), garbage, "garbage-1")
	rejected := intent(events.ProviderMOGS, 0)
	body := padIntent(t, rejected, 12<<10)
	e.publish(e.subjects.Intent(rejected.MgID, rejected.RoomID), body, rejected.OutOrderID)
	ev := e.run(intent(events.ProviderMidas, 5), 10*time.Second) // behind what the test published before

	for _, c := range []struct {
		name  string
		match func(events.DeadLetter) bool
		size  int
	}{
		{"an invalid intent's dead letter is cut to the stream's limit",
			func(d events.DeadLetter) bool { return d.Reason == events.ReasonInvalid }, len(garbage)},
		{"a rejected order's dead letter is cut to the stream's limit",
			func(d events.DeadLetter) bool { return d.OutOrderID == rejected.OutOrderID }, len(body)},
	} {
		t.Run(c.name, func(t *testing.T) {
			dl := e.waitDeadLetterWhere(t, 10*time.Second, c.name, c.match)
			if dl.TruncatedFrom != c.size || len(dl.Data) == 0 || len(dl.Data) >= maxMsgSize {
				t.Errorf("truncated from %d to %d bytes, want from %d to under %d", dl.TruncatedFrom, len(dl.Data), c.size, maxMsgSize)
			}
		})
	}
	t.Run("later orders still complete", func(t *testing.T) {
		if ev.State != events.StateCompleted {
			t.Fatalf("good intent ended %s, want completed", ev.State)
		}
		if n := e.waitIntentsDrained(t, 5*time.Second); n != 0 {
			t.Errorf("%d intents were delivered more than once, want each dead letter to fit at the first try", n)
		}
	})
}

func TestADeadLetterThatCannotBePublishedIsLoggedAndRetried(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	e := startEnv(t, logs.option)
	ctx := context.Background()
	dlq, err := e.js.Stream(ctx, e.subjects.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	dlqConfig := dlq.CachedInfo().Config
	if err := e.js.DeleteStream(ctx, e.subjects.DLQStream()); err != nil {
		t.Fatal(err)
	}
	e.publish(e.subjects.Intent("g", "r"), []byte("this is not json"), "garbage-1")

	t.Run("the failure is logged with the intent's subject and stream sequence", func(t *testing.T) {
		kit.EventuallyOn(t, nil, 10*time.Second, "a log line about the failed dead letter", func() bool {
			return logs.Line("dead-lettering an intent failed") != ""
		}, func() string { return "log:\n" + logs.String() })
		line := logs.Line("dead-lettering an intent failed")
		for _, want := range []string{"subject=" + e.subjects.Intent("g", "r"), "stream_seq=1", "reason=invalid", "err="} {
			if !strings.Contains(line, want) {
				t.Errorf("log line %q lacks %q", line, want)
			}
		}
	})
	t.Run("once the stream is back the intent is dead-lettered", func(t *testing.T) {
		if _, err := e.js.CreateStream(ctx, dlqConfig); err != nil {
			t.Fatal(err)
		}
		dl := e.waitDeadLetterWhere(t, 10*time.Second, "the invalid intent", func(d events.DeadLetter) bool {
			return d.Reason == events.ReasonInvalid
		})
		if string(dl.Data) != "this is not json" || dl.TruncatedFrom != 0 {
			t.Errorf("dead letter body %q truncated from %d, want the whole intent", dl.Data, dl.TruncatedFrom)
		}
		if n := len(e.deadLetters()); n != 1 {
			t.Errorf("%d dead letters, want 1", n)
		}
		e.waitIntentsDrained(t, 5*time.Second)
	})
}

// paddedBody is prefix, then 'x' up to size bytes in all, then suffix.
func paddedBody(prefix string, size int, suffix string) []byte {
	return []byte(prefix + strings.Repeat("x", size-len(prefix)-len(suffix)) + suffix)
}

// padIntent encodes in with a payload padded so the intent is size bytes.
func padIntent(t *testing.T, in events.Intent, size int) []byte {
	t.Helper()
	in.Payload = json.RawMessage(`{"pad":""}`)
	base, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	in.Payload = json.RawMessage(`{"pad":"` + strings.Repeat("x", size-len(base)) + `"}`)
	body, err := json.Marshal(in)
	if err != nil || len(body) != size {
		t.Fatalf("padded intent is %d bytes (%v), want %d", len(body), err, size)
	}
	return body
}

// waitDeadLetterWhere waits for a dead letter that match accepts.
func (e *env) waitDeadLetterWhere(t *testing.T, timeout time.Duration, what string, match func(events.DeadLetter) bool) events.DeadLetter {
	t.Helper()
	var found events.DeadLetter
	kit.Eventually(t, timeout, "a dead letter for "+what, func() bool {
		for _, dl := range e.deadLetters() {
			if match(dl) {
				found = dl
				return true
			}
		}
		return false
	})
	return found
}

// waitIntentsDrained waits until every intent is acked, and returns how
// many were delivered more than once.
func (e *env) waitIntentsDrained(t *testing.T, timeout time.Duration) int {
	t.Helper()
	ctx := context.Background()
	var stream jetstream.Stream
	var ci *jetstream.ConsumerInfo
	kit.EventuallyOn(t, nil, timeout, "every intent acked", func() bool {
		var err error
		if stream, err = e.js.Stream(ctx, e.subjects.IntentsStream()); err != nil {
			t.Fatal(err)
		}
		cons, err := stream.Consumer(ctx, events.ConsumerName)
		if err != nil {
			t.Fatal(err)
		}
		ci = cons.CachedInfo()
		return stream.CachedInfo().State.Msgs == 0 && ci.NumAckPending == 0
	}, func() string {
		return fmt.Sprintf("intents stream still holds %d messages (%d pending ack, %d redelivered)",
			stream.CachedInfo().State.Msgs, ci.NumAckPending, ci.NumRedelivered)
	})
	return ci.NumRedelivered
}

// logBuffer collects a worker's log lines.
type logBuffer struct{ kit.LogBuffer }

func (b *logBuffer) option(c *worker.Config) {
	c.Logger = slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
