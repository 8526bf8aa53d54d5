package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/cli"
	"github.com/coinsaga/coinsaga/internal/deadletter"
	"github.com/coinsaga/coinsaga/internal/progress"
)

// The dead-letter commands parse flags, call internal/deadletter and
// print; what is selected, replayed or purged is decided there.

const dlqUsageText = `Usage: coinsaga dlq list|show|replay|purge [flags]

Dead letters are the intents that need an operator, kept in the stream
<PREFIX>_DLQ (COINSAGA_DLQ) until replayed or purged.

  list     print the dead letters that match the filters, oldest first
  show     print one dead letter's headers and body (secrets masked)
  replay   republish the original intents; a failed or needs_attention order
           resumes where it stopped, a completed one is never charged again
  purge    delete the dead letters that match the filters

Filters (list, replay, purge): --reason, --mg-id, --since, --seq, --limit.
Run "coinsaga dlq <subcommand> --help" for each subcommand's flags.
`

func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsageText)
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, dlqUsageText)
		return nil
	case "list":
		return runDLQList(ctx, args[1:], stdout, stderr)
	case "show":
		return runDLQShow(ctx, args[1:], stdout, stderr)
	case "replay":
		return runDLQReplay(ctx, args[1:], stdout, stderr)
	case "purge":
		return runDLQPurge(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "coinsaga dlq: unknown subcommand %q\n\n", args[0])
	fmt.Fprint(stderr, dlqUsageText)
	return errUsage
}

// dlqFlags are the connection and selection flags of list, replay and purge.
type dlqFlags struct {
	nats   natsFlags
	reason string
	mgID   string
	since  string
	seq    string
	limit  int
}

func (d *dlqFlags) register(fs *flag.FlagSet) {
	d.nats.register(fs)
	fs.StringVar(&d.reason, "reason", "", "only these reasons, comma-separated: invalid, rejected, conflict, failed, needs_attention")
	fs.StringVar(&d.mgID, "mg-id", "", "only the dead letters of this game (mg_id)")
	fs.StringVar(&d.since, "since", "", "only dead letters newer than this: a duration (10m, 2h) or an RFC 3339 time")
	fs.StringVar(&d.seq, "seq", "", "only these dead letters, by stream sequence, comma-separated (N,M,...)")
	fs.IntVar(&d.limit, "limit", 0, "at most this many dead letters, oldest first (0: no limit)")
}

// open parses the command line of list, replay or purge, checks its
// filter (with check, if given) and only then connects.
func (d *dlqFlags) open(ctx context.Context, fs *flag.FlagSet, args []string, name string, now time.Time, check func(dlqFilter) error) (*dlqSession, dlqFilter, error) {
	if _, err := parse(fs, args); err != nil {
		return nil, dlqFilter{}, err
	}
	if fs.NArg() > 0 {
		return nil, dlqFilter{}, fmt.Errorf("dlq %s takes no arguments (got %q); use --seq to pick dead letters", name, fs.Args())
	}
	f, err := d.filter(now)
	if err == nil && check != nil {
		err = check(f)
	}
	if err != nil {
		return nil, f, err
	}
	s, err := openDLQ(ctx, &d.nats, name)
	return s, f, err
}

// dlqFilter is what the selection flags say, checked; lib is it for the
// deadletter package. The zero value selects every dead letter.
type dlqFilter struct {
	reasons map[events.Reason]bool
	mgID    string
	since   time.Time
	seqs    []uint64 // ascending, no repeats
	limit   int
}

func (d *dlqFlags) filter(now time.Time) (dlqFilter, error) {
	var f dlqFilter
	var problems []string
	if d.reason != "" {
		f.reasons = map[events.Reason]bool{}
		for _, r := range strings.Split(d.reason, ",") {
			r = strings.TrimSpace(r)
			if !deadletter.KnownReason(events.Reason(r)) {
				problems = append(problems, fmt.Sprintf("--reason %q: want invalid, rejected, conflict, failed or needs_attention", r))
				continue
			}
			f.reasons[events.Reason(r)] = true
		}
	}
	if d.mgID != "" {
		if !events.ValidID(d.mgID) {
			problems = append(problems, fmt.Sprintf("--mg-id %q is not a valid mg_id", d.mgID))
		}
		f.mgID = d.mgID
	}
	if d.since != "" {
		t, err := cli.ParseSince(d.since, now)
		if err != nil {
			problems = append(problems, err.Error())
		}
		f.since = t
	}
	if d.seq != "" {
		for _, s := range strings.Split(d.seq, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
			if err != nil || n == 0 {
				problems = append(problems, fmt.Sprintf("--seq: %q is not a stream sequence", s))
				continue
			}
			f.seqs = append(f.seqs, n)
		}
		slices.Sort(f.seqs)
		f.seqs = slices.Compact(f.seqs)
	}
	if d.limit < 0 {
		problems = append(problems, "--limit must not be negative")
	}
	f.limit = d.limit
	if len(problems) > 0 {
		return dlqFilter{}, errors.New(strings.Join(problems, "; "))
	}
	return f, nil
}

func (f dlqFilter) lib() deadletter.Filter {
	d := deadletter.Filter{MgID: f.mgID, Since: f.since, Seqs: f.seqs, Limit: f.limit}
	for r := range f.reasons {
		d.Reasons = append(d.Reasons, r)
	}
	return d
}

func (f dlqFilter) narrows() bool           { return f.lib().Narrows() }
func (f dlqFilter) match(d deadLetter) bool { return f.lib().Match(d.letter()) }

// deadLetter is a dead letter as events reads it, with when the stream
// stored it: the shape the filter and target tests build letters in.
type deadLetter struct {
	events.DeadLetter
	StoredAt time.Time
}

func (d deadLetter) letter() deadletter.Letter {
	return deadletter.FromDeadLetter(d.DeadLetter, d.StoredAt, nil)
}

// dlqSession is a connection to the dead-letter stream.
type dlqSession struct {
	nc       *nats.Conn
	q        *deadletter.Queue
	subjects events.Subjects
}

func openDLQ(ctx context.Context, n *natsFlags, name string) (*dlqSession, error) {
	nc, err := n.connect("dlq " + name)
	if err != nil {
		return nil, err
	}
	subjects := events.Subjects{Prefix: n.prefix}
	q, err := deadletter.Open(ctx, nc, subjects)
	if err != nil {
		nc.Close()
		if errors.Is(err, deadletter.ErrNoStream) {
			return nil, fmt.Errorf("no dead-letter stream %s: no worker has run on this NATS yet, or --prefix differs", subjects.DLQStream())
		}
		return nil, err
	}
	return &dlqSession{nc: nc, q: q, subjects: subjects}, nil
}

func (s *dlqSession) close() { s.nc.Close() }

// missing tells the operator of a --seq that names no dead letter.
func missing(stderr io.Writer) deadletter.Option {
	return deadletter.OnMissing(func(seq uint64) {
		fmt.Fprintf(stderr, "seq %d: no such dead letter (already replayed or purged?)\n", seq)
	})
}

// dlq list

// dlqEntry is one line of `dlq list --json`. It leaves the body out: the
// body is the intent, player secrets included.
type dlqEntry = deadletter.Entry

func runDLQList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d dlqFlags
	fs := newFlags("dlq list", "dlq list [flags]\n\nPrints the dead letters that match the filters, oldest first: a table, or with --json\none JSON object per line (bodies left out, as they hold player secrets).", stderr)
	d.register(fs)
	asJSON := fs.Bool("json", false, "print one JSON object per dead letter, one per line")
	now := time.Now()
	s, f, err := d.open(ctx, fs, args, "list", now, nil)
	if err != nil {
		return err
	}
	defer s.close()
	letters, err := s.q.List(ctx, f.lib(), missing(stderr))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, l := range letters {
			if err := enc.Encode(l.Entry()); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tAGE\tREASON\tSTATE\tORDER\tERROR")
	for _, l := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", l.Seq, age(now.Sub(l.At())), l.Reason,
			orDash(l.State), orDash(l.OutOrderID), truncate(orDash(l.Error), 80))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d dead letter(s)\n", len(letters))
	return nil
}

// age prints a duration the way an operator reads a queue: 42s, 12m, 5h12m, 3d4h.
func age(d time.Duration) string {
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

// dlq show

func runDLQShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var n natsFlags
	fs := newFlags("dlq show", "dlq show [flags] <seq>\n\nPrints one dead letter: its headers, and its body with the player's secrets\n(js_code, session_key, openkey, pfkey) replaced by \"***\". --raw prints the exact body bytes.", stderr)
	n.register(fs)
	raw := fs.Bool("raw", false, "print only the body, byte for byte, secrets included")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	seq, err := strconv.ParseUint(fs.Arg(0), 10, 64)
	if err != nil || seq == 0 {
		return fmt.Errorf("%q is not a stream sequence (see dlq list)", fs.Arg(0))
	}
	s, err := openDLQ(ctx, &n, "show")
	if err != nil {
		return err
	}
	defer s.close()
	d, err := s.q.Get(ctx, seq)
	if errors.Is(err, deadletter.ErrNotFound) {
		return fmt.Errorf("dead letter %d not found: already replayed or purged, or never existed", seq)
	}
	if err != nil {
		return err
	}
	if *raw {
		_, err := stdout.Write(d.Raw())
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "seq\t%d\n", d.Seq)
	fmt.Fprintf(tw, "subject\t%s\n", d.Subject)
	fmt.Fprintf(tw, "stored\t%s (%s ago)\n", d.StoredAt.UTC().Format(time.RFC3339Nano), age(time.Since(d.StoredAt)))
	if d.OutOrderID != "" {
		fmt.Fprintf(tw, "order\t%s (game %s, room %s)\n", d.OutOrderID, d.MgID, d.RoomID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nheaders:")
	keys := make([]string, 0, len(d.Header))
	for k := range d.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range d.Header[k] {
			fmt.Fprintf(stdout, "  %s: %s\n", k, v)
		}
	}
	fmt.Fprintf(stdout, "\nbody (%d bytes, secrets masked; --raw prints it exactly):\n", d.Size)
	io.WriteString(stdout, d.Body)
	fmt.Fprintln(stdout)
	return nil
}

// dlq replay

type replayFlags struct {
	dlqFlags
	dryRun       bool
	orderTimeout time.Duration
}

func runDLQReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var r replayFlags
	fs := newFlags("dlq replay", `dlq replay [flags]

Republishes the original intent of each selected dead letter to the intents
stream, with a new Nats-Msg-Id and a Coinsaga-Replay header, waits for
JetStream to acknowledge it, then deletes the dead letter. A failed,
compensated, needs_attention or rejected order resumes from the step it
stopped at, with the same idempotency keys. Each order's state is asked of a
running worker first: a completed order is reported and its dead letter
removed, and nothing is republished for it. Invalid and conflict dead letters
are skipped: replaying them would only dead-letter them again. So is a
truncated one (Coinsaga-Truncated), whose body is not the whole intent.`, stderr)
	r.register(fs)
	fs.BoolVar(&r.dryRun, "dry-run", false, "print what would be done and change nothing")
	fs.DurationVar(&r.orderTimeout, "order-timeout", deadletter.DefaultOrderTimeout, "how long to wait for a worker to report an order's state (no answer: replay anyway)")
	s, f, err := r.open(ctx, fs, args, "replay", time.Now(), nil)
	if err != nil {
		return err
	}
	defer s.close()
	rp := &replayer{s: s, label: "replay", dryRun: r.dryRun, stdout: stdout, stderr: stderr}
	opts := []deadletter.Option{deadletter.OrderTimeout(r.orderTimeout), missing(stderr), deadletter.OnProgress(rp.step)}
	if r.dryRun {
		opts = append(opts, deadletter.DryRun())
	}
	rep, err := s.q.Replay(ctx, f.lib(), opts...)
	if err != nil && !errors.Is(err, deadletter.ErrInterrupted) {
		return err
	}
	rp.done()
	summary := fmt.Sprintf("replayed %d, already completed %d, failed %d", rep.Replayed, rep.Completed, rep.Failed)
	if rep.Skipped > 0 {
		summary += fmt.Sprintf(", skipped %d", rep.Skipped)
	}
	if r.dryRun {
		summary = "dry run, nothing changed: would have " + summary
	}
	fmt.Fprintln(stdout, summary)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted after %d of %d dead letters; the rest are untouched", len(rep.Results), rep.Total)
	case rep.Failed > 0:
		return fmt.Errorf("%d dead letter(s) could not be replayed and remain in the stream", rep.Failed)
	}
	return nil
}

// replayer prints replay and purge progress. The bar is for bulk work;
// per-letter lines then only name the letters that need a look, so they
// do not drown the count.
type replayer struct {
	s              *dlqSession
	label          string
	dryRun         bool
	stdout, stderr io.Writer
	bar            *progress.Bar
}

func (r *replayer) step(p deadletter.Progress) {
	res := p.Result
	switch {
	case p.Done == 0:
		if !r.dryRun && p.Total > 1 {
			r.bar = progress.New(r.stderr, p.Total, r.label)
		}
		return
	case res.StateErr != nil:
		fmt.Fprintf(r.stderr, "warning: cannot ask workers for order states (%v); replaying without that check: a worker never charges a completed order again\n", res.StateErr)
	}
	switch {
	case res.Outcome == deadletter.Purged && r.dryRun:
		l := res.Letter
		fmt.Fprintf(r.stdout, "would purge seq %d: %s %s %s\n", l.Seq, l.Reason, orDash(l.OutOrderID), truncate(orDash(l.Error), 80))
	case res.Outcome == deadletter.Purged, res.Outcome == deadletter.Replayed && r.bar != nil:
		// Counted by the bar and the summary: a line each would drown them.
	case r.label == "purge":
		fmt.Fprintf(r.stdout, "seq %d: %s\n", res.Letter.Seq, res.Message())
	default:
		fmt.Fprintf(r.stdout, "%s: %s\n", res.Name(), res.Message())
	}
	if r.bar != nil {
		r.bar.Add(1)
	}
}

func (r *replayer) done() {
	if r.bar != nil {
		r.bar.Done()
	}
}

// target is where d's intent would go back to.
func (r *replayer) target(d deadLetter) (string, error) {
	return deadletter.Target(r.s.subjects, d.letter())
}

// dlq purge

func runDLQPurge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d dlqFlags
	fs := newFlags("dlq purge", "dlq purge [flags]\n\nDeletes the dead letters that match the filters. With no filter it refuses,\nunless --all says to delete every one.", stderr)
	d.register(fs)
	all := fs.Bool("all", false, "allow purging with no filter: every dead letter")
	dryRun := fs.Bool("dry-run", false, "print what would be deleted and change nothing")
	s, f, err := d.open(ctx, fs, args, "purge", time.Now(), func(f dlqFilter) error {
		if !f.narrows() && !*all {
			return errors.New("refusing to purge every dead letter: give --reason, --mg-id, --since or --seq, or --all")
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer s.close()
	rp := &replayer{s: s, label: "purge", dryRun: *dryRun, stdout: stdout, stderr: stderr}
	opts := []deadletter.Option{deadletter.All(), missing(stderr), deadletter.OnProgress(rp.step)}
	if *dryRun {
		opts = append(opts, deadletter.DryRun())
	}
	rep, err := s.q.Purge(ctx, f.lib(), opts...)
	if err != nil && !errors.Is(err, deadletter.ErrInterrupted) {
		return err
	}
	if *dryRun {
		fmt.Fprintf(stdout, "dry run, nothing changed: would have purged %d dead letter(s)\n", rep.Total)
		return nil
	}
	rp.done()
	summary := fmt.Sprintf("purged %d dead letter(s)", rep.Purged)
	if rep.Failed > 0 {
		summary += fmt.Sprintf(", failed %d", rep.Failed)
	}
	fmt.Fprintln(stdout, summary)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted after %d of %d dead letters", len(rep.Results), rep.Total)
	case rep.Failed > 0:
		return fmt.Errorf("%d dead letter(s) could not be deleted", rep.Failed)
	}
	return nil
}
