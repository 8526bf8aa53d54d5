package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// CtxReader ends a blocked Read when Ctx is done, so an interrupt stops a
// command that waits on a terminal or a silent pipe.
type CtxReader struct {
	Ctx context.Context
	R   io.Reader
}

func (c CtxReader) Read(p []byte) (int, error) {
	if err := c.Ctx.Err(); err != nil {
		return 0, err
	}
	type result struct {
		n   int
		err error
	}
	buf := make([]byte, len(p)) // the Read may finish after we return
	done := make(chan result, 1)
	go func() {
		n, err := c.R.Read(buf)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		copy(p, buf[:r.n])
		return r.n, r.err
	case <-c.Ctx.Done():
		return 0, c.Ctx.Err()
	}
}

// IsTerminal reports whether f is a terminal: a character device other
// than /dev/null, which is what `< /dev/null` gives.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}

// LockedWriter serialises writes from several goroutines, such as NATS
// callbacks and the command itself.
type LockedWriter struct {
	mu sync.Mutex
	W  io.Writer
}

func (l *LockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.W.Write(p)
}

// ParseSince reads a --since value, "newer than": a duration back from
// now, or an RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
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

// SinceFlag is a --since flag: a duration back from now, an RFC 3339
// time, or a time in Layout, the one the command prints, so that a
// printed line's time can be pasted back.
type SinceFlag struct {
	Layout string
	Text   string    // as given
	T      time.Time // what it means
}

func (s *SinceFlag) String() string { return s.Text }

// Set reads v against the clock of this moment.
func (s *SinceFlag) Set(v string) error {
	t, err := ParseSinceIn(s.Layout, v, time.Now())
	if err != nil {
		return err
	}
	s.Text, s.T = v, t
	return nil
}

// ParseSinceIn is ParseSince that also takes a time in layout.
func ParseSinceIn(layout, v string, now time.Time) (time.Time, error) {
	if layout != "" {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return ParseSince(v, now)
}
