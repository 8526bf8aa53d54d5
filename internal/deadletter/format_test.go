package deadletter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
)

// Moved from cmd/coinsaga (TestAgeReadsLikeAQueue) with the rendering.
func TestAgeReadsLikeAQueue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{42 * time.Second, "42s"},
		{12*time.Minute + 30*time.Second, "12m"},
		{5*time.Hour + 12*time.Minute, "5h12m"},
		{76 * time.Hour, "3d4h"},
	}
	for _, tc := range tests {
		t.Run(tc.d.String()+" reads "+tc.want, func(t *testing.T) {
			t.Parallel()
			if got := Age(tc.d); got != tc.want {
				t.Errorf("Age(%s) = %q, want %q", tc.d, got, tc.want)
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	letters := []Letter{
		{Seq: 3, Reason: events.ReasonFailed, State: "compensated", OutOrderID: "o-1", Error: "retries_exhausted: busy",
			FailedAt: now.Add(-90 * time.Minute), StoredAt: now.Add(-time.Minute)},
		{Seq: 12, Reason: events.ReasonInvalid, Error: strings.Repeat("é", 100), StoredAt: now.Add(-42 * time.Second)},
	}
	var b bytes.Buffer
	if err := WriteTable(&b, letters, now); err != nil {
		t.Fatal(err)
	}
	want := "SEQ  AGE    REASON   STATE        ORDER  ERROR\n" +
		"3    1h30m  failed   compensated  o-1    retries_exhausted: busy\n" +
		"12   42s    invalid  -            -      " + strings.Repeat("é", 79) + "…\n"
	t.Run("the age counts from the failure, empty fields read -, a long error is cut at 80 runes", func(t *testing.T) {
		if b.String() != want {
			t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
		}
	})
}

func TestWriteJSONLinesLeavesTheBodyOut(t *testing.T) {
	t.Parallel()
	stored := time.Date(2026, 11, 21, 10, 0, 0, 0, time.FixedZone("x", 3600))
	l := FromDeadLetter(events.DeadLetter{StreamSeq: 5, Reason: events.ReasonFailed, OutOrderID: "o-5",
		Data: []byte(`{"js_code":"SECRET"}`)}, stored, nats.Header{"A": {"b"}}).Masked()
	var b bytes.Buffer
	if err := WriteJSONLines(&b, []Letter{l, l}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), b.String())
	}
	var e Entry
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
		t.Fatal(err)
	}
	if e.Seq != 5 || e.OutOrderID != "o-5" || !e.StoredAt.Equal(stored) || e.StoredAt.Location() != time.UTC {
		t.Errorf("entry %+v", e)
	}
	if strings.Contains(b.String(), "SECRET") || strings.Contains(b.String(), "js_code") || strings.Contains(b.String(), `"A"`) {
		t.Errorf("a listing carries the body or headers:\n%s", b.String())
	}
}

func TestWriteLetter(t *testing.T) {
	t.Parallel()
	stored := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	body := `{"out_order_id":"o-1","payment":{"mogs":{"js_code":"SECRET"}}}`
	l := FromDeadLetter(events.DeadLetter{StreamSeq: 9, Subject: "coinsaga.dlq.g.r.o-1", OutOrderID: "o-1", MgID: "g", RoomID: "r",
		Data: []byte(body)}, stored, nats.Header{"Z": {"last"}, "A": {"1", "2"}}).Masked()
	var b bytes.Buffer
	if err := WriteLetter(&b, l, stored.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	want := "seq      9\n" +
		"subject  coinsaga.dlq.g.r.o-1\n" +
		"stored   2026-11-21T09:00:00Z (2h0m ago)\n" +
		"order    o-1 (game g, room r)\n" +
		"\nheaders:\n  A: 1\n  A: 2\n  Z: last\n" +
		"\nbody (" + strconv.Itoa(len(body)) + " bytes, secrets masked; --raw prints it exactly):\n" + l.Body + "\n"
	if b.String() != want {
		t.Errorf("show:\n%s\nwant:\n%s", b.String(), want)
	}
	if strings.Contains(b.String(), "SECRET") {
		t.Errorf("show prints a secret:\n%s", b.String())
	}
}

func TestSummaries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"a replay counts each outcome", ReplaySummary(Report{Replayed: 3, Completed: 1, Failed: 2}), "replayed 3, already completed 1, failed 2"},
		{"a replay names skipped letters only when there are some", ReplaySummary(Report{Replayed: 1, Skipped: 2}), "replayed 1, already completed 0, failed 0, skipped 2"},
		{"a dry-run replay says nothing changed", ReplaySummary(Report{DryRun: true, Replayed: 1}), "dry run, nothing changed: would have replayed 1, already completed 0, failed 0"},
		{"a purge counts what it deleted", PurgeSummary(Report{Purged: 4}), "purged 4 dead letter(s)"},
		{"a purge names failures only when there are some", PurgeSummary(Report{Purged: 4, Failed: 1}), "purged 4 dead letter(s), failed 1"},
		{"a dry-run purge counts what it selected", PurgeSummary(Report{DryRun: true, Total: 6}), "dry run, nothing changed: would have purged 6 dead letter(s)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.got != tc.want {
				t.Errorf("%q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestPrinter(t *testing.T) {
	t.Parallel()
	l := Letter{Seq: 4, Reason: events.ReasonFailed, OutOrderID: "o-4", Error: "retries_exhausted: busy"}
	run := func(p *Printer, total int, results ...Result) {
		rep := Report{Total: total, DryRun: p.dryRun}
		p.Step(Progress{Total: total})
		for i, r := range results {
			rep.add(r)
			p.Step(Progress{Done: i + 1, Total: total, Result: r})
		}
		p.Done(rep)
	}
	t.Run("a single replay gets a line, no bar and the summary", func(t *testing.T) {
		t.Parallel()
		var out, errOut bytes.Buffer
		run(ReplayPrinter(&out, &errOut, false), 1, Result{Letter: l, Outcome: Replayed, Subject: "coinsaga.intents.g.r"})
		if out.String() != "seq 4 order o-4: replayed to coinsaga.intents.g.r\nreplayed 1, already completed 0, failed 0\n" || errOut.Len() != 0 {
			t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
		}
	})
	t.Run("a bulk replay draws a bar and names only the letters that need a look", func(t *testing.T) {
		t.Parallel()
		var out, errOut bytes.Buffer
		run(ReplayPrinter(&out, &errOut, false), 2, Result{Letter: l, Outcome: Replayed, Subject: "s"},
			Result{Letter: l, Outcome: Failed, Err: &OpError{Op: OpPublish, Err: errors.New("boom")}, StateErr: errors.New("no responders")})
		if strings.Contains(out.String(), "replayed to") || !strings.Contains(out.String(), "seq 4 order o-4: failed: republishing to") ||
			!strings.HasSuffix(out.String(), "\nreplayed 1, already completed 0, failed 1\n") {
			t.Errorf("stdout %q", out.String())
		}
		if !strings.Contains(errOut.String(), "replay") || !strings.Contains(errOut.String(), "warning: cannot ask workers for order states (no responders)") {
			t.Errorf("stderr %q, want a bar and the warning", errOut.String())
		}
	})
	t.Run("a dry-run purge says what it would delete", func(t *testing.T) {
		t.Parallel()
		var out, errOut bytes.Buffer
		run(PurgePrinter(&out, &errOut, true), 2, Result{Letter: l, Outcome: Purged, DryRun: true}, Result{Letter: Letter{Seq: 5}, Outcome: Purged, DryRun: true})
		want := "would purge seq 4: failed o-4 retries_exhausted: busy\nwould purge seq 5:  - -\n" +
			"dry run, nothing changed: would have purged 2 dead letter(s)\n"
		if out.String() != want || errOut.Len() != 0 {
			t.Errorf("stdout %q, stderr %q; want stdout %q", out.String(), errOut.String(), want)
		}
	})
	t.Run("a purge names the letters it could not delete by seq", func(t *testing.T) {
		t.Parallel()
		var out, errOut bytes.Buffer
		run(PurgePrinter(&out, &errOut, false), 1, Result{Letter: l, Outcome: Failed, Err: &OpError{Op: OpRemove, Err: errors.New("timeout")}})
		if out.String() != "seq 4: deleting failed: timeout\npurged 0 dead letter(s), failed 1\n" {
			t.Errorf("stdout %q", out.String())
		}
	})
	t.Run("a missing seq is named on the writer given", func(t *testing.T) {
		t.Parallel()
		var b bytes.Buffer
		o := newOptions(ReplayPrinter(nil, &b, false).Options())
		o.missing(8)
		if b.String() != "seq 8: no such dead letter (already replayed or purged?)\n" || o.dryRun {
			t.Errorf("%q", b.String())
		}
	})
}

func TestPrinterFinishSaysWhetherTheCommandFailed(t *testing.T) {
	t.Parallel()
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	interrupted := fmt.Errorf("%w after 1 of 3 dead letters: %w", ErrInterrupted, context.Canceled)
	selectErr := errors.New("listing: timeout")
	tests := []struct {
		name    string
		printer func(out, err *bytes.Buffer) *Printer
		ctx     context.Context
		rep     Report
		err     error
		wantErr string // "" for none
		summary bool   // whether the summary line is printed
	}{
		{name: "a replay that did all it was asked succeeds", printer: replayPrinter(false), ctx: live,
			rep: Report{Total: 2, Replayed: 2}, summary: true},
		{name: "a replay with failed letters fails and says they remain", printer: replayPrinter(false), ctx: live,
			rep: Report{Total: 2, Replayed: 1, Failed: 1}, wantErr: "1 dead letter(s) could not be replayed and remain in the stream", summary: true},
		{name: "an interrupted replay says how far it got and that the rest are untouched", printer: replayPrinter(false), ctx: ended,
			rep: Report{Total: 3, Results: make([]Result, 1)}, err: interrupted,
			wantErr: "interrupted after 1 of 3 dead letters; the rest are untouched", summary: true},
		{name: "an interrupted dry-run replay still fails", printer: replayPrinter(true), ctx: ended,
			rep: Report{Total: 3, DryRun: true, Results: make([]Result, 1)}, err: interrupted,
			wantErr: "interrupted after 1 of 3 dead letters; the rest are untouched", summary: true},
		{name: "a selection error is returned as it is with no summary", printer: replayPrinter(false), ctx: live,
			err: selectErr, wantErr: selectErr.Error()},
		{name: "a purge with failed letters fails", printer: purgePrinter(false), ctx: live,
			rep: Report{Total: 2, Purged: 1, Failed: 1}, wantErr: "1 dead letter(s) could not be deleted", summary: true},
		{name: "an interrupted purge says how far it got", printer: purgePrinter(false), ctx: ended,
			rep: Report{Total: 3, Results: make([]Result, 1)}, err: interrupted, wantErr: "interrupted after 1 of 3 dead letters", summary: true},
		{name: "a dry-run purge never fails", printer: purgePrinter(true), ctx: ended,
			rep: Report{Total: 3, DryRun: true, Failed: 1}, err: interrupted, summary: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			err := tc.printer(&out, &errOut).Finish(tc.ctx, tc.rep, tc.err)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Finish = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Errorf("Finish = %v, want %q", err, tc.wantErr)
			}
			if printed := out.Len() > 0; printed != tc.summary {
				t.Errorf("summary printed %v, want %v: %q", printed, tc.summary, out.String())
			}
		})
	}
}

func replayPrinter(dryRun bool) func(out, err *bytes.Buffer) *Printer {
	return func(out, err *bytes.Buffer) *Printer { return ReplayPrinter(out, err, dryRun) }
}

func purgePrinter(dryRun bool) func(out, err *bytes.Buffer) *Printer {
	return func(out, err *bytes.Buffer) *Printer { return PurgePrinter(out, err, dryRun) }
}
