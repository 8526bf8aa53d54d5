package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/cli"
)

const publishSynopsis = `publish [flags] [INTENT_JSON]

Publishes one intent given as an argument, or the intents in --file or on
standard input: JSON objects one after another, each on one line (JSON
lines) or spread over several (pretty-printed). Each intent is validated
first; one line is printed per intent, naming its place in the input when
it is refused, and the rest are still published. The exit status is
non-zero when any intent was refused or the input holds none.`

// terminalHint is what publish says before it waits for intents typed or
// pasted into a terminal, so that it does not look hung.
const terminalHint = "coinsaga publish: reading intents from the terminal; end with Ctrl-D"

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return publish(ctx, args, os.Stdin, isTerminal(os.Stdin), stdout, stderr)
}

// publish is runPublish with standard input, and whether it is a
// terminal, given.
func publish(ctx context.Context, args []string, stdin io.Reader, stdinTerminal bool, stdout, stderr io.Writer) error {
	var n natsFlags
	fs := newFlags("publish", publishSynopsis, stderr)
	n.register(fs)
	file := fs.String("file", "", "read intents from this file (- for standard input): JSON objects one after another, one per line or pretty-printed")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var (
		src        io.Reader
		name       string
		positioned = true // refusals say where in the input the intent is
	)
	switch {
	case fs.NArg() > 1:
		return fmt.Errorf("give one intent as an argument, or use --file")
	case fs.NArg() == 1 && *file != "":
		return fmt.Errorf("give an intent as an argument or --file, not both")
	case fs.NArg() == 1:
		src, name, positioned = bytes.NewReader([]byte(fs.Arg(0))), "the argument", false
	case *file == "" || *file == "-":
		src, name = cli.CtxReader{Ctx: ctx, R: stdin}, "standard input"
		if stdinTerminal {
			fmt.Fprintln(stderr, terminalHint)
		}
	default:
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		src, name = f, *file
	}

	in := events.NewIntentReader(src)
	it, err := in.Next()
	if err != nil {
		return readError(ctx, name, err)
	}
	if it == nil {
		return fmt.Errorf("no intents in %s", name)
	}
	nc, err := n.connect("publish")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	subjects := events.Subjects{Prefix: n.prefix}
	catalog := events.DefaultCatalog()
	refused, total := 0, 0
	for ; it != nil; it, err = in.Next() {
		total++
		where := ""
		switch {
		case positioned && it.Line > 0:
			where = fmt.Sprintf("intent %d, line %d", it.N, it.Line)
		case positioned:
			where = fmt.Sprintf("intent %d", it.N)
		}
		if it.Err != nil {
			refused++
			fmt.Fprintf(stdout, "refused %s: %v\n", orWhere("", where), it.Err)
			if it.Stop {
				return fmt.Errorf("%d of %d intents refused; the rest of %s was not read", refused, total, name)
			}
			continue
		}
		ack, intent, err := events.PublishIntent(ctx, js, subjects, it.Data, catalog)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted at intent %d", total)
			}
			refused++
			fmt.Fprintf(stdout, "refused %s: %v\n", orWhere(intent.OutOrderID, where), err)
			continue
		}
		dup := ""
		if ack.Duplicate {
			dup = " (duplicate: already published, JetStream kept the first)"
		}
		fmt.Fprintf(stdout, "published %s stream %s seq %d%s\n", intent.OutOrderID, ack.Stream, ack.Sequence, dup)
	}
	if err != nil {
		return readError(ctx, name, err)
	}
	if refused > 0 {
		return fmt.Errorf("%d of %d intents refused", refused, total)
	}
	return nil
}

// orWhere names an intent by its out_order_id and place, whichever are
// known.
func orWhere(id, where string) string {
	switch {
	case id == "" && where == "":
		return "the intent"
	case id == "":
		return where
	case where == "":
		return id
	}
	return id + " (" + where + ")"
}

func readError(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted while reading %s", name)
	}
	return fmt.Errorf("reading %s: %w", name, err)
}

// maxValueBuffered is the most of one JSON value publish holds before it
// refuses the value (events.IntentReader).
const maxValueBuffered = events.MaxValueBuffered
