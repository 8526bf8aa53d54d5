package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/worker"
)

// Outcome is what Replay or Purge did with one dead letter, or in a dry
// run would have done.
type Outcome int

const (
	// Replayed: the intent went back to Result.Subject and the dead
	// letter was removed; the order resumes where it stopped.
	Replayed Outcome = iota + 1
	// AlreadyCompleted: a worker reports the order completed, so nothing
	// was republished (nothing is charged again) and the letter removed.
	AlreadyCompleted
	// SkippedTruncated: the body is only the first bytes of the intent
	// (Coinsaga-Truncated), so it is not replayed; the letter stays.
	SkippedTruncated
	// SkippedUnreplayable: an invalid or conflict letter would only be
	// dead-lettered again; the letter stays.
	SkippedUnreplayable
	// SkippedInProgress: a worker is on the order (an earlier replay,
	// say); should it fail again it writes a new letter, so this one stays.
	SkippedInProgress
	// Failed: see Result.Err, an *OpError; the letter stays, or, when
	// only its removal failed, replaying it again is harmless.
	Failed
	// Purged: Purge deleted the dead letter.
	Purged
)

var outcomeNames = [...]string{Replayed: "replayed", AlreadyCompleted: "already_completed",
	SkippedTruncated: "skipped_truncated", SkippedUnreplayable: "skipped_unreplayable",
	SkippedInProgress: "skipped_in_progress", Failed: "failed", Purged: "purged"}

func (o Outcome) String() string {
	if o > 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Skipped reports whether the letter was left alone on purpose.
func (o Outcome) Skipped() bool {
	return o == SkippedTruncated || o == SkippedUnreplayable || o == SkippedInProgress
}

// Op names the step of a replay or purge that failed.
type Op string

const (
	OpTarget  Op = "target"  // no intents subject to send the intent back to (wraps ErrNoTarget)
	OpPublish Op = "publish" // republishing the intent
	OpRemove  Op = "remove"  // deleting the dead letter
)

// ErrNoTarget says a dead letter names no intents subject it may go back to.
var ErrNoTarget = errors.New("no intents subject")

// OpError is why a letter's outcome is Failed.
type OpError struct {
	Op  Op
	Err error
}

func (e *OpError) Error() string { return string(e.Op) + ": " + e.Err.Error() }
func (e *OpError) Unwrap() error { return e.Err }

// Result is one letter's outcome.
type Result struct {
	Letter  Letter
	Outcome Outcome
	DryRun  bool
	// Subject is where the intent went, or would go, back to.
	Subject string
	// State is the order's state as a worker reported it; "" if unknown.
	State events.State
	// StateErr is set on the first letter for which the workers could not
	// be asked an order's state; Replay goes on without asking, as a
	// worker never charges a completed order again.
	StateErr error
	Err      error // an *OpError, when Outcome is Failed
}

// Name is how an operator finds the letter: "seq 12 order o-1".
func (r Result) Name() string {
	name := "seq " + strconv.FormatUint(r.Letter.Seq, 10)
	if r.Letter.OutOrderID != "" {
		name += " order " + r.Letter.OutOrderID
	}
	return name
}

// Message says in one line what came of a replayed letter and, where the
// operator has something to do, what.
func (r Result) Message() string {
	var op *OpError
	errors.As(r.Err, &op)
	l := r.Letter
	switch {
	case r.Outcome == SkippedTruncated:
		return fmt.Sprintf("skipped: the body is only the first %d of the intent's %d bytes (%s); have the game server publish it again, then purge this one",
			l.Size, l.TruncatedFrom, events.HeaderTruncated)
	case r.Outcome == SkippedUnreplayable:
		return fmt.Sprintf("skipped: reason %s would only be dead-lettered again; publish a corrected intent, then purge this one", l.Reason)
	case r.Outcome == SkippedInProgress:
		return fmt.Sprintf("skipped: the order is in progress (state %s); left in place", r.State)
	case r.Outcome == AlreadyCompleted && r.DryRun:
		return "already completed: nothing will be charged; would remove the dead letter"
	case r.Outcome == AlreadyCompleted:
		return "already completed: nothing will be charged; dead letter removed"
	case r.Outcome == Replayed && r.DryRun:
		return "would replay to " + r.Subject
	case r.Outcome == Replayed:
		return "replayed to " + r.Subject
	case r.Outcome == Purged && r.DryRun:
		return "would purge"
	case r.Outcome == Purged:
		return "purged"
	case op == nil:
		return fmt.Sprintf("failed: %v", r.Err)
	case op.Op == OpPublish:
		return fmt.Sprintf("failed: republishing to %s: %v (the dead letter stays)", r.Subject, op.Err)
	case op.Op == OpRemove && r.State == events.StateCompleted:
		return fmt.Sprintf("already completed: nothing will be charged; removing the dead letter failed: %v", op.Err)
	case op.Op == OpRemove && r.Subject != "":
		return fmt.Sprintf("replayed, but removing the dead letter failed: %v (replaying it again is harmless)", op.Err)
	case op.Op == OpRemove:
		return fmt.Sprintf("deleting failed: %v", op.Err)
	}
	return fmt.Sprintf("failed: %v", op.Err)
}

// Report is what Replay or Purge did, letter by letter.
type Report struct {
	Total   int // the letters selected
	DryRun  bool
	Results []Result // in the order done; fewer than Total when interrupted

	Replayed, Completed, Skipped, Failed, Purged int
}

func (rep *Report) add(r Result) {
	rep.Results = append(rep.Results, r)
	switch {
	case r.Outcome == Replayed:
		rep.Replayed++
	case r.Outcome == AlreadyCompleted:
		rep.Completed++
	case r.Outcome.Skipped():
		rep.Skipped++
	case r.Outcome == Purged:
		rep.Purged++
	default:
		rep.Failed++
	}
}

// Replay republishes the original intent of each letter f selects to the
// intents stream, with a new Nats-Msg-Id and a Coinsaga-Replay header,
// waits for JetStream to acknowledge it, then deletes the letter. A
// failed, compensated, needs_attention or rejected order resumes from the
// step it stopped at with the same idempotency keys. Each order's state
// is asked of a running worker first (OrderStates): a completed order's
// letter is removed and nothing republished; one in progress is left.
// Invalid, conflict and truncated letters are skipped.
//
// The error is the selection's, or wraps ErrInterrupted when ctx ended
// before the last letter; the Report says what was done either way.
// Options: DryRun, OnProgress, OrderStates, OrderTimeout, OnMissing.
func (q *Queue) Replay(ctx context.Context, f Filter, opts ...Option) (Report, error) {
	o := newOptions(opts)
	o.bodies = true
	letters, err := q.list(ctx, f, o)
	if err != nil {
		return Report{}, err
	}
	states := o.states
	if states == nil {
		states = q.askWorkers(o.orderTimeout)
	}
	asking := true
	rep := Report{Total: len(letters), DryRun: o.dryRun}
	o.started(len(letters))
	for _, l := range letters {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("%w after %d of %d dead letters: %w", ErrInterrupted, len(rep.Results), len(letters), err)
		}
		r := Result{Letter: l, DryRun: o.dryRun}
		r.Outcome, r.Subject, r.Err = q.decide(l)
		if r.Outcome == 0 && asking && l.OutOrderID != "" {
			if r.State, r.StateErr = states(ctx, l.OutOrderID); r.StateErr != nil {
				asking = false
			}
		}
		if r.Outcome == 0 {
			r.Outcome, r.Err = q.replay(ctx, l, r.Subject, r.State, o.dryRun)
		}
		rep.add(r)
		if o.progress != nil {
			o.progress(Progress{Done: len(rep.Results), Total: len(letters), Result: r})
		}
	}
	return rep, nil
}

// decide is the part of the replay policy that needs only the letter: an
// outcome when the letter is not to be replayed, else (0) its subject.
func (q *Queue) decide(l Letter) (Outcome, string, error) {
	if l.TruncatedFrom > 0 {
		return SkippedTruncated, "", nil
	}
	switch l.Reason {
	case events.ReasonInvalid, events.ReasonConflict:
		return SkippedUnreplayable, "", nil
	}
	subject, err := Target(q.subjects, l)
	if err != nil {
		return Failed, "", &OpError{Op: OpTarget, Err: err}
	}
	return 0, subject, nil
}

// replay acts on a letter the policy lets through, given its order's state.
func (q *Queue) replay(ctx context.Context, l Letter, subject string, state events.State, dryRun bool) (Outcome, error) {
	switch {
	case state == events.StateCompleted && dryRun:
		return AlreadyCompleted, nil
	case state == events.StateCompleted:
		if err := q.remove(ctx, l.Seq); err != nil {
			return Failed, &OpError{Op: OpRemove, Err: err}
		}
		return AlreadyCompleted, nil
	case state != "" && !state.Terminal():
		return SkippedInProgress, nil
	case dryRun:
		return Replayed, nil
	}
	m := nats.NewMsg(subject)
	m.Data = l.raw
	id := l.OutOrderID
	if id == "" {
		id = "invalid"
	}
	seq := strconv.FormatUint(l.Seq, 10)
	// New per dead letter, so the duplicate window does not drop it as the
	// original intent, yet a rerun after an interruption is dropped.
	m.Header.Set(events.HeaderMsgID, id+":replay:"+seq)
	m.Header.Set(events.HeaderReplay, seq)
	if _, err := q.js.PublishMsg(ctx, m); err != nil {
		return Failed, &OpError{Op: OpPublish, Err: err}
	}
	if err := q.remove(ctx, l.Seq); err != nil {
		return Failed, &OpError{Op: OpRemove, Err: err}
	}
	return Replayed, nil
}

// remove deletes a dead letter; one already gone (another operator got
// there first) counts as removed.
func (q *Queue) remove(ctx context.Context, seq uint64) error {
	if err := q.stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return err
	}
	return nil
}

// Target is where a letter's intent goes back to: the subject it first
// came on, if that is an intents subject of s's prefix, else the one its
// body names. A header is never trusted to send the intent anywhere else.
// The error wraps ErrNoTarget.
func Target(s events.Subjects, l Letter) (string, error) {
	base := strings.TrimSuffix(s.Intents(), ">")
	if rest, ok := strings.CutPrefix(l.OriginalSubject, base); ok {
		if mg, room, ok := strings.Cut(rest, "."); ok && events.ValidID(mg) && events.ValidID(room) {
			return l.OriginalSubject, nil
		}
	}
	var in struct {
		MgID   string `json:"mg_id"`
		RoomID string `json:"room_id"`
	}
	if err := json.Unmarshal(l.raw, &in); err == nil && events.ValidID(in.MgID) && events.ValidID(in.RoomID) {
		return s.Intent(in.MgID, in.RoomID), nil
	}
	return "", fmt.Errorf("%w: %s %q is not under %s and the body names no valid mg_id and room_id",
		ErrNoTarget, events.HeaderOriginalSubject, l.OriginalSubject, base)
}

// askWorkers asks the running workers for an order's state.
func (q *Queue) askWorkers(timeout time.Duration) StateFunc {
	return func(ctx context.Context, outOrderID string) (events.State, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		reply, err := worker.GetOrder(ctx, q.nc, q.subjects.OrderGetAPI(), outOrderID)
		switch {
		case err == nil && reply.Order != nil:
			return events.State(reply.Order.State), nil
		case err != nil && reply.Error == "":
			return "", err
		}
		return "", nil // a worker answered: no such order, or it could not read it
	}
}

// Purge deletes the dead letters f selects. A filter that selects every
// letter (not Narrows) needs All, else the error wraps ErrUnfiltered. The
// error is the selection's, or wraps ErrInterrupted. Options: All,
// DryRun, OnProgress, OnMissing.
func (q *Queue) Purge(ctx context.Context, f Filter, opts ...Option) (Report, error) {
	o := newOptions(opts)
	if !f.Narrows() && !o.all {
		return Report{}, ErrUnfiltered
	}
	o.bodies = false
	letters, err := q.list(ctx, f, o)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Total: len(letters), DryRun: o.dryRun}
	o.started(len(letters))
	for _, l := range letters {
		// A dry run changes nothing and asks no one: it is not worth
		// cutting short.
		if err := ctx.Err(); err != nil && !o.dryRun {
			return rep, fmt.Errorf("%w after %d of %d dead letters: %w", ErrInterrupted, len(rep.Results), len(letters), err)
		}
		r := Result{Letter: l, Outcome: Purged, DryRun: o.dryRun}
		if !o.dryRun {
			if err := q.remove(ctx, l.Seq); err != nil {
				r.Outcome, r.Err = Failed, &OpError{Op: OpRemove, Err: err}
			}
		}
		rep.add(r)
		if o.progress != nil {
			o.progress(Progress{Done: len(rep.Results), Total: len(letters), Result: r})
		}
	}
	return rep, nil
}
