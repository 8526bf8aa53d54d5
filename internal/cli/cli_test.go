package cli

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseBytes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want int64
		bad  bool
	}{
		{"plain bytes are bytes", "1073741824", 1 << 30, false},
		{"binary units multiply by 1024s", "512MiB", 512 << 20, false},
		{"decimal units multiply by 1000s", "1GB", 1e9, false},
		{"units are read in any case", "64kib", 64 << 10, false},
		{"a fraction of a unit is allowed", "1.5KiB", 1536, false},
		{"a space before the unit is allowed", "10 MiB", 10 << 20, false},
		{"a negative size is refused", "-1MiB", 0, true},
		{"a word is refused", "big", 0, true},
		{"a size past what int64 holds is refused", "9000000TB", 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseBytes(c.in)
			if (err != nil) != c.bad || got != c.want {
				t.Errorf("ParseBytes(%q) = %d, %v; want %d, error %v", c.in, got, err, c.want, c.bad)
			}
		})
	}
}

func TestParseSince(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	cases := []struct {
		name, in string
		want     time.Time
		err      string
	}{
		{"a duration is that long before now", "90s", now.Add(-90 * time.Second), ""},
		{"an RFC 3339 time is that time", "2026-11-21T10:00:00Z", time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), ""},
		{"a negative duration is refused", "-5m", time.Time{}, "must not be negative"},
		{"anything else says what to write", "yesterday", time.Time{}, "want a duration (10m, 2h) or an RFC 3339 time"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseSince(c.in, now)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("ParseSince(%q) error %v, want %q", c.in, err, c.err)
				}
				return
			}
			if err != nil || !got.Equal(c.want) {
				t.Errorf("ParseSince(%q) = %s, %v; want %s", c.in, got, err, c.want)
			}
		})
	}
}

func TestAnEnvironmentValueIsNamedWhereItCameFrom(t *testing.T) {
	t.Setenv("COINSAGA_MAX_STEPS", "many")
	fs := flag.NewFlagSet("coinsaga x", flag.ContinueOnError)
	fs.Int("max-steps", 1, "")
	_, err := ParseSources(fs, nil)
	if !errors.Is(err, ErrUsage) || err.Error() != `COINSAGA_MAX_STEPS="many": want a whole number` {
		t.Errorf("error %v, want a usage error naming COINSAGA_MAX_STEPS", err)
	}
	if got := (Sources{"max-steps": "COINSAGA_MAX_STEPS"}).From("max-steps"); got != " (from COINSAGA_MAX_STEPS)" {
		t.Errorf("From = %q", got)
	}
}

func TestListenErrorSaysWhatToPass(t *testing.T) {
	t.Parallel()
	inUse := fmt.Errorf("listen: %w", syscall.EADDRINUSE)
	err := ListenError("http-listen", "127.0.0.1:8080", Sources{"http-listen": "COINSAGA_HTTP_LISTEN"}, inUse, "another coinsaga?", "")
	want := "--http-listen 127.0.0.1:8080 (from COINSAGA_HTTP_LISTEN): address already in use (another coinsaga?); pass --http-listen HOST:PORT"
	if err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
}
