package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/deadletter"
)

// The dead-letter commands parse flags, call internal/deadletter and
// print with its Write* functions and Printer; what is selected,
// replayed or purged, and how it reads, is decided there.

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
	nats natsFlags
	sel  deadletter.Flags
}

func (d *dlqFlags) register(fs *flag.FlagSet) {
	d.nats.register(fs)
	d.sel.Register(fs)
}

// open parses the command line of list, replay or purge, checks its
// filter (with check, if given) and only then connects.
func (d *dlqFlags) open(ctx context.Context, fs *flag.FlagSet, args []string, name string, check func(deadletter.Filter) error) (*nats.Conn, *deadletter.Queue, deadletter.Filter, error) {
	if _, err := parse(fs, args); err != nil {
		return nil, nil, deadletter.Filter{}, err
	}
	if fs.NArg() > 0 {
		return nil, nil, deadletter.Filter{}, fmt.Errorf("dlq %s takes no arguments (got %q); use --seq to pick dead letters", name, fs.Args())
	}
	f, err := d.sel.Filter(time.Now())
	if err == nil && check != nil {
		err = check(f)
	}
	if err != nil {
		return nil, nil, f, err
	}
	nc, q, err := openDLQ(ctx, &d.nats, name)
	return nc, q, f, err
}

// openDLQ connects to the dead-letter stream; close the connection when done.
func openDLQ(ctx context.Context, n *natsFlags, name string) (*nats.Conn, *deadletter.Queue, error) {
	nc, err := n.connect("dlq " + name)
	if err != nil {
		return nil, nil, err
	}
	subjects := events.Subjects{Prefix: n.prefix}
	q, err := deadletter.Open(ctx, nc, subjects)
	if err != nil {
		nc.Close()
		if errors.Is(err, deadletter.ErrNoStream) {
			return nil, nil, fmt.Errorf("no dead-letter stream %s: no worker has run on this NATS yet, or --prefix differs", subjects.DLQStream())
		}
		return nil, nil, err
	}
	return nc, q, nil
}

func runDLQList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d dlqFlags
	fs := newFlags("dlq list", "dlq list [flags]\n\nPrints the dead letters that match the filters, oldest first: a table, or with --json\none JSON object per line (bodies left out, as they hold player secrets).", stderr)
	d.register(fs)
	asJSON := fs.Bool("json", false, "print one JSON object per dead letter, one per line")
	nc, q, f, err := d.open(ctx, fs, args, "list", nil)
	if err != nil {
		return err
	}
	defer nc.Close()
	letters, err := q.List(ctx, f, deadletter.PrintMissing(stderr))
	switch {
	case err != nil:
		return err
	case *asJSON:
		return deadletter.WriteJSONLines(stdout, letters)
	}
	if err := deadletter.WriteTable(stdout, letters, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d dead letter(s)\n", len(letters))
	return nil
}

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
	nc, q, err := openDLQ(ctx, &n, "show")
	if err != nil {
		return err
	}
	defer nc.Close()
	l, err := q.Get(ctx, seq)
	switch {
	case errors.Is(err, deadletter.ErrNotFound):
		return fmt.Errorf("dead letter %d not found: already replayed or purged, or never existed", seq)
	case err != nil:
		return err
	case *raw:
		_, err := stdout.Write(l.Raw())
		return err
	}
	return deadletter.WriteLetter(stdout, l, time.Now())
}

func runDLQReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d dlqFlags
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
	d.register(fs)
	dryRun := fs.Bool("dry-run", false, "print what would be done and change nothing")
	orderTimeout := fs.Duration("order-timeout", deadletter.DefaultOrderTimeout, "how long to wait for a worker to report an order's state (no answer: replay anyway)")
	nc, q, f, err := d.open(ctx, fs, args, "replay", nil)
	if err != nil {
		return err
	}
	defer nc.Close()
	p := deadletter.ReplayPrinter(stdout, stderr, *dryRun)
	rep, err := q.Replay(ctx, f, append(p.Options(), deadletter.OrderTimeout(*orderTimeout))...)
	return p.Finish(ctx, rep, err)
}

func runDLQPurge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d dlqFlags
	fs := newFlags("dlq purge", "dlq purge [flags]\n\nDeletes the dead letters that match the filters. With no filter it refuses,\nunless --all says to delete every one.", stderr)
	d.register(fs)
	all := fs.Bool("all", false, "allow purging with no filter: every dead letter")
	dryRun := fs.Bool("dry-run", false, "print what would be deleted and change nothing")
	nc, q, f, err := d.open(ctx, fs, args, "purge", func(f deadletter.Filter) error {
		if !f.Narrows() && !*all {
			return errors.New("refusing to purge every dead letter: give --reason, --mg-id, --since or --seq, or --all")
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer nc.Close()
	p := deadletter.PurgePrinter(stdout, stderr, *dryRun)
	rep, err := q.Purge(ctx, f, append(p.Options(), deadletter.All())...)
	return p.Finish(ctx, rep, err)
}
