package deadletter

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
)

func TestDLQFilterFlags(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		flags   Flags
		wantErr string
		check   func(t *testing.T, f Filter)
	}{
		{name: "no flags select everything", check: func(t *testing.T, f Filter) {
			if f.Narrows() {
				t.Errorf("%+v narrows", f)
			}
		}},
		{name: "a limit alone does not count as a filter", flags: Flags{Limit: 5}, check: func(t *testing.T, f Filter) {
			if f.Narrows() || f.Limit != 5 {
				t.Errorf("%+v", f)
			}
		}},
		{name: "reasons are a comma-separated list", flags: Flags{Reason: "failed, needs_attention"}, check: func(t *testing.T, f Filter) {
			if !slices.Contains(f.Reasons, events.ReasonFailed) || !slices.Contains(f.Reasons, events.ReasonNeedsAttention) || len(f.Reasons) != 2 {
				t.Errorf("reasons %v", f.Reasons)
			}
		}},
		{name: "an unknown reason is refused", flags: Flags{Reason: "failed,broken"}, wantErr: `--reason "broken"`},
		{name: "since as a duration counts back from now", flags: Flags{Since: "90m"}, check: func(t *testing.T, f Filter) {
			if !f.Since.Equal(now.Add(-90 * time.Minute)) {
				t.Errorf("since %v", f.Since)
			}
		}},
		{name: "since as an RFC 3339 time is taken as it is", flags: Flags{Since: "2026-11-20T08:00:00+02:00"}, check: func(t *testing.T, f Filter) {
			if !f.Since.Equal(time.Date(2026, 11, 20, 6, 0, 0, 0, time.UTC)) {
				t.Errorf("since %v", f.Since)
			}
		}},
		{name: "since in the future by a negative duration is refused", flags: Flags{Since: "-5m"}, wantErr: "must not be negative"},
		{name: "since that is neither is refused with both forms named", flags: Flags{Since: "yesterday"}, wantErr: "RFC 3339"},
		{name: "seqs are sorted and deduplicated", flags: Flags{Seq: "7,3,7"}, check: func(t *testing.T, f Filter) {
			if !slices.Equal(f.Seqs, []uint64{3, 7}) || !f.Narrows() {
				t.Errorf("seqs %v", f.Seqs)
			}
		}},
		{name: "a zero or non-numeric seq is refused", flags: Flags{Seq: "0,x"}, wantErr: `--seq: "0"`},
		{name: "an mg_id that is no safe subject token is refused", flags: Flags{MgID: "a.b"}, wantErr: "--mg-id"},
		{name: "every problem is reported at once", flags: Flags{Reason: "nope", Limit: -1}, wantErr: "--limit must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := tc.flags.Filter(now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, f)
		})
	}
}
