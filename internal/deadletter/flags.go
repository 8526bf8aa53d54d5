package deadletter

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/cli"
)

// Flags are the selection flags of `coinsaga dlq list`, `replay` and
// `purge`: Register declares them, Filter reads them into a Filter.
type Flags struct {
	Reason, MgID, Since, Seq string
	Limit                    int
}

// Register adds --reason, --mg-id, --since, --seq and --limit to fs.
func (d *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&d.Reason, "reason", "", "only these reasons, comma-separated: invalid, rejected, conflict, failed, needs_attention")
	fs.StringVar(&d.MgID, "mg-id", "", "only the dead letters of this game (mg_id)")
	fs.StringVar(&d.Since, "since", "", "only dead letters newer than this: a duration (10m, 2h) or an RFC 3339 time")
	fs.StringVar(&d.Seq, "seq", "", "only these dead letters, by stream sequence, comma-separated (N,M,...)")
	fs.IntVar(&d.Limit, "limit", 0, "at most this many dead letters, oldest first (0: no limit)")
}

// Filter is what the flags say, checked, every problem named at once;
// --since durations count back from now. No flag selects every dead
// letter.
func (d *Flags) Filter(now time.Time) (Filter, error) {
	f := Filter{MgID: d.MgID, Limit: d.Limit}
	var problems []string
	if d.Reason != "" {
		for r := range strings.SplitSeq(d.Reason, ",") {
			switch r := events.Reason(strings.TrimSpace(r)); {
			case !KnownReason(r):
				problems = append(problems, fmt.Sprintf("--reason %q: want invalid, rejected, conflict, failed or needs_attention", r))
			case !slices.Contains(f.Reasons, r): // a repeat says nothing more
				f.Reasons = append(f.Reasons, r)
			}
		}
	}
	if d.MgID != "" && !events.ValidID(d.MgID) {
		problems = append(problems, fmt.Sprintf("--mg-id %q is not a valid mg_id", d.MgID))
	}
	if d.Since != "" {
		t, err := cli.ParseSince(d.Since, now)
		if err != nil {
			problems = append(problems, err.Error())
		}
		f.Since = t
	}
	if d.Seq != "" {
		for s := range strings.SplitSeq(d.Seq, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
			if err != nil || n == 0 {
				problems = append(problems, fmt.Sprintf("--seq: %q is not a stream sequence", s))
				continue
			}
			f.Seqs = append(f.Seqs, n)
		}
		slices.Sort(f.Seqs)
		f.Seqs = slices.Compact(f.Seqs)
	}
	if d.Limit < 0 {
		problems = append(problems, "--limit must not be negative")
	}
	if len(problems) > 0 {
		return Filter{}, errors.New(strings.Join(problems, "; "))
	}
	return f, nil
}
