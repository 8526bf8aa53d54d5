package deadletter

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
)

func TestFilterMatch(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	letter := Letter{Seq: 7, Reason: events.ReasonFailed, MgID: "g1", RoomID: "r1", OutOrderID: "o1",
		FailedAt: now.Add(-2 * time.Hour), StoredAt: now}
	// read is a letter built the way the worker's dead letters are read,
	// through FromDeadLetter (the cases moved from cmd/coinsaga's
	// TestDLQFilterMatch).
	read := func(reason events.Reason, mg string, failedAt, storedAt time.Time) Letter {
		return FromDeadLetter(events.DeadLetter{Reason: reason, MgID: mg, FailedAt: failedAt}, storedAt, nil)
	}
	tests := []struct {
		name   string
		filter Filter
		letter Letter
		want   bool
	}{
		{"the empty filter matches anything", Filter{}, Letter{}, true},
		{"a reason among several matches", Filter{Reasons: []events.Reason{events.ReasonNeedsAttention, events.ReasonFailed}}, letter, true},
		{"another reason does not", Filter{Reasons: []events.Reason{events.ReasonConflict}}, letter, false},
		{"the letter's game matches", Filter{MgID: "g1"}, letter, true},
		{"another game does not", Filter{MgID: "g2"}, letter, false},
		{"a game filter drops letters without a game", Filter{MgID: "g1"}, Letter{Reason: events.ReasonInvalid}, false},
		{"another room does not match", Filter{RoomID: "r2"}, letter, false},
		{"the letter's order matches", Filter{OutOrderID: "o1"}, letter, true},
		{"another order does not", Filter{OutOrderID: "o2"}, letter, false},
		{"since compares the failure time", Filter{Since: now.Add(-time.Hour)}, letter, false},
		{"a failure at since itself matches", Filter{Since: now.Add(-2 * time.Hour)}, letter, true},
		{"since falls back to the stored time without a failure time", Filter{Since: now.Add(-time.Hour)}, Letter{StoredAt: now}, true},
		{"a listed seq matches", Filter{Seqs: []uint64{3, 7}}, letter, true},
		{"an unlisted seq does not", Filter{Seqs: []uint64{3, 8}}, letter, false},
		{"a limit does not look at the letter", Filter{Limit: 1}, letter, true},
		{"every field must agree", Filter{MgID: "g1", OutOrderID: "o2"}, letter, false},
		{"the empty filter matches a read invalid letter", Filter{}, read("invalid", "", time.Time{}, now), true},
		{"a reason filter drops a read letter of another reason", Filter{Reasons: []events.Reason{"failed"}}, read("conflict", "g", now, now), false},
		{"an mg_id filter drops read letters without a game", Filter{MgID: "g"}, read("invalid", "", now, now), false},
		{"since compares a read letter's failure time", Filter{Since: now.Add(-time.Hour)}, read("failed", "g", now.Add(-2*time.Hour), now), false},
		{"since falls back to a read letter's stored time without a failure time", Filter{Since: now.Add(-time.Hour)}, read("failed", "g", time.Time{}, now), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.filter.Match(tc.letter); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFilterNarrows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		filter Filter
		want   bool
	}{
		{"the empty filter selects everything", Filter{}, false},
		{"a limit alone does not count as a filter", Filter{Limit: 5}, false},
		{"a reason narrows", Filter{Reasons: []events.Reason{events.ReasonFailed}}, true},
		{"a game narrows", Filter{MgID: "g"}, true},
		{"a room narrows", Filter{RoomID: "r"}, true},
		{"an order narrows", Filter{OutOrderID: "o"}, true},
		{"since narrows", Filter{Since: time.Now()}, true},
		{"seqs narrow", Filter{Seqs: []uint64{1}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.filter.Narrows(); got != tc.want {
				t.Errorf("Narrows = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFilterCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		filter  Filter
		wantErr string // "" for none
	}{
		{"the empty filter is fine", Filter{}, ""},
		{"safe ids are fine", Filter{MgID: "1468180338417074177", RoomID: "9009", OutOrderID: "o-1"}, ""},
		{"a game with a dot would widen the subject filter", Filter{MgID: "a.b"}, "mg_id"},
		{"a room with a wildcard is refused", Filter{RoomID: "*"}, "room_id"},
		{"an order with a tail wildcard is refused", Filter{OutOrderID: ">"}, "out_order_id"},
		{"an unknown reason is refused", Filter{Reasons: []events.Reason{"broken"}}, "broken"},
		{"a negative limit is refused", Filter{Limit: -1}, "limit"},
		{"seq 0 is refused", Filter{Seqs: []uint64{0}}, "seq"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.filter.check()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("check = %v, want nil", err)
			case tc.wantErr != "" && (!errors.Is(err, ErrBadFilter) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("check = %v, want ErrBadFilter naming %q", err, tc.wantErr)
			}
		})
	}
}

func TestFilterSeqsAreSortedAndDeduplicatedWithoutTouchingTheCallers(t *testing.T) {
	t.Parallel()
	given := []uint64{7, 3, 7}
	f := Filter{Seqs: given}
	if got := f.seqs(); !slices.Equal(got, []uint64{3, 7}) {
		t.Errorf("seqs = %v, want [3 7]", got)
	}
	if !slices.Equal(given, []uint64{7, 3, 7}) {
		t.Errorf("the caller's slice became %v", given)
	}
}

func TestFilterSubjectLetsTheServerSkipOtherIDs(t *testing.T) {
	t.Parallel()
	s := events.Subjects{Prefix: "acme.pay"}
	tests := []struct {
		name   string
		filter Filter
		want   string
	}{
		{"no ids read every dead letter", Filter{MgID: "", Reasons: []events.Reason{events.ReasonFailed}}, "acme.pay.dlq.>"},
		{"a game is a subject token", Filter{MgID: "g1"}, "acme.pay.dlq.g1.*.*"},
		{"an order alone is the last token", Filter{OutOrderID: "o1"}, "acme.pay.dlq.*.*.o1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.filter.subject(s); got != tc.want {
				t.Errorf("subject = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLetterFields(t *testing.T) {
	t.Parallel()
	failed := time.Date(2026, 11, 21, 10, 0, 0, 0, time.FixedZone("x", 3600))
	body := []byte(`{"out_order_id":"o1","payment":{"mogs":{"js_code":"JS-SECRET"}}}`)
	d := events.DeadLetter{StreamSeq: 9, Subject: "coinsaga.dlq.g1.r1.o1", Reason: events.ReasonFailed,
		Error: "retries_exhausted: busy", State: "failed", Attempts: 3, FailedAt: failed,
		OriginalSubject: "coinsaga.intents.g1.r1", Data: body, OutOrderID: "o1", MgID: "g1", RoomID: "r1"}
	l := FromDeadLetter(d, failed.Add(time.Second), nil)

	t.Run("the error code is read off the error", func(t *testing.T) {
		t.Parallel()
		if l.Code != events.CodeRetriesExhausted || l.Size != len(body) || l.Seq != 9 {
			t.Errorf("code %q size %d seq %d", l.Code, l.Size, l.Seq)
		}
	})
	t.Run("the body stays empty until masked, and the raw body never encodes", func(t *testing.T) {
		t.Parallel()
		out, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if l.Body != "" || strings.Contains(string(out), "SECRET") || string(l.Raw()) != string(body) {
			t.Errorf("body %q raw %q, encoded %s", l.Body, l.Raw(), out)
		}
		m := l.Masked()
		if !strings.Contains(m.Body, `"***"`) || strings.Contains(m.Body, "SECRET") {
			t.Errorf("masked body %q", m.Body)
		}
	})
	t.Run("an entry is in UTC and leaves headers and body out", func(t *testing.T) {
		t.Parallel()
		e := l.Masked().Entry()
		if e.FailedAt == nil || e.FailedAt.Location() != time.UTC || !e.FailedAt.Equal(failed) || e.StoredAt.Location() != time.UTC {
			t.Errorf("entry times %v %v", e.FailedAt, e.StoredAt)
		}
		out, _ := json.Marshal(e)
		if strings.Contains(string(out), "***") || strings.Contains(string(out), "body") {
			t.Errorf("entry %s carries the body", out)
		}
		if e := (Letter{}).Entry(); e.FailedAt != nil {
			t.Errorf("a letter without a failure time lists one: %v", e.FailedAt)
		}
	})
}

func TestErrorCode(t *testing.T) {
	t.Parallel()
	tests := []struct{ error, want string }{
		{"retries_exhausted: busy", "retries_exhausted"},
		{"invalid_intent: payment.amount: must be positive", "invalid_intent"},
		{"invalid JSON: unexpected end", ""},
		{"no colon at all", ""},
		{": empty code", ""},
		{"", ""},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.error, " ", "_")+" has code "+tc.want, func(t *testing.T) {
			t.Parallel()
			if got := errorCode(tc.error); got != tc.want {
				t.Errorf("errorCode(%q) = %q, want %q", tc.error, got, tc.want)
			}
		})
	}
}

func TestTarget(t *testing.T) {
	t.Parallel()
	s := events.Subjects{Prefix: "acme.pay"}
	body := []byte(`{"mg_id":"g1","room_id":"r1"}`)
	tests := []struct {
		name     string
		original string
		body     []byte
		want     string
	}{
		{"the original intents subject is kept", "acme.pay.intents.g0.r0", body, "acme.pay.intents.g0.r0"},
		{"a missing header falls back to the body's game and room", "", body, "acme.pay.intents.g1.r1"},
		{"a header pointing outside the intents subjects is not trusted", "acme.pay.status.g0.r0.o", body, "acme.pay.intents.g1.r1"},
		{"a header with extra tokens is not trusted", "acme.pay.intents.g0.r0.x", body, "acme.pay.intents.g1.r1"},
		{"another prefix's intents subject is not trusted", "coinsaga.intents.g0.r0", body, "acme.pay.intents.g1.r1"},
		{"no usable header and an unsafe body is ErrNoTarget", "", []byte(`{"mg_id":"g.*","room_id":"r"}`), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Target(s, FromDeadLetter(events.DeadLetter{OriginalSubject: tc.original, Data: tc.body}, time.Time{}, nil))
			if got != tc.want || (tc.want == "") != errors.Is(err, ErrNoTarget) {
				t.Errorf("Target = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestOutcomeNames(t *testing.T) {
	t.Parallel()
	for o := Replayed; o <= Purged; o++ {
		if s := o.String(); strings.HasPrefix(s, "outcome(") {
			t.Errorf("outcome %d has no name", o)
		}
	}
	if s := Outcome(0).String(); s != "outcome(0)" {
		t.Errorf("the zero outcome reads %q", s)
	}
	skipped := []Outcome{SkippedTruncated, SkippedUnreplayable, SkippedInProgress}
	for o := Replayed; o <= Purged; o++ {
		if o.Skipped() != slices.Contains(skipped, o) {
			t.Errorf("%s.Skipped() = %v", o, o.Skipped())
		}
	}
}
