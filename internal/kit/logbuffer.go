package kit

import (
	"bytes"
	"strings"
	"sync"
)

// LogBuffer is a log destination that the code under test writes from its
// goroutines while the test reads it; the zero value is ready.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Line returns the first line containing s, or "".
func (b *LogBuffer) Line(s string) string {
	for l := range strings.Lines(b.String()) {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
