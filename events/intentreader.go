package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// IntentReader splits its input into JSON values with a json.Decoder, so
// intents may come one per line, pretty-printed over several lines, or
// one after another on a line: what `coinsaga publish` reads. Each value
// is told with its place in the input; nothing is validated as an intent
// (PublishIntent does that).
type IntentReader struct {
	dec   *json.Decoder
	lines *lineCounter
	n     int  // values read
	done  bool // the input ended or cannot be read on
}

// ReadIntent is value number N of the input, which begins on Line (0
// when not known). A value that cannot be an intent carries Err (and Data
// is nil); Stop says the input cannot be read on after it.
type ReadIntent struct {
	N, Line int
	Data    []byte
	Err     error
	Stop    bool
}

func NewIntentReader(r io.Reader) *IntentReader {
	lc := &lineCounter{r: r}
	return &IntentReader{dec: json.NewDecoder(lc), lines: lc}
}

// Next returns the next value, nil at the end of the input, or the error
// that kept it from being read.
func (r *IntentReader) Next() (*ReadIntent, error) {
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
		return &ReadIntent{N: r.n, Stop: true,
			Err: fmt.Errorf("more than %s after line %d without the end of this JSON value; an intent is at most %d bytes (events.MaxIntentSize)",
				FormatBytes(MaxValueBuffered), r.lines.line(r.lines.from), MaxIntentSize)}, nil
	case errors.Is(err, io.ErrUnexpectedEOF):
		r.done = true
		r.n++
		return &ReadIntent{N: r.n, Err: errors.New("the input ends inside this intent: its JSON is not closed")}, nil
	case errors.As(err, &syn):
		// Nothing after a syntax error can be told apart reliably; the
		// message never quotes the input, which may hold a secret.
		r.done = true
		r.n++
		line := r.lines.line(syn.Offset - 1)
		return &ReadIntent{N: r.n, Stop: true, Err: fmt.Errorf("malformed JSON at line %d", line)}, nil
	default:
		r.done = true
		return nil, err
	}
	r.n++
	end := r.dec.InputOffset()
	r.lines.from = end
	it := &ReadIntent{N: r.n, Line: r.lines.line(end - int64(len(raw)))}
	switch raw[0] {
	case '{':
		// One line on the wire, whatever the layout of the input.
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			it.Err = fmt.Errorf("malformed JSON at line %d", it.Line)
			return it, nil
		}
		it.Data = buf.Bytes()
	case '[':
		it.Err = errors.New("a JSON array: write the intents one after another (one per line, or pretty-printed), not inside [ ]")
	default:
		it.Err = errors.New("not a JSON object")
	}
	return it, nil
}

// MaxValueBuffered bounds the memory one JSON value of the input may take
// before it is refused: the decoder holds a value whole, and an intent is
// at most MaxIntentSize, far less.
const MaxValueBuffered = 256 * MaxIntentSize

// errValueTooLarge: a value has gone on for more than MaxValueBuffered.
var errValueTooLarge = errors.New("JSON value too large")

// lineCounter notes where the newlines are in what it reads, so that a
// byte offset can be told as a line number. Offsets asked about must not
// decrease; the newlines before the last one asked about are forgotten.
// It also stops the decoder from buffering more than MaxValueBuffered
// bytes past from, the end of the last value.
type lineCounter struct {
	r      io.Reader
	read   int64   // bytes read so far
	from   int64   // where the value being read began, at the latest
	nl     []int64 // offsets of the newlines not yet forgotten
	before int     // newlines forgotten
}

func (c *lineCounter) Read(p []byte) (int, error) {
	if c.read-c.from > MaxValueBuffered {
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
