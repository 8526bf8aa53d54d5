package progress

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/testclock"
)

// clock is a settable Config.Now, so tests move time instead of sleeping.
type clock = testclock.Clock

func newClock() *clock { return testclock.New(testclock.Start) }

func TestLineFormat(t *testing.T) {
	tests := []struct {
		name     string
		n, total int
		elapsed  time.Duration
		final    bool
		want     string
	}{
		{"a bar part way shows count, rate and eta", 120, 500, 5 * time.Second, false,
			"replay [=======>                      ] 120/500  24/s  eta 16s"},
		{"nothing done yet shows no rate and no eta", 0, 500, 0, false,
			"replay [>                             ] 0/500"},
		{"a slow rate keeps a decimal and a short eta tenths", 9, 10, 2 * time.Second, false,
			"replay [===========================>  ] 9/10  4.5/s  eta 0.2s"},
		{"the final line says how long it took", 500, 500, 100 * time.Second, true,
			"replay [==============================] 500/500  5.0/s  in 1m40s"},
		{"an empty job is full at once", 0, 0, 0, true,
			"replay [==============================] 0/0  in 0.0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			b := newBar(&bytes.Buffer{}, tc.total, "replay", false, c.Now)
			b.n = tc.n
			c.Advance(tc.elapsed)
			if got := b.line(c.Now(), tc.final); got != tc.want {
				t.Errorf("line\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestPlainOutputPrintsAboutEveryTenthAndAtTheEnd(t *testing.T) {
	tests := []struct {
		name      string
		total     int
		step      int
		wantLines int
	}{
		{"one unit at a time prints nine progress lines and the final one", 100, 1, 10},
		{"a total smaller than ten prints a line per unit", 4, 1, 4},
		{"everything at once prints only the final line", 1000, 1000, 1},
		{"large steps skip the tenths they jump over", 100, 35, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			c := newClock()
			b := newBar(&buf, tc.total, "purge", false, c.Now)
			for done := 0; done < tc.total; done += tc.step {
				c.Advance(10 * time.Millisecond)
				b.Add(min(tc.step, tc.total-done))
			}
			b.Done()
			out := buf.String()
			if strings.Contains(out, "\r") {
				t.Errorf("plain output holds a carriage return: %q", out)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != tc.wantLines {
				t.Errorf("%d lines, want %d:\n%s", len(lines), tc.wantLines, out)
			}
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "purge [") || !strings.Contains(last, " in ") ||
				!strings.Contains(last, "/"+strconv.Itoa(tc.total)+" ") {
				t.Errorf("final line %q", last)
			}
		})
	}
}

func TestTerminalRedrawsInPlaceAtMostTenTimesASecond(t *testing.T) {
	var buf bytes.Buffer
	c := newClock()
	b := newBar(&buf, 1000, "replay", true, c.Now)
	for i := 0; i < 1000; i++ {
		c.Advance(time.Millisecond) // one second in all
		b.Add(1)
	}
	b.Done()
	out := buf.String()
	draws := strings.Count(out, "\r")
	if draws < 9 || draws > 12 {
		t.Errorf("%d redraws over one second, want about 10", draws)
	}
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Errorf("a terminal bar ends with exactly one newline: %q", out)
	}
	if last := out[strings.LastIndex(out, "\r")+1:]; !strings.HasPrefix(last, "replay [==============================] 1000/1000") {
		t.Errorf("final draw %q", last)
	}
}

func TestTerminalBlanksTheTailOfALongerPreviousLine(t *testing.T) {
	var buf bytes.Buffer
	c := newClock()
	b := newBar(&buf, 100000, "x", true, c.Now)
	c.Advance(time.Second)
	b.Add(1) // "x [>   ] 1/100000  1.0/s  eta 27h46m39s"
	long := buf.Len() - 1
	c.Advance(time.Second)
	b.Add(99999) // "x [===] 100000/100000  50000/s": shorter, no eta
	second := buf.String()[long+1:]
	if !strings.HasPrefix(second, "\r") || len(second)-1 != long {
		t.Errorf("the shorter line is %d bytes, want it padded to the previous %d: %q", len(second)-1, long, buf.String())
	}
	if !strings.HasSuffix(second, " ") {
		t.Errorf("no blanks after the shorter line: %q", second)
	}
}

func TestDoneIsFinalAndIdempotent(t *testing.T) {
	var buf bytes.Buffer
	c := newClock()
	b := newBar(&buf, 10, "x", false, c.Now)
	b.Add(10)
	b.Done()
	before := buf.String()
	b.Add(5)
	b.Done()
	if buf.String() != before {
		t.Errorf("output changed after Done: %q then %q", before, buf.String())
	}
}

func TestConcurrentAddsCountEveryUnit(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, 800, "x")
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				b.Add(1)
			}
		}()
	}
	wg.Wait()
	b.Done()
	if !strings.Contains(buf.String(), " 800/800 ") {
		t.Errorf("final line lacks 800/800: %q", buf.String())
	}
}

func TestOnlyCharacterDevicesAreTerminals(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := []struct {
		name string
		w    interface{ Write([]byte) (int, error) }
		want bool
	}{
		{"a buffer is not a terminal", &bytes.Buffer{}, false},
		{"a regular file is not a terminal", f, false},
	}
	if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		defer null.Close()
		// /dev/null is a character device: the check is about the mode
		// bit, as golang.org/x/term would need a dependency.
		tests = append(tests, struct {
			name string
			w    interface{ Write([]byte) (int, error) }
			want bool
		}{"a character device counts as a terminal", null, true})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := isTerminal(tc.w); got != tc.want {
				t.Errorf("isTerminal = %v, want %v", got, tc.want)
			}
		})
	}
}
