package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
)

func TestReplayRefusesATruncatedDeadLetter(t *testing.T) {
	t.Parallel()
	url, js, s := dlqOnly(t)
	ctx := context.Background()
	in := testIntent("cut-1", "mogs", 10)
	body, _ := json.Marshal(in)
	m := nats.NewMsg(s.DeadLetter(in.MgID, in.RoomID, in.OutOrderID))
	m.Header = events.DeadLetterHeaders(events.DeadLetter{Reason: events.ReasonRejected, State: "rejected", Attempts: 1,
		Error: "invalid_intent: payment.amount", FailedAt: time.Now(), OriginalSubject: s.Intent(in.MgID, in.RoomID),
		TruncatedFrom: len(body)})
	m.Data = body[:len(body)/2]
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, ctx, "dlq", "replay", "--nats-url", url, "--seq", fmt.Sprint(ack.Sequence))

	t.Run("it says in one line why it skips the letter", func(t *testing.T) {
		if code != 0 {
			t.Errorf("exit %d: %s\n%s", code, errOut, out)
		}
		want := fmt.Sprintf("seq %d order cut-1: skipped: the body is only the first %d of the intent's %d bytes (%s)",
			ack.Sequence, len(body)/2, len(body), events.HeaderTruncated)
		if !strings.Contains(out, want) || !strings.Contains(out, "skipped 1") {
			t.Errorf("stdout %q, want a line starting %q and a count of one skipped", out, want)
		}
	})
	t.Run("nothing is republished and the dead letter stays", func(t *testing.T) {
		intents, err := js.Stream(ctx, s.IntentsStream())
		if err != nil {
			t.Fatal(err)
		}
		if n := intents.CachedInfo().State.Msgs; n != 0 {
			t.Errorf("intents stream holds %d messages, want none", n)
		}
		dlq, err := js.Stream(ctx, s.DLQStream())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dlq.GetMsg(ctx, ack.Sequence); err != nil {
			t.Errorf("the truncated dead letter is gone: %v", err)
		}
	})
}
