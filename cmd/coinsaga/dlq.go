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
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/progress"
	"github.com/coinsaga/coinsaga/worker"
)

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

// dlqIdleWait bounds the wait for the next dead letter while reading the
// stream. Reading stops on its own at the last message; this only ends a
// read whose last message was deleted under it.
const dlqIdleWait = 2 * time.Second

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

// dlqFilter selects dead letters. The zero value selects all of them.
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
			if !knownReason(events.Reason(r)) {
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
		t, err := parseSince(d.since, now)
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

func knownReason(r events.Reason) bool {
	switch r {
	case events.ReasonInvalid, events.ReasonRejected, events.ReasonConflict, events.ReasonFailed, events.ReasonNeedsAttention:
		return true
	}
	return false
}

// parseSince reads "newer than": a duration back from now, or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: a duration back from now must not be negative", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a duration (10m, 2h) or an RFC 3339 time (2026-11-21T10:00:00Z)", s)
	}
	return t, nil
}

// narrows reports whether f selects less than every dead letter; a limit
// alone does not count, as "the oldest N" is no reason to delete them.
func (f dlqFilter) narrows() bool {
	return len(f.reasons) > 0 || f.mgID != "" || !f.since.IsZero() || len(f.seqs) > 0
}

func (f dlqFilter) match(d deadLetter) bool {
	if len(f.reasons) > 0 && !f.reasons[d.Reason] {
		return false
	}
	if f.mgID != "" && d.MgID != f.mgID {
		return false
	}
	if !f.since.IsZero() && d.at().Before(f.since) {
		return false
	}
	return true
}

// deadLetter is a dead letter with where and when the stream stored it.
type deadLetter struct {
	events.DeadLetter
	StoredAt time.Time
	Header   nats.Header
}

// at is when the order failed, or when the dead letter was stored if its
// Coinsaga-Failed-At header is missing or damaged.
func (d deadLetter) at() time.Time {
	if !d.FailedAt.IsZero() {
		return d.FailedAt
	}
	return d.StoredAt
}

func newDeadLetter(m *jetstream.RawStreamMsg) deadLetter {
	return deadLetter{DeadLetter: events.DeadLetterFromMsg(m), StoredAt: m.Time, Header: m.Header}
}

// dlqSession is a connection to the dead-letter stream.
type dlqSession struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream
	subjects events.Subjects
}

func openDLQ(ctx context.Context, n *natsFlags, name string) (*dlqSession, error) {
	nc, err := n.connect("dlq " + name)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	subjects := events.Subjects{Prefix: n.prefix}
	stream, err := js.Stream(ctx, subjects.DLQStream())
	if err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("no dead-letter stream %s: no worker has run on this NATS yet, or --prefix differs", subjects.DLQStream())
		}
		return nil, fmt.Errorf("dead-letter stream %s: %w", subjects.DLQStream(), err)
	}
	return &dlqSession{nc: nc, js: js, stream: stream, subjects: subjects}, nil
}

func (s *dlqSession) close() { s.nc.Close() }

// selectLetters returns the dead letters that match f, oldest first, as
// the stream stood when called: dead letters that arrive meanwhile (say, a
// replayed order failing again) wait for the next run rather than loop.
// Without bodies only headers travel, which keeps listing thousands cheap.
func (s *dlqSession) selectLetters(ctx context.Context, f dlqFilter, bodies bool, stderr io.Writer) ([]deadLetter, error) {
	if len(f.seqs) > 0 {
		return s.bySeq(ctx, f, stderr)
	}
	info, err := s.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	last := info.State.LastSeq
	filter := s.subjects.DeadLetters()
	if f.mgID != "" {
		// The game is a subject token: the server skips other games.
		filter = s.subjects.DeadLetterFilter(f.mgID, "", "")
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{filter},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		HeadersOnly:       !bodies,
		InactiveThreshold: 30 * time.Second,
	}
	if !f.since.IsZero() {
		// A dead letter is stored after its order failed, so nothing
		// stored before since can have failed after it.
		start := f.since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := s.js.OrderedConsumer(ctx, s.subjects.DLQStream(), cfg)
	if err != nil {
		return nil, fmt.Errorf("reading dead letters: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return nil, fmt.Errorf("reading dead letters: %w", err)
	}
	defer it.Stop()
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
		return nil, nil
	}
	var out []deadLetter
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := it.Next(jetstream.NextMaxWait(dlqIdleWait))
		if errors.Is(err, nats.ErrTimeout) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading dead letters: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("reading dead letters: %w", err)
		}
		seq := meta.Sequence.Stream
		if seq > last {
			return out, nil
		}
		d := newDeadLetter(&jetstream.RawStreamMsg{Subject: m.Subject(), Sequence: seq,
			Header: m.Headers(), Data: m.Data(), Time: meta.Timestamp})
		if f.match(d) {
			out = append(out, d)
			if f.limit > 0 && len(out) >= f.limit {
				return out, nil
			}
		}
		if meta.NumPending == 0 || seq == last {
			return out, nil
		}
	}
}

// bySeq fetches the dead letters named by --seq, then applies the other
// filters to them.
func (s *dlqSession) bySeq(ctx context.Context, f dlqFilter, stderr io.Writer) ([]deadLetter, error) {
	var out []deadLetter
	for _, seq := range f.seqs {
		m, err := s.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			fmt.Fprintf(stderr, "seq %d: no such dead letter (already replayed or purged?)\n", seq)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		if d := newDeadLetter(m); f.match(d) {
			out = append(out, d)
			if f.limit > 0 && len(out) >= f.limit {
				break
			}
		}
	}
	return out, nil
}

// dlq list

// dlqEntry is one line of `dlq list --json`. It leaves the body out: the
// body is the intent, player secrets included.
type dlqEntry struct {
	Seq             uint64     `json:"seq"`
	Subject         string     `json:"subject"`
	Reason          string     `json:"reason"`
	State           string     `json:"state,omitempty"`
	Error           string     `json:"error,omitempty"`
	Attempts        int        `json:"attempts"`
	FailedAt        *time.Time `json:"failed_at,omitempty"`
	StoredAt        time.Time  `json:"stored_at"`
	OriginalSubject string     `json:"original_subject,omitempty"`
	MgID            string     `json:"mg_id,omitempty"`
	RoomID          string     `json:"room_id,omitempty"`
	OutOrderID      string     `json:"out_order_id,omitempty"`
}

func runDLQList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d dlqFlags
	fs := newFlags("dlq list", "dlq list [flags]\n\nPrints the dead letters that match the filters, oldest first: a table, or with --json\none JSON object per line (bodies left out, as they hold player secrets).", stderr)
	d.register(fs)
	asJSON := fs.Bool("json", false, "print one JSON object per dead letter, one per line")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("dlq list takes no arguments (got %q); use --seq to pick dead letters", fs.Args())
	}
	now := time.Now()
	f, err := d.filter(now)
	if err != nil {
		return err
	}
	s, err := openDLQ(ctx, &d.nats, "list")
	if err != nil {
		return err
	}
	defer s.close()
	letters, err := s.selectLetters(ctx, f, false, stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, l := range letters {
			e := dlqEntry{Seq: l.StreamSeq, Subject: l.Subject, Reason: string(l.Reason), State: l.State, Error: l.Error,
				Attempts: l.Attempts, StoredAt: l.StoredAt.UTC(), OriginalSubject: l.OriginalSubject,
				MgID: l.MgID, RoomID: l.RoomID, OutOrderID: l.OutOrderID}
			if !l.FailedAt.IsZero() {
				t := l.FailedAt.UTC()
				e.FailedAt = &t
			}
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tAGE\tREASON\tSTATE\tORDER\tERROR")
	for _, l := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", l.StreamSeq, age(now.Sub(l.at())), l.Reason,
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
	m, err := s.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("dead letter %d not found: already replayed or purged, or never existed", seq)
	}
	if err != nil {
		return fmt.Errorf("dead letter %d: %w", seq, err)
	}
	if *raw {
		_, err := stdout.Write(m.Data)
		return err
	}
	d := newDeadLetter(m)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "seq\t%d\n", d.StreamSeq)
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
	fmt.Fprintf(stdout, "\nbody (%d bytes, secrets masked; --raw prints it exactly):\n", len(d.Data))
	stdout.Write(events.MaskSecrets(d.Data))
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
	fs.DurationVar(&r.orderTimeout, "order-timeout", 2*time.Second, "how long to wait for a worker to report an order's state (no answer: replay anyway)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("dlq replay takes no arguments (got %q); use --seq to pick dead letters", fs.Args())
	}
	f, err := r.filter(time.Now())
	if err != nil {
		return err
	}
	s, err := openDLQ(ctx, &r.nats, "replay")
	if err != nil {
		return err
	}
	defer s.close()
	letters, err := s.selectLetters(ctx, f, true, stderr)
	if err != nil {
		return err
	}
	rp := &replayer{s: s, dryRun: r.dryRun, stdout: stdout,
		orders: &orderStates{nc: s.nc, subject: s.subjects.OrderGetAPI(), timeout: r.orderTimeout, stderr: stderr}}
	// The bar is for bulk work; per-letter lines then only name the
	// letters that need a look, so they do not drown the count.
	var bar *progress.Bar
	if !r.dryRun && len(letters) > 1 {
		bar = progress.New(stderr, len(letters), "replay")
		rp.quiet = true
	}
	var tally [numOutcomes]int
	for _, d := range letters {
		if ctx.Err() != nil {
			break
		}
		tally[rp.one(ctx, d)]++
		if bar != nil {
			bar.Add(1)
		}
	}
	if bar != nil {
		bar.Done()
	}
	summary := fmt.Sprintf("replayed %d, already completed %d, failed %d", tally[outReplayed], tally[outCompleted], tally[outFailed])
	if tally[outSkipped] > 0 {
		summary += fmt.Sprintf(", skipped %d", tally[outSkipped])
	}
	if r.dryRun {
		summary = "dry run, nothing changed: would have " + summary
	}
	fmt.Fprintln(stdout, summary)
	done := 0
	for _, n := range tally {
		done += n
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted after %d of %d dead letters; the rest are untouched", done, len(letters))
	case tally[outFailed] > 0:
		return fmt.Errorf("%d dead letter(s) could not be replayed and remain in the stream", tally[outFailed])
	}
	return nil
}

type outcome int

const (
	outReplayed outcome = iota
	outCompleted
	outFailed
	outSkipped
	numOutcomes
)

type replayer struct {
	s      *dlqSession
	orders *orderStates
	dryRun bool
	quiet  bool // leave successful replays out of stdout
	stdout io.Writer
}

// one replays one dead letter and says what came of it.
func (r *replayer) one(ctx context.Context, d deadLetter) outcome {
	name := fmt.Sprintf("seq %d", d.StreamSeq)
	if d.OutOrderID != "" {
		name += " order " + d.OutOrderID
	}
	say := func(format string, a ...any) { fmt.Fprintf(r.stdout, name+": "+format+"\n", a...) }
	if d.TruncatedFrom > 0 {
		say("skipped: the body is only the first %d of the intent's %d bytes (%s); have the game server publish it again, then purge this one",
			len(d.Data), d.TruncatedFrom, events.HeaderTruncated)
		return outSkipped
	}
	switch d.Reason {
	case events.ReasonInvalid, events.ReasonConflict:
		say("skipped: reason %s would only be dead-lettered again; publish a corrected intent, then purge this one", d.Reason)
		return outSkipped
	}
	subject, err := r.target(d)
	if err != nil {
		say("failed: %v", err)
		return outFailed
	}
	switch state := r.orders.state(ctx, d.OutOrderID); {
	case state == events.StateCompleted:
		if r.dryRun {
			say("already completed: nothing will be charged; would remove the dead letter")
			return outCompleted
		}
		if err := r.remove(ctx, d.StreamSeq); err != nil {
			say("already completed: nothing will be charged; removing the dead letter failed: %v", err)
			return outFailed
		}
		say("already completed: nothing will be charged; dead letter removed")
		return outCompleted
	case state != "" && !state.Terminal():
		// A worker is on it (an earlier replay, say); should it fail
		// again, it writes a new dead letter, so this one stays for now.
		say("skipped: the order is in progress (state %s); left in place", state)
		return outSkipped
	}
	if r.dryRun {
		say("would replay to %s", subject)
		return outReplayed
	}
	m := nats.NewMsg(subject)
	m.Data = d.Data
	id := d.OutOrderID
	if id == "" {
		id = "invalid"
	}
	seq := strconv.FormatUint(d.StreamSeq, 10)
	// New per dead letter, so the duplicate window does not drop it as the
	// original intent, yet a rerun after an interruption is dropped.
	m.Header.Set(events.HeaderMsgID, id+":replay:"+seq)
	m.Header.Set(events.HeaderReplay, seq)
	if _, err := r.s.js.PublishMsg(ctx, m); err != nil {
		say("failed: republishing to %s: %v (the dead letter stays)", subject, err)
		return outFailed
	}
	if err := r.remove(ctx, d.StreamSeq); err != nil {
		say("replayed, but removing the dead letter failed: %v (replaying it again is harmless)", err)
		return outFailed
	}
	if !r.quiet {
		say("replayed to %s", subject)
	}
	return outReplayed
}

// remove deletes a dead letter; one already gone (another operator got
// there first) counts as removed.
func (r *replayer) remove(ctx context.Context, seq uint64) error {
	if err := r.s.stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return err
	}
	return nil
}

// target is where the intent goes back to: the subject it first came on,
// if that is an intents subject of this prefix, else the one its body
// names. A header is never trusted to send the intent anywhere else.
func (r *replayer) target(d deadLetter) (string, error) {
	base := strings.TrimSuffix(r.s.subjects.Intents(), ">")
	if rest, ok := strings.CutPrefix(d.OriginalSubject, base); ok {
		if mg, room, ok := strings.Cut(rest, "."); ok && events.ValidID(mg) && events.ValidID(room) {
			return d.OriginalSubject, nil
		}
	}
	var in struct {
		MgID   string `json:"mg_id"`
		RoomID string `json:"room_id"`
	}
	if err := json.Unmarshal(d.Data, &in); err == nil && events.ValidID(in.MgID) && events.ValidID(in.RoomID) {
		return r.s.subjects.Intent(in.MgID, in.RoomID), nil
	}
	return "", fmt.Errorf("no intents subject: %s %q is not under %s and the body names no valid mg_id and room_id",
		events.HeaderOriginalSubject, d.OriginalSubject, base)
}

// orderStates asks running workers for orders' states. When none answers,
// it says so once and stops asking: the replay goes on regardless, as the
// worker itself never charges a completed order again.
type orderStates struct {
	nc      *nats.Conn
	subject string
	timeout time.Duration
	stderr  io.Writer
	off     bool
}

// state returns the order's state, or "" when it is unknown.
func (o *orderStates) state(ctx context.Context, outOrderID string) events.State {
	if o.off || outOrderID == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	reply, err := worker.GetOrder(ctx, o.nc, o.subject, outOrderID)
	switch {
	case err == nil && reply.Order != nil:
		return events.State(reply.Order.State)
	case err != nil && reply.Error != "":
		return "" // a worker answered: no such order, or it could not read it
	case err != nil:
		o.off = true
		fmt.Fprintf(o.stderr, "warning: cannot ask workers for order states (%v); replaying without that check: a worker never charges a completed order again\n", err)
	}
	return ""
}

// dlq purge

func runDLQPurge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d dlqFlags
	fs := newFlags("dlq purge", "dlq purge [flags]\n\nDeletes the dead letters that match the filters. With no filter it refuses,\nunless --all says to delete every one.", stderr)
	d.register(fs)
	all := fs.Bool("all", false, "allow purging with no filter: every dead letter")
	dryRun := fs.Bool("dry-run", false, "print what would be deleted and change nothing")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("dlq purge takes no arguments (got %q); use --seq to pick dead letters", fs.Args())
	}
	f, err := d.filter(time.Now())
	if err != nil {
		return err
	}
	if !f.narrows() && !*all {
		return errors.New("refusing to purge every dead letter: give --reason, --mg-id, --since or --seq, or --all")
	}
	s, err := openDLQ(ctx, &d.nats, "purge")
	if err != nil {
		return err
	}
	defer s.close()
	letters, err := s.selectLetters(ctx, f, false, stderr)
	if err != nil {
		return err
	}
	if *dryRun {
		for _, l := range letters {
			fmt.Fprintf(stdout, "would purge seq %d: %s %s %s\n", l.StreamSeq, l.Reason, orDash(l.OutOrderID), truncate(orDash(l.Error), 80))
		}
		fmt.Fprintf(stdout, "dry run, nothing changed: would have purged %d dead letter(s)\n", len(letters))
		return nil
	}
	var bar *progress.Bar
	if len(letters) > 1 {
		bar = progress.New(stderr, len(letters), "purge")
	}
	purged, failed := 0, 0
	for _, l := range letters {
		if ctx.Err() != nil {
			break
		}
		if err := s.stream.DeleteMsg(ctx, l.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			fmt.Fprintf(stdout, "seq %d: deleting failed: %v\n", l.StreamSeq, err)
			failed++
		} else {
			purged++
		}
		if bar != nil {
			bar.Add(1)
		}
	}
	if bar != nil {
		bar.Done()
	}
	summary := fmt.Sprintf("purged %d dead letter(s)", purged)
	if failed > 0 {
		summary += fmt.Sprintf(", failed %d", failed)
	}
	fmt.Fprintln(stdout, summary)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted after %d of %d dead letters", purged+failed, len(letters))
	case failed > 0:
		return fmt.Errorf("%d dead letter(s) could not be deleted", failed)
	}
	return nil
}
