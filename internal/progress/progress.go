// Package progress draws a progress bar for long operator commands, such
// as replaying thousands of dead letters.
//
// On a terminal the bar redraws in place (a carriage return, at most ten
// times a second). Anywhere else, a log file or a test buffer, it prints a
// plain line about every tenth of the way and one at the end, so the
// output stays readable line by line.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

const (
	// width is the number of cells between the brackets.
	width = 30
	// redrawEvery caps terminal redraws: faster than the eye is wasted
	// writes, and on a slow SSH link, lag.
	redrawEvery = 100 * time.Millisecond
	// plainSteps is how many lines, at most, a non-terminal gets before the
	// final one.
	plainSteps = 10
)

// Bar tracks done units of a known total. Safe for concurrent use.
type Bar struct {
	w     io.Writer
	total int
	label string
	tty   bool
	now   func() time.Time

	mu       sync.Mutex
	start    time.Time
	n        int
	lastDraw time.Time
	lastLen  int // length of the last terminal line, to blank its tail
	nextStep int // plain mode: the next tenth that earns a line
	done     bool
}

// New starts a bar of total units labelled label, drawing on w. Whether w
// is a terminal decides the drawing style.
func New(w io.Writer, total int, label string) *Bar {
	return newBar(w, total, label, isTerminal(w), time.Now)
}

func newBar(w io.Writer, total int, label string, tty bool, now func() time.Time) *Bar {
	if total < 0 {
		total = 0
	}
	return &Bar{w: w, total: total, label: label, tty: tty, now: now, start: now(), nextStep: 1}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Add records n more units done. Calls after Done are ignored.
func (b *Bar) Add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done || n <= 0 {
		return
	}
	b.n += n
	now := b.now()
	if b.tty {
		if now.Sub(b.lastDraw) >= redrawEvery {
			b.drawTTY(now, false)
		}
		return
	}
	if b.total == 0 {
		return
	}
	reached := b.n * plainSteps / b.total
	// The last step is the final line Done prints; a line at 100% here
	// would only repeat it.
	if reached >= b.nextStep && reached < plainSteps {
		fmt.Fprintln(b.w, b.line(now, false))
		b.nextStep = reached + 1
	}
}

// Done draws the final state and ends the line. It is safe to call more
// than once; only the first call draws.
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	now := b.now()
	if b.tty {
		b.drawTTY(now, true)
		fmt.Fprintln(b.w)
		return
	}
	fmt.Fprintln(b.w, b.line(now, true))
}

func (b *Bar) drawTTY(now time.Time, final bool) {
	line := b.line(now, final)
	pad := ""
	if b.lastLen > len(line) {
		pad = strings.Repeat(" ", b.lastLen-len(line))
	}
	fmt.Fprint(b.w, "\r"+line+pad)
	b.lastLen = len(line)
	b.lastDraw = now
}

// line renders `label [=====>    ] 120/500  24/s  eta 16s`; the final
// line says how long the whole took instead of the eta.
func (b *Bar) line(now time.Time, final bool) string {
	elapsed := now.Sub(b.start)
	var sb strings.Builder
	if b.label != "" {
		sb.WriteString(b.label)
		sb.WriteByte(' ')
	}
	sb.WriteString(bar(b.n, b.total))
	fmt.Fprintf(&sb, " %d/%d", b.n, b.total)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(b.n) / elapsed.Seconds()
	}
	if b.n > 0 && elapsed > 0 {
		fmt.Fprintf(&sb, "  %s/s", formatRate(rate))
	}
	switch {
	case final:
		fmt.Fprintf(&sb, "  in %s", formatDuration(elapsed))
	case rate > 0 && b.n < b.total:
		eta := time.Duration(float64(b.total-b.n) / rate * float64(time.Second))
		fmt.Fprintf(&sb, "  eta %s", formatDuration(eta))
	}
	return sb.String()
}

func bar(n, total int) string {
	filled := width
	if total > 0 {
		filled = min(n*width/total, width)
	}
	var sb strings.Builder
	sb.Grow(width + 2)
	sb.WriteByte('[')
	sb.WriteString(strings.Repeat("=", filled))
	if filled < width {
		sb.WriteByte('>')
		sb.WriteString(strings.Repeat(" ", width-filled-1))
	}
	sb.WriteByte(']')
	return sb.String()
}

func formatRate(r float64) string {
	if r < 10 {
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.0f", r)
}

// formatDuration prints whole seconds (1h2m3s, 16s), or tenths under ten
// seconds, where a rounding to 0s would say nothing.
func formatDuration(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}
