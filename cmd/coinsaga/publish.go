package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
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
		src, name = ctxReader{ctx, stdin}, "standard input"
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

	in := newIntentReader(src)
	it, err := in.next()
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
	for ; it != nil; it, err = in.next() {
		total++
		where := ""
		switch {
		case positioned && it.line > 0:
			where = fmt.Sprintf("intent %d, line %d", it.n, it.line)
		case positioned:
			where = fmt.Sprintf("intent %d", it.n)
		}
		if it.err != nil {
			refused++
			fmt.Fprintf(stdout, "refused %s: %v\n", orWhere("", where), it.err)
			if it.stop {
				return fmt.Errorf("%d of %d intents refused; the rest of %s was not read", refused, total, name)
			}
			continue
		}
		ack, intent, err := events.PublishIntent(ctx, js, subjects, it.data, catalog)
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

// intentReader splits its input into JSON values with a json.Decoder, so
// intents may come one per line, pretty-printed over several lines, or
// one after another on a line.
type intentReader struct {
	dec   *json.Decoder
	lines *lineCounter
	n     int  // values read
	done  bool // the input ended or cannot be read on
}

// readIntent is one value of the input, which begins on line (0 when
// not known). A value that cannot be an intent carries err (and data is
// nil); stop says the input cannot be read on after it.
type readIntent struct {
	n, line int
	data    []byte
	err     error
	stop    bool
}

func newIntentReader(r io.Reader) *intentReader {
	lc := &lineCounter{r: r}
	return &intentReader{dec: json.NewDecoder(lc), lines: lc}
}

// next returns the next value, nil at the end of the input, or the error
// that kept it from being read.
func (r *intentReader) next() (*readIntent, error) {
	if r.done {
		return nil, nil
	}
	var raw json.RawMessage
	err := r.dec.Decode(&raw)
	var syn *json.SyntaxError
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		r.done = true
		return nil, nil
	case errors.Is(err, errValueTooLarge):
		r.done = true
		r.n++
		return &readIntent{n: r.n, stop: true,
			err: fmt.Errorf("more than %s after line %d without the end of this JSON value; an intent is at most %d bytes (events.MaxIntentSize)",
				events.FormatBytes(maxValueBuffered), r.lines.line(r.lines.from), events.MaxIntentSize)}, nil
	case errors.Is(err, io.ErrUnexpectedEOF):
		r.done = true
		r.n++
		return &readIntent{n: r.n, err: errors.New("the input ends inside this intent: its JSON is not closed")}, nil
	case errors.As(err, &syn):
		// Nothing after a syntax error can be told apart reliably; the
		// message never quotes the input, which may hold a secret.
		r.done = true
		r.n++
		line := r.lines.line(syn.Offset - 1)
		return &readIntent{n: r.n, stop: true, err: fmt.Errorf("malformed JSON at line %d", line)}, nil
	default:
		r.done = true
		return nil, err
	}
	r.n++
	end := r.dec.InputOffset()
	r.lines.from = end
	it := &readIntent{n: r.n, line: r.lines.line(end - int64(len(raw)))}
	switch raw[0] {
	case '{':
		// One line on the wire, whatever the layout of the input.
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			it.err = fmt.Errorf("malformed JSON at line %d", it.line)
			return it, nil
		}
		it.data = buf.Bytes()
	case '[':
		it.err = errors.New("a JSON array: write the intents one after another (one per line, or pretty-printed), not inside [ ]")
	default:
		it.err = errors.New("not a JSON object")
	}
	return it, nil
}

// maxValueBuffered bounds the memory one JSON value of the input may take
// before it is refused: the decoder holds a value whole, and an intent is
// at most events.MaxIntentSize, far less.
const maxValueBuffered = 256 * events.MaxIntentSize

// errValueTooLarge: a value has gone on for more than maxValueBuffered.
var errValueTooLarge = errors.New("JSON value too large")

// lineCounter notes where the newlines are in what it reads, so that a
// byte offset can be told as a line number. Offsets asked about must not
// decrease; the newlines before the last one asked about are forgotten.
// It also stops the decoder from buffering more than maxValueBuffered
// bytes past from, the end of the last value.
type lineCounter struct {
	r      io.Reader
	read   int64   // bytes read so far
	from   int64   // where the value being read began, at the latest
	nl     []int64 // offsets of the newlines not yet forgotten
	before int     // newlines forgotten
}

func (c *lineCounter) Read(p []byte) (int, error) {
	if c.read-c.from > maxValueBuffered {
		return 0, errValueTooLarge
	}
	n, err := c.r.Read(p)
	for i := 0; i < n; {
		j := bytes.IndexByte(p[i:n], '\n')
		if j < 0 {
			break
		}
		c.nl = append(c.nl, c.read+int64(i+j))
		i += j + 1
	}
	c.read += int64(n)
	return n, err
}

// line is the 1-based line holding byte offset off.
func (c *lineCounter) line(off int64) int {
	i := 0
	for i < len(c.nl) && c.nl[i] < off {
		i++
	}
	c.before += i
	c.nl = c.nl[i:]
	return c.before + 1
}

// ctxReader ends a blocked Read when ctx is done, so an interrupt stops a
// publish that waits on a terminal or a silent pipe.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	type result struct {
		n   int
		err error
	}
	buf := make([]byte, len(p)) // the Read may finish after we return
	done := make(chan result, 1)
	go func() {
		n, err := c.r.Read(buf)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		copy(p, buf[:r.n])
		return r.n, r.err
	case <-c.ctx.Done():
		return 0, c.ctx.Err()
	}
}

// isTerminal reports whether f is a terminal: a character device other
// than /dev/null, which is what `< /dev/null` gives.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}
