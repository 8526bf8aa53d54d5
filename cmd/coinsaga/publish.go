package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
)

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var n natsFlags
	fs := newFlags("publish", "publish [flags] [INTENT_JSON]\n\nPublishes one intent given as an argument, or JSON lines from --file or standard input.\nEach intent is validated first; one line is printed per intent.", stderr)
	n.register(fs)
	file := fs.String("file", "", "read intents, one JSON object per line, from this file (- for standard input)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var src io.Reader
	switch {
	case fs.NArg() > 1:
		return fmt.Errorf("give one intent as an argument, or use --file")
	case fs.NArg() == 1:
		src = bytes.NewReader([]byte(fs.Arg(0)))
	case *file == "" || *file == "-":
		src = os.Stdin
	default:
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		src = f
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
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 0, 64<<10), events.MaxIntentSize+1)
	refused, line := 0, 0
	for sc.Scan() {
		line++
		data := bytes.TrimSpace(sc.Bytes())
		if len(data) == 0 {
			continue
		}
		ack, in, err := events.PublishIntent(ctx, js, subjects, append([]byte(nil), data...), catalog)
		if err != nil {
			refused++
			id := in.OutOrderID
			if id == "" {
				id = fmt.Sprintf("line %d", line)
			}
			fmt.Fprintf(stdout, "refused %s: %v\n", id, err)
			continue
		}
		dup := ""
		if ack.Duplicate {
			dup = " (duplicate: already published, JetStream kept the first)"
		}
		fmt.Fprintf(stdout, "published %s stream %s seq %d%s\n", in.OutOrderID, ack.Stream, ack.Sequence, dup)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading intents (line %d): %w", line+1, err)
	}
	if refused > 0 {
		return fmt.Errorf("%d intent(s) refused", refused)
	}
	return nil
}
