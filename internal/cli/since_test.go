package cli

import (
	"testing"
	"time"
)

func TestWatchSinceParsesADurationOrATime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name, in string
		want     time.Time // zero: refused
	}{
		{"a duration counts back from now", "90s", now.Add(-90 * time.Second)},
		{"a compound duration counts back from now", "1h30m", now.Add(-90 * time.Minute)},
		{"an RFC 3339 time is taken as is", "2026-12-02T06:19:13Z", time.Date(2026, 12, 2, 6, 19, 13, 0, time.UTC)},
		{"an RFC 3339 time with milliseconds and an offset is taken as is", "2026-12-02T14:19:13.922+08:00",
			time.Date(2026, 12, 2, 6, 19, 13, 922_000_000, time.UTC)},
		{"the time as watch prints it is taken", "2026-12-02 06:19:13.922Z", time.Date(2026, 12, 2, 6, 19, 13, 922_000_000, time.UTC)},
		{"a negative duration is refused", "-5m", time.Time{}},
		{"a zero duration is now", "0s", now},
		{"a word is refused", "yesterday", time.Time{}},
		{"a date without a time is refused", "2026-12-02", time.Time{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseSinceIn("2006-01-02 15:04:05.000Z07:00", c.in, now)
			if c.want.IsZero() {
				if err == nil {
					t.Errorf("%q accepted as %v", c.in, got)
				}
				return
			}
			if err != nil || !got.Equal(c.want) {
				t.Errorf("%q: got %v %v, want %v", c.in, got, err, c.want)
			}
		})
	}
}
