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
	"github.com/coinsaga/coinsaga/internal/intents"
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
	in := intents.Input{Positioned: true} // refusals say where in the input the intent is
	switch {
	case fs.NArg() > 1:
		return fmt.Errorf("give one intent as an argument, or use --file")
	case fs.NArg() == 1 && *file != "":
		return fmt.Errorf("give an intent as an argument or --file, not both")
	case fs.NArg() == 1:
		in = intents.Input{R: bytes.NewReader([]byte(fs.Arg(0))), Name: "the argument"}
	case *file == "" || *file == "-":
		in.R, in.Name = cli.CtxReader{Ctx: ctx, R: stdin}, "standard input"
		if stdinTerminal {
			fmt.Fprintln(stderr, terminalHint)
		}
	default:
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		in.R, in.Name = f, *file
	}
	batch, err := intents.Open(ctx, in)
	if err != nil {
		return err
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
	return batch.Publish(ctx, js, events.Subjects{Prefix: n.prefix}, events.DefaultCatalog(), stdout)
}
