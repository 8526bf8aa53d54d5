package console

// Replay and purge from the /dlq page: what the form selected, the
// preview of what a run would do, and the run itself.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// selection is what a replay or purge form picked: dead letters by
// sequence, or a filter.
type selection struct {
	Action string // replay or purge
	Query  dlqQuery
	Seqs   []uint64
	BySeq  bool
}

func readSelection(r *http.Request) (selection, error) {
	s := selection{Action: r.PostFormValue("action")}
	if s.Action != "replay" && s.Action != "purge" {
		return s, fmt.Errorf("action %.16q: want replay or purge", s.Action)
	}
	s.Query = readDLQQuery(r.PostFormValue, func(k string) []string { return r.PostForm[k] })
	var raw []string
	for _, v := range r.PostForm["seq"] {
		raw = append(raw, strings.Split(v, ",")...)
	}
	for _, v := range raw {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return s, fmt.Errorf("%.24q is not a dead letter's sequence", v)
		}
		s.Seqs = append(s.Seqs, n)
	}
	slices.Sort(s.Seqs)
	s.Seqs = slices.Compact(s.Seqs)
	s.BySeq = r.PostFormValue("by") != "filter"
	if s.BySeq && len(s.Seqs) == 0 {
		return s, errors.New("no dead letter selected: tick some, or use the buttons for the whole filter")
	}
	return s, nil
}

func (s selection) filter(now time.Time) (LetterFilter, error) {
	if s.BySeq {
		return LetterFilter{Seqs: s.Seqs}, nil
	}
	if s.Action == "purge" && !s.Query.narrows() {
		// As `dlq purge` without --all: every letter is never one click away.
		return LetterFilter{}, errors.New("refusing to purge every dead letter: filter by reason, game, order or since, or tick the letters")
	}
	return s.Query.filter(now)
}

func (s selection) describe() string {
	if s.BySeq {
		return "seq " + seqList(s.Seqs, 20)
	}
	return s.Query.describe()
}

func seqList(seqs []uint64, most int) string {
	var b strings.Builder
	for i, n := range seqs {
		if i == most {
			fmt.Fprintf(&b, ",… (%d in all)", len(seqs))
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(n, 10))
	}
	return b.String()
}

type previewData struct {
	Action   string
	What     string
	Results  []Result
	Counts   []reasonRow
	Seqs     string // what the run will act on: exactly what was previewed
	N        int
	Confirm  string // the phrase a purge must be confirmed with
	Problem  string
	Nothing  bool
	BackURL  string
	Acting   int // letters the run would change
	Previews bool
}

func (c *Console) dlqPreview(w http.ResponseWriter, r *http.Request, who string) {
	if c.cfg.DeadLetters == nil {
		c.fail(w, r, http.StatusServiceUnavailable, "No dead-letter stream", "This console has no dead-letter service.")
		return
	}
	s, err := readSelection(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "Nothing to preview", err.Error())
		return
	}
	f, err := s.filter(c.now())
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "Nothing to preview", err.Error())
		return
	}
	d := previewData{Action: s.Action, What: s.describe(), BackURL: "/dlq?" + s.Query.values().Encode()}
	collect := func(res Result) { d.Results = append(d.Results, res) }
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	if s.Action == "replay" {
		err = c.cfg.DeadLetters.Replay(ctx, f, true, collect)
	} else {
		err = c.cfg.DeadLetters.Purge(ctx, f, true, collect)
	}
	if err != nil {
		d.Problem = err.Error()
	}
	counts := map[Outcome]int{}
	var seqs []uint64
	for _, res := range d.Results {
		counts[res.Outcome]++
		seqs = append(seqs, res.Seq)
		if res.Outcome != Skipped && res.Outcome != Failed {
			d.Acting++
		}
	}
	for _, o := range []Outcome{Replayed, Completed, Purged, Skipped, Failed} {
		if counts[o] > 0 {
			d.Counts = append(d.Counts, reasonRow{Reason: string(o), Count: counts[o]})
		}
	}
	d.N = len(seqs)
	d.Nothing = d.N == 0
	d.Seqs = seqList(seqs, len(seqs))
	d.Confirm = fmt.Sprintf("purge %d", d.N)
	c.log.Info("console dry run", "action", s.Action, "by", who, "selection", d.What, "letters", d.N)
	c.render(w, r, http.StatusOK, "preview", "Preview: "+s.Action, d)
}

func (c *Console) dlqRun(w http.ResponseWriter, r *http.Request, who string) {
	if c.cfg.DeadLetters == nil {
		c.fail(w, r, http.StatusServiceUnavailable, "No dead-letter stream", "This console has no dead-letter service.")
		return
	}
	s, err := readSelection(r)
	if err != nil || !s.BySeq {
		if err == nil {
			err = errors.New("a run acts on the letters its preview listed; preview first")
		}
		c.fail(w, r, http.StatusBadRequest, "Nothing to run", err.Error())
		return
	}
	if s.Action == "purge" {
		want := fmt.Sprintf("purge %d", len(s.Seqs))
		if got := strings.Join(strings.Fields(r.PostFormValue("confirm")), " "); got != want {
			c.fail(w, r, http.StatusBadRequest, "Purge not confirmed",
				fmt.Sprintf("Type %q to confirm deleting these %d dead letters; nothing was deleted.", want, len(s.Seqs)))
			return
		}
	}
	what := r.PostFormValue("what")
	j := c.jobs.start(s.Action, who, what, len(s.Seqs), c.now())
	log := c.log.With("action", s.Action, "by", who, "selection", what, "seqs", seqList(s.Seqs, 50), "letters", len(s.Seqs), "job", j.state.ID)
	log.Info("console " + s.Action + " started")
	go func() {
		f := LetterFilter{Seqs: s.Seqs}
		var err error
		if s.Action == "replay" {
			err = c.cfg.DeadLetters.Replay(c.ctx, f, false, j.add)
		} else {
			err = c.cfg.DeadLetters.Purge(c.ctx, f, false, j.add)
		}
		j.finish(err, c.now())
		st := j.snapshot()
		attrs := []any{"took", st.Ended.Sub(st.Started).Round(time.Millisecond)}
		for _, o := range []Outcome{Replayed, Completed, Purged, Skipped, Failed} {
			if n := st.Counts[o]; n > 0 {
				attrs = append(attrs, strings.ReplaceAll(string(o), " ", "_"), n)
			}
		}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		log.Info("console "+s.Action+" finished", attrs...)
	}()
	http.Redirect(w, r, "/dlq/jobs/"+j.state.ID, http.StatusSeeOther)
}
