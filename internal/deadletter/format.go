package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/coinsaga/coinsaga/internal/progress"
)

// The text an operator reads about dead letters: `coinsaga dlq` prints
// it, and the console may, so that both say the same thing the same way.
// Each function writes to w and returns the first write error.

// WriteTable prints letters as the table of `coinsaga dlq list`, ages
// counted back from now. The error column is cut at 80 runes: a listing
// is for scanning, and show prints the whole of it.
func WriteTable(w io.Writer, letters []Letter, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tAGE\tREASON\tSTATE\tORDER\tERROR")
	for _, l := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", l.Seq, Age(now.Sub(l.At())), l.Reason,
			orDash(l.State), orDash(l.OutOrderID), truncate(orDash(l.Error), 80))
	}
	return tw.Flush()
}

// WriteJSONLines prints each letter's Entry as one JSON object a line,
// as `coinsaga dlq list --json` does: the body stays out, as it holds the
// player's secrets.
func WriteJSONLines(w io.Writer, letters []Letter) error {
	enc := json.NewEncoder(w)
	for _, l := range letters {
		if err := enc.Encode(l.Entry()); err != nil {
			return err
		}
	}
	return nil
}

// WriteLetter prints one letter as `coinsaga dlq show` does: where it is,
// its headers sorted by name, and its masked Body (fill it with Get or
// Masked first; Raw is never printed here).
func WriteLetter(w io.Writer, l Letter, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "seq\t%d\n", l.Seq)
	fmt.Fprintf(tw, "subject\t%s\n", l.Subject)
	fmt.Fprintf(tw, "stored\t%s (%s ago)\n", l.StoredAt.UTC().Format(time.RFC3339Nano), Age(now.Sub(l.StoredAt)))
	if l.OutOrderID != "" {
		fmt.Fprintf(tw, "order\t%s (game %s, room %s)\n", l.OutOrderID, l.MgID, l.RoomID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w, "\nheaders:"); err != nil {
		return err
	}
	keys := make([]string, 0, len(l.Header))
	for k := range l.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range l.Header[k] {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
	fmt.Fprintf(w, "\nbody (%d bytes, secrets masked; --raw prints it exactly):\n", l.Size)
	_, err := fmt.Fprintln(w, l.Body)
	return err
}

// Age prints a duration the way an operator reads a queue: 42s, 12m,
// 5h12m, 3d4h. A negative one (a clock behind the server's) is 0s.
func Age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// PrintMissing is OnMissing telling the operator, on w, of a Seq that
// names no dead letter.
func PrintMissing(w io.Writer) Option {
	return OnMissing(func(seq uint64) {
		fmt.Fprintf(w, "seq %d: no such dead letter (already replayed or purged?)\n", seq)
	})
}

// ReplaySummary is the last line of a replay: how many letters came to
// what.
func ReplaySummary(rep Report) string {
	s := fmt.Sprintf("replayed %d, already completed %d, failed %d", rep.Replayed, rep.Completed, rep.Failed)
	if rep.Skipped > 0 {
		s += fmt.Sprintf(", skipped %d", rep.Skipped)
	}
	if rep.DryRun {
		s = "dry run, nothing changed: would have " + s
	}
	return s
}

// PurgeSummary is the last line of a purge.
func PurgeSummary(rep Report) string {
	if rep.DryRun {
		return fmt.Sprintf("dry run, nothing changed: would have purged %d dead letter(s)", rep.Total)
	}
	s := fmt.Sprintf("purged %d dead letter(s)", rep.Purged)
	if rep.Failed > 0 {
		s += fmt.Sprintf(", failed %d", rep.Failed)
	}
	return s
}

// Printer prints the progress of Replay or Purge: a line per letter on
// out and, for bulk work, a progress bar on err. With the bar, the lines
// only name the letters that need a look, so that they do not drown the
// count. Pass Options to the call, then Done its Report.
type Printer struct {
	out, err io.Writer
	purge    bool
	dryRun   bool
	bar      *progress.Bar
}

// ReplayPrinter prints a Replay's progress; dryRun makes it a dry run.
func ReplayPrinter(out, err io.Writer, dryRun bool) *Printer {
	return &Printer{out: out, err: err, dryRun: dryRun}
}

// PurgePrinter prints a Purge's progress; dryRun makes it a dry run.
func PurgePrinter(out, err io.Writer, dryRun bool) *Printer {
	return &Printer{out: out, err: err, purge: true, dryRun: dryRun}
}

// Options make Replay or Purge report to p, each letter and each missing
// Seq, and change nothing when p prints a dry run: what is printed and
// what is done cannot disagree.
func (p *Printer) Options() []Option {
	opts := []Option{OnProgress(p.Step), PrintMissing(p.err)}
	if p.dryRun {
		opts = append(opts, DryRun())
	}
	return opts
}

// Step prints one Progress.
func (p *Printer) Step(pr Progress) {
	res := pr.Result
	switch {
	case pr.Done == 0:
		if !p.dryRun && pr.Total > 1 {
			label := "replay"
			if p.purge {
				label = "purge"
			}
			p.bar = progress.New(p.err, pr.Total, label)
		}
		return
	case res.StateErr != nil:
		fmt.Fprintf(p.err, "warning: cannot ask workers for order states (%v); replaying without that check: a worker never charges a completed order again\n", res.StateErr)
	}
	switch {
	case res.Outcome == Purged && p.dryRun:
		l := res.Letter
		fmt.Fprintf(p.out, "would purge seq %d: %s %s %s\n", l.Seq, l.Reason, orDash(l.OutOrderID), truncate(orDash(l.Error), 80))
	case res.Outcome == Purged, res.Outcome == Replayed && p.bar != nil:
		// Counted by the bar and the summary: a line each would drown them.
	case p.purge:
		fmt.Fprintf(p.out, "seq %d: %s\n", res.Letter.Seq, res.Message())
	default:
		fmt.Fprintf(p.out, "%s: %s\n", res.Name(), res.Message())
	}
	if p.bar != nil {
		p.bar.Add(1)
	}
}

// Done finishes the bar, if there is one, and prints rep's summary line
// on out.
func (p *Printer) Done(rep Report) {
	if p.bar != nil {
		p.bar.Done()
	}
	summary := ReplaySummary
	if p.purge {
		summary = PurgeSummary
	}
	fmt.Fprintln(p.out, summary(rep))
}

// Finish ends a Replay or Purge that p printed, given what the call
// returned: an error that is not an interruption is returned as it is,
// before any summary; otherwise Done prints the summary and the error
// says whether the command failed: ctx ended before the last letter, or
// some letters failed. A dry run of a purge never fails.
func (p *Printer) Finish(ctx context.Context, rep Report, err error) error {
	if err != nil && !errors.Is(err, ErrInterrupted) {
		return err
	}
	p.Done(rep)
	switch {
	case p.purge && p.dryRun:
		return nil
	case ctx.Err() != nil && p.purge:
		return fmt.Errorf("interrupted after %d of %d dead letters", len(rep.Results), rep.Total)
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted after %d of %d dead letters; the rest are untouched", len(rep.Results), rep.Total)
	case rep.Failed > 0 && p.purge:
		return fmt.Errorf("%d dead letter(s) could not be deleted", rep.Failed)
	case rep.Failed > 0:
		return fmt.Errorf("%d dead letter(s) could not be replayed and remain in the stream", rep.Failed)
	}
	return nil
}
