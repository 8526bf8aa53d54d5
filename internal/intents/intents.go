// Package intents is what `coinsaga publish` does with its input: it
// reads purchase intents one after another (events.IntentReader),
// validates and publishes each (events.PublishIntent) and reports one
// line per intent, naming its place in the input when it is refused,
// while the rest are still published. cmd/coinsaga picks the input and
// the connection.
package intents

import (
	"context"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
)

// Input is where intents come from: R, called Name in messages ("the
// argument", "standard input", a file name). Positioned says a refusal
// names the intent's place in the input (its number and line).
type Input struct {
	R          io.Reader
	Name       string
	Positioned bool
}

// Batch is an input whose first intent has been read.
type Batch struct {
	in    Input
	r     *events.IntentReader
	first *events.ReadIntent
}

// Open reads the first intent of in, so that an input that holds none,
// or cannot be read, is refused before anything is dialled. ctx is the
// one the reading stops on (in.R is expected to end when it does).
func Open(ctx context.Context, in Input) (*Batch, error) {
	b := &Batch{in: in, r: events.NewIntentReader(in.R)}
	first, err := b.r.Next()
	if err != nil {
		return nil, b.readError(ctx, err)
	}
	if first == nil {
		return nil, fmt.Errorf("no intents in %s", in.Name)
	}
	b.first = first
	return b, nil
}

// Publish validates and publishes every intent of b to the intents
// stream of s, the first one included, and writes a line for each on
// out: "published <id> stream <stream> seq <n>" or "refused <where>:
// <why>". The error says how many were refused, if any; an input that
// cannot be read on, or ctx ending, stops it.
func (b *Batch) Publish(ctx context.Context, js jetstream.JetStream, s events.Subjects, c *events.Catalog, out io.Writer) error {
	refused, total := 0, 0
	var err error
	for it := b.first; it != nil; it, err = b.r.Next() {
		total++
		where := b.where(it)
		if it.Err != nil {
			refused++
			fmt.Fprintf(out, "refused %s: %v\n", orWhere("", where), it.Err)
			if it.Stop {
				return fmt.Errorf("%d of %d intents refused; the rest of %s was not read", refused, total, b.in.Name)
			}
			continue
		}
		ack, intent, err := events.PublishIntent(ctx, js, s, it.Data, c)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted at intent %d", total)
			}
			refused++
			fmt.Fprintf(out, "refused %s: %v\n", orWhere(intent.OutOrderID, where), err)
			continue
		}
		dup := ""
		if ack.Duplicate {
			dup = " (duplicate: already published, JetStream kept the first)"
		}
		fmt.Fprintf(out, "published %s stream %s seq %d%s\n", intent.OutOrderID, ack.Stream, ack.Sequence, dup)
	}
	if err != nil {
		return b.readError(ctx, err)
	}
	if refused > 0 {
		return fmt.Errorf("%d of %d intents refused", refused, total)
	}
	return nil
}

// where is an intent's place in a positioned input, "" in any other.
func (b *Batch) where(it *events.ReadIntent) string {
	switch {
	case b.in.Positioned && it.Line > 0:
		return fmt.Sprintf("intent %d, line %d", it.N, it.Line)
	case b.in.Positioned:
		return fmt.Sprintf("intent %d", it.N)
	}
	return ""
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

func (b *Batch) readError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted while reading %s", b.in.Name)
	}
	return fmt.Errorf("reading %s: %w", b.in.Name, err)
}
