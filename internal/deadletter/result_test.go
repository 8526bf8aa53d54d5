package deadletter

import (
	"errors"
	"testing"

	"github.com/coinsaga/coinsaga/events"
)

// The lines are what `coinsaga dlq replay` prints after "seq N order X: ",
// and what the console shows; the CLI tests hold them to the byte.
func TestResultMessage(t *testing.T) {
	t.Parallel()
	l := Letter{Seq: 12, OutOrderID: "o-1", Reason: events.ReasonConflict, Size: 40, TruncatedFrom: 90}
	boom := errors.New("boom")
	const to = "coinsaga.intents.g.r"
	tests := []struct {
		name   string
		result Result
		want   string
	}{
		{"a truncated letter names both sizes", Result{Letter: l, Outcome: SkippedTruncated},
			"skipped: the body is only the first 40 of the intent's 90 bytes (Coinsaga-Truncated); have the game server publish it again, then purge this one"},
		{"an unreplayable letter names its reason", Result{Letter: l, Outcome: SkippedUnreplayable},
			"skipped: reason conflict would only be dead-lettered again; publish a corrected intent, then purge this one"},
		{"an order in progress names its state", Result{Letter: l, Outcome: SkippedInProgress, State: events.StateDebited},
			"skipped: the order is in progress (state debited); left in place"},
		{"a completed order in a dry run", Result{Letter: l, Outcome: AlreadyCompleted, DryRun: true},
			"already completed: nothing will be charged; would remove the dead letter"},
		{"a completed order", Result{Letter: l, Outcome: AlreadyCompleted}, "already completed: nothing will be charged; dead letter removed"},
		{"a replay in a dry run", Result{Letter: l, Outcome: Replayed, DryRun: true, Subject: to}, "would replay to " + to},
		{"a replay", Result{Letter: l, Outcome: Replayed, Subject: to}, "replayed to " + to},
		{"no target", Result{Letter: l, Outcome: Failed, Err: &OpError{Op: OpTarget, Err: boom}}, "failed: boom"},
		{"a failed publish", Result{Letter: l, Outcome: Failed, Subject: to, Err: &OpError{Op: OpPublish, Err: boom}},
			"failed: republishing to " + to + ": boom (the dead letter stays)"},
		{"a completed order whose letter could not be removed", Result{Letter: l, Outcome: Failed, Subject: to,
			State: events.StateCompleted, Err: &OpError{Op: OpRemove, Err: boom}},
			"already completed: nothing will be charged; removing the dead letter failed: boom"},
		{"a replay whose letter could not be removed", Result{Letter: l, Outcome: Failed, Subject: to, Err: &OpError{Op: OpRemove, Err: boom}},
			"replayed, but removing the dead letter failed: boom (replaying it again is harmless)"},
		{"a purge that failed", Result{Letter: l, Outcome: Failed, Err: &OpError{Op: OpRemove, Err: boom}}, "deleting failed: boom"},
		{"a purge", Result{Letter: l, Outcome: Purged}, "purged"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.result.Message(); got != tc.want {
				t.Errorf("Message =\n%q, want\n%q", got, tc.want)
			}
		})
	}
	if got := (Result{Letter: l}).Name(); got != "seq 12 order o-1" {
		t.Errorf("Name = %q", got)
	}
	if got := (Result{Letter: Letter{Seq: 3}}).Name(); got != "seq 3" {
		t.Errorf("Name without an order = %q", got)
	}
}
