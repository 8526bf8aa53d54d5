package worker

import (
	"errors"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/store"
)

func TestDecideAccept(t *testing.T) {
	t.Parallel()
	base := store.Order{OutOrderID: "o1", IntentSubject: "coinsaga.intents.mg.room", Seq: 1}
	t.Run("a valid intent is accepted, due now at the baseline", func(t *testing.T) {
		t.Parallel()
		got := decideAccept(base, nil, t0)
		if n := got.next; n.State != events.StateAccepted || n.Step != StepBaseline || !n.NextRunAt.Equal(t0) || got.dead != "" {
			t.Errorf("got %s at %s due %v, dead %q", n.State, n.Step, n.NextRunAt, got.dead)
		}
		if got.detail != "accepted from coinsaga.intents.mg.room" {
			t.Errorf("detail %q", got.detail)
		}
	})
	t.Run("an invalid intent is rejected for good with a dead letter", func(t *testing.T) {
		t.Parallel()
		got := decideAccept(base, errors.New("amount must be positive"), t0)
		n := got.next
		if n.State != events.StateRejected || n.Step != StepBaseline || !n.NextRunAt.IsZero() || got.dead != events.ReasonRejected {
			t.Errorf("got %s at %s due %v, dead %q", n.State, n.Step, n.NextRunAt, got.dead)
		}
		if n.ErrorCode != events.CodeInvalidIntent || n.Error != "amount must be positive" {
			t.Errorf("error %s: %s", n.ErrorCode, n.Error)
		}
	})
}

func TestDecideRepeat(t *testing.T) {
	t.Parallel()
	valid := func() error { return nil }
	invalid := func() error { return errors.New("still bad") }
	stopped := func(state events.State) store.Order {
		return store.Order{OutOrderID: "o1", State: state, Step: StepCancel, Attempt: 4, Seq: 5}
	}
	tests := []struct {
		name     string
		o        store.Order
		sameBody bool
		replay   bool
		validate func() error
		kind     repeat
		dead     events.Reason
		due      bool
	}{
		{"another body under the id is a conflict", stopped(events.StateFailed), false, true, valid, repeatConflict, events.ReasonConflict, false},
		{"the same intent again is absorbed", stopped(events.StateFailed), true, false, valid, repeatAbsorbed, "", false},
		{"a replay of a completed order changes nothing", stopped(events.StateCompleted), true, true, valid, repeatAbsorbed, "", false},
		{"a replay of an order in progress changes nothing", stopped(events.StateDebited), true, true, valid, repeatAbsorbed, "", false},
		{"a replay of a failed order resumes it now", stopped(events.StateFailed), true, true, valid, repeatResume, "", true},
		{"a replay of a needs_attention order resumes it now", stopped(events.StateNeedsAttention), true, true, valid, repeatResume, "", true},
		{"a replay of a rejected order now valid resumes it", stopped(events.StateRejected), true, true, valid, repeatResume, "", true},
		{"a replay of a rejected order still invalid rejects it again", stopped(events.StateRejected), true, true, invalid, repeatResume, events.ReasonRejected, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kind, out := decideRepeat(tt.o, tt.sameBody, tt.replay, tt.validate, t0)
			if kind != tt.kind || out.dead != tt.dead {
				t.Fatalf("kind %d dead %q, want %d %q (detail %q)", kind, out.dead, tt.kind, tt.dead, out.detail)
			}
			if kind != repeatResume {
				return
			}
			n := out.next
			if due := !n.NextRunAt.IsZero(); due != tt.due {
				t.Errorf("due %v, want %v", due, tt.due)
			}
			if tt.due && (n.Attempt != 0 || n.Step != tt.o.Step || n.State != tt.o.State || !n.NextRunAt.Equal(t0)) {
				t.Errorf("resumed as %s at %s attempt %d due %v", n.State, n.Step, n.Attempt, n.NextRunAt)
			}
			if tt.dead != "" && (n.Seq != tt.o.Seq+1 || n.Error != "still bad") {
				t.Errorf("rejected again with seq %d, error %q", n.Seq, n.Error)
			}
		})
	}
}

func TestDecideNotified(t *testing.T) {
	t.Parallel()
	waiting := store.Order{OutOrderID: "o1", Step: StepVerdict, NextRunAt: t0.Add(5 * time.Second)}
	t.Run("an order waiting for its verdict asks at once", func(t *testing.T) {
		t.Parallel()
		out, ok := decideNotified(waiting, "EXECUTE_SUCCESS", t0)
		if !ok || !out.next.NextRunAt.Equal(t0) {
			t.Errorf("ok %v, due %v", ok, out.next.NextRunAt)
		}
	})
	for name, o := range map[string]store.Order{
		"an order in another step is left alone":       {Step: StepConfirm, NextRunAt: t0.Add(time.Second)},
		"an order that ended is left alone":            {Step: StepVerdict},
		"an order about to ask anyway is left alone":   {Step: StepVerdict, NextRunAt: t0},
		"an order overdue already is left to the loop": {Step: StepVerdict, NextRunAt: t0.Add(-time.Second)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, ok := decideNotified(o, "EXECUTE_SUCCESS", t0); ok {
				t.Error("the notification changed the order")
			}
		})
	}
}

func TestCommitPolicy(t *testing.T) {
	t.Parallel()
	at := func(step Step, due time.Duration) store.Order {
		o := store.Order{Step: step}
		if due >= 0 {
			o.NextRunAt = t0.Add(due)
		}
		return o
	}
	tests := []struct {
		name      string
		o         store.Order
		onlyPolls bool
		draining  bool
		want      then
	}{
		{"a step due now that moves no money chains in memory", at(StepOrder, 0), false, false, thenRun},
		{"the first confirmation poll chains after the pay", at(StepConfirm, 0), false, false, thenRun},
		{"a pay is committed before it is made", at(StepPay, 0), false, false, thenCommit},
		{"a cancel is committed before it is made", at(StepCancel, 0), false, false, thenCommit},
		{"the end of the saga is committed", at(StepDone, -1), false, false, thenCommit},
		{"a wait is committed", at(StepOrder, time.Second), false, false, thenCommit},
		{"polls that saw nothing wait in memory", at(StepConfirm, 15*time.Second), true, false, thenWait},
		{"a drain commits what would chain", at(StepOrder, 0), false, true, thenCommit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := commitPolicy(tt.o, tt.onlyPolls, t0, tt.draining); got != tt.want {
				t.Errorf("commitPolicy = %d, want %d", got, tt.want)
			}
		})
	}
	after := []struct {
		name     string
		o        store.Order
		draining bool
		want     then
	}{
		{"a stored poll waits in memory", at(StepConfirm, 15*time.Second), false, thenWait},
		{"a stored step due now runs at once", at(StepCancel, 0), false, thenRun},
		{"a stored step due now waits in the store on drain", at(StepCancel, 0), true, thenStored},
		{"a stored retry waits in the store", at(StepPay, time.Second), false, thenStored},
		{"a finished order stays stored", at(StepDone, -1), false, thenStored},
	}
	for _, tt := range after {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := afterCommit(tt.o, t0, tt.draining); got != tt.want {
				t.Errorf("afterCommit = %d, want %d", got, tt.want)
			}
		})
	}
}
