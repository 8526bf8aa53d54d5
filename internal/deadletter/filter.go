package deadletter

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coinsaga/coinsaga/events"
)

// Reasons are the reasons a dead letter can carry, in the order the
// contract lists them.
var Reasons = []events.Reason{events.ReasonInvalid, events.ReasonRejected, events.ReasonConflict,
	events.ReasonFailed, events.ReasonNeedsAttention}

// KnownReason reports whether r is one of Reasons.
func KnownReason(r events.Reason) bool { return slices.Contains(Reasons, r) }

// Filter selects dead letters. The zero value selects all of them, oldest
// first; each field set narrows the selection.
type Filter struct {
	Reasons    []events.Reason // any of these
	MgID       string          // only this game's (a subject token: the server skips other games)
	RoomID     string          // only this room's
	OutOrderID string          // only this order's
	// Since keeps the dead letters whose order failed at or after it (or,
	// without a failure time, that were stored at or after it).
	Since time.Time
	// Seqs keeps only these stream sequences; any order, repeats ignored.
	Seqs []uint64
	// Limit stops after this many matches, oldest first; 0: no limit.
	Limit int
}

// Match reports whether l passes every field of f but Limit, which
// counts letters rather than looks at one.
func (f Filter) Match(l Letter) bool {
	switch {
	case len(f.Seqs) > 0 && !slices.Contains(f.Seqs, l.Seq),
		len(f.Reasons) > 0 && !slices.Contains(f.Reasons, l.Reason),
		f.MgID != "" && l.MgID != f.MgID,
		f.RoomID != "" && l.RoomID != f.RoomID,
		f.OutOrderID != "" && l.OutOrderID != f.OutOrderID,
		!f.Since.IsZero() && l.At().Before(f.Since):
		return false
	}
	return true
}

// Narrows reports whether f selects less than every dead letter; a limit
// alone does not count, as "the oldest N" is no reason to delete them.
func (f Filter) Narrows() bool {
	return len(f.Reasons) > 0 || f.MgID != "" || f.RoomID != "" || f.OutOrderID != "" ||
		!f.Since.IsZero() || len(f.Seqs) > 0
}

// seqs returns f's Seqs ascending without repeats.
func (f Filter) seqs() []uint64 {
	s := slices.Clone(f.Seqs)
	slices.Sort(s)
	return slices.Compact(s)
}

// subject is the narrowest subject filter that f allows: ids are subject
// tokens, so the server skips whatever they rule out.
func (f Filter) subject(s events.Subjects) string {
	if f.MgID == "" && f.RoomID == "" && f.OutOrderID == "" {
		return s.DeadLetters()
	}
	return s.DeadLetterFilter(f.MgID, f.RoomID, f.OutOrderID)
}

// ErrBadFilter says a Filter cannot select anything as given.
var ErrBadFilter = errors.New("bad dead-letter filter")

// check refuses what would make a wrong subject filter or read forever.
func (f Filter) check() error {
	for _, id := range []struct{ name, v string }{{"mg_id", f.MgID}, {"room_id", f.RoomID}, {"out_order_id", f.OutOrderID}} {
		if id.v != "" && !events.ValidID(id.v) {
			return fmt.Errorf("%w: %s %q is not a valid id", ErrBadFilter, id.name, id.v)
		}
	}
	for _, r := range f.Reasons {
		if !KnownReason(r) {
			return fmt.Errorf("%w: unknown reason %q", ErrBadFilter, r)
		}
	}
	if f.Limit < 0 || slices.Contains(f.Seqs, 0) {
		return fmt.Errorf("%w: a negative limit or a zero seq", ErrBadFilter)
	}
	return nil
}
