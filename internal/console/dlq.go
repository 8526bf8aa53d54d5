package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coinsaga/coinsaga/events"
)

const letterPageSize = 50

// dlqQuery is the /dlq page's filter as the operator wrote it.
type dlqQuery struct {
	Reasons []string
	Game    string
	Order   string
	Since   string
	Page    int    // shown only: the position is After
	After   uint64 // the last sequence of the previous page
}

func readDLQQuery(get func(string) string, all func(string) []string) dlqQuery {
	q := dlqQuery{Game: strings.TrimSpace(get("game")), Order: strings.TrimSpace(get("order")), Since: strings.TrimSpace(get("since"))}
	for _, v := range all("reason") {
		for _, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r != "" && !slices.Contains(q.Reasons, r) {
				q.Reasons = append(q.Reasons, r)
			}
		}
	}
	q.Page, _ = strconv.Atoi(get("page"))
	q.After, _ = strconv.ParseUint(get("after"), 10, 64)
	if q.Page < 1 {
		q.Page = 1
	}
	return q
}

// filter turns the query into a LetterFilter, with the rules of
// `coinsaga dlq`'s --reason, --mg-id and --since.
func (q dlqQuery) filter(now time.Time) (LetterFilter, error) {
	var f LetterFilter
	var problems []string
	for _, r := range q.Reasons {
		if !slices.Contains(allReasons, events.Reason(r)) {
			problems = append(problems, fmt.Sprintf("reason %.32q: want invalid, rejected, conflict, failed or needs_attention", r))
			continue
		}
		f.Reasons = append(f.Reasons, events.Reason(r))
	}
	if q.Game != "" {
		if !events.ValidID(q.Game) {
			problems = append(problems, fmt.Sprintf("game %.64q is not a valid mg_id", q.Game))
		}
		f.MgID = q.Game
	}
	if q.Order != "" {
		if !events.ValidID(q.Order) {
			problems = append(problems, fmt.Sprintf("order %.64q is not a valid out_order_id", q.Order))
		}
		f.OutOrderID = q.Order
	}
	if q.Since != "" {
		t, err := ParseSince(q.Since, now)
		if err != nil {
			problems = append(problems, err.Error())
		}
		f.Since = t
	}
	if len(problems) > 0 {
		return LetterFilter{}, errors.New(strings.Join(problems, "; "))
	}
	return f, nil
}

// ParseSince reads "newer than" as `coinsaga dlq --since` does: a
// duration back from now (10m, 2h), or an RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("since %q: a duration back from now must not be negative", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("since %.40q: want a duration (10m, 2h) or an RFC 3339 time (2026-11-21T10:00:00Z)", s)
	}
	return t, nil
}

func (q dlqQuery) narrows() bool {
	return len(q.Reasons) > 0 || q.Game != "" || q.Order != "" || q.Since != ""
}

// values is the query as URL values, without the page.
func (q dlqQuery) values() url.Values {
	v := url.Values{}
	for _, r := range q.Reasons {
		v.Add("reason", r)
	}
	for k, s := range map[string]string{"game": q.Game, "order": q.Order, "since": q.Since} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

func (q dlqQuery) describe() string {
	var parts []string
	if len(q.Reasons) > 0 {
		parts = append(parts, "reason="+strings.Join(q.Reasons, ","))
	}
	for _, kv := range [][2]string{{"game", q.Game}, {"order", q.Order}, {"since", q.Since}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if len(parts) == 0 {
		return "every dead letter"
	}
	return strings.Join(parts, " ")
}

type dlqData struct {
	Now       time.Time
	Query     dlqQuery
	Reasons   []string
	Selected  map[string]bool
	Problem   string
	Letters   []Letter // this page
	Total     int
	ByReason  []reasonRow
	Counted   letterCounts
	Page      int
	Pages     int
	FirstURL  string
	NextURL   string
	Filter    url.Values
	Available bool
	Narrows   bool
}

func (c *Console) dlqPage(w http.ResponseWriter, r *http.Request) {
	q := readDLQQuery(r.URL.Query().Get, func(k string) []string { return r.URL.Query()[k] })
	d := dlqData{Now: c.now(), Query: q, Selected: map[string]bool{}, Available: c.cfg.DeadLetters != nil, Filter: q.values(), Narrows: q.narrows()}
	for _, rs := range allReasons {
		d.Reasons = append(d.Reasons, string(rs))
	}
	for _, rs := range q.Reasons {
		d.Selected[rs] = true
	}
	if !d.Available {
		c.render(w, r, http.StatusOK, "dlq", "Dead letters", d)
		return
	}
	f, err := q.filter(d.Now)
	if err != nil {
		d.Problem = err.Error()
		c.render(w, r, http.StatusBadRequest, "dlq", "Dead letters", d)
		return
	}
	ctx := r.Context()
	f.Limit = letterPageSize
	d.Letters, err = c.cfg.DeadLetters.List(ctx, f, q.After)
	if err == nil {
		d.Total, err = c.cfg.DeadLetters.Count(ctx, f)
	}
	if errors.Is(err, ErrNoStream) {
		// A worker that is starting creates it in a moment; until then
		// there is nothing to list.
		d.Letters, d.Total, err = nil, 0, nil
	}
	if err != nil {
		d.Problem = "reading the dead-letter stream: " + err.Error()
		c.render(w, r, http.StatusBadGateway, "dlq", "Dead letters", d)
		return
	}
	// Stream-wide counts come from the overview's background count: a
	// count per reason would read every letter's headers five times.
	d.Counted = c.letterCounts()
	for _, rs := range allReasons {
		if n := d.Counted.ByReason[rs]; n > 0 {
			d.ByReason = append(d.ByReason, reasonRow{Reason: string(rs), Count: n})
		}
	}
	d.Pages = max(1, (d.Total+letterPageSize-1)/letterPageSize)
	d.Page = min(q.Page, d.Pages)
	if q.After > 0 {
		d.FirstURL = "/dlq?" + q.values().Encode()
	}
	if len(d.Letters) == letterPageSize {
		v := q.values()
		v.Set("after", strconv.FormatUint(d.Letters[len(d.Letters)-1].Seq, 10))
		v.Set("page", strconv.Itoa(d.Page+1))
		d.NextURL = "/dlq?" + v.Encode()
	}
	c.render(w, r, http.StatusOK, "dlq", "Dead letters", d)
}

type header struct{ Name, Value string }

type letterData struct {
	Now     time.Time
	Letter  Letter // its Body is masked
	Headers []header
}

func (c *Console) letterPage(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		c.fail(w, r, http.StatusBadRequest, "Not a dead letter", "A dead letter is named by its stream sequence, a number above 0.")
		return
	}
	if c.cfg.DeadLetters == nil {
		c.fail(w, r, http.StatusServiceUnavailable, "No dead-letter stream", "This console has no dead-letter service.")
		return
	}
	l, err := c.cfg.DeadLetters.Get(r.Context(), seq)
	if errors.Is(err, ErrNoLetter) || errors.Is(err, ErrNoStream) {
		c.fail(w, r, http.StatusNotFound, "No such dead letter", fmt.Sprintf("Dead letter %d is not in the stream: replayed or purged already, or never there.", seq))
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "The dead-letter stream did not answer", err.Error())
		return
	}
	d := letterData{Now: c.now(), Letter: l}
	for k, vs := range l.Header {
		for _, v := range vs {
			d.Headers = append(d.Headers, header{k, v})
		}
	}
	sort.Slice(d.Headers, func(i, j int) bool { return d.Headers[i].Name < d.Headers[j].Name })
	c.render(w, r, http.StatusOK, "letter", fmt.Sprintf("Dead letter %d", seq), d)
}

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

func (c *Console) jobPage(w http.ResponseWriter, r *http.Request) {
	j := c.jobs.get(r.PathValue("id"))
	if j == nil {
		c.fail(w, r, http.StatusNotFound, "No such job", "The console keeps its last 50 replays and purges until it restarts.")
		return
	}
	c.render(w, r, http.StatusOK, "job", "Job "+j.state.ID, j.snapshot())
}

// jobs are the replays and purges started from the console, kept for
// their progress pages.
type jobs struct {
	mu   sync.Mutex
	n    int
	byID map[string]*job
	ids  []string
}

func newJobs() *jobs { return &jobs{byID: map[string]*job{}} }

const keepJobs = 50

func (js *jobs) start(action, who, what string, total int, now time.Time) *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.n++
	j := &job{state: jobState{ID: strconv.Itoa(js.n), Action: action, By: who, What: what, Total: total, Started: now, Counts: map[Outcome]int{}}}
	js.byID[j.state.ID] = j
	js.ids = append(js.ids, j.state.ID)
	if len(js.ids) > keepJobs {
		delete(js.byID, js.ids[0])
		js.ids = js.ids[1:]
	}
	return j
}

func (js *jobs) get(id string) *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.byID[id]
}

type job struct {
	mu    sync.Mutex
	state jobState
}

// jobState is a job's progress page.
type jobState struct {
	ID, Action, By, What string
	Total, Done          int
	Counts               map[Outcome]int
	Look                 []Result // the letters that need a look: skipped, failed
	Orders               []string // replayed orders, to follow
	Started, Ended       time.Time
	Finished             bool
	Err                  string
	Percent              int
	Rows                 []reasonRow // Counts in a fixed order
}

func (j *job) add(r Result) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.state.Done++
	j.state.Counts[r.Outcome]++
	switch r.Outcome {
	case Skipped, Failed:
		if len(j.state.Look) < 500 {
			j.state.Look = append(j.state.Look, r)
		}
	case Replayed:
		if r.OutOrderID != "" && len(j.state.Orders) < 200 {
			j.state.Orders = append(j.state.Orders, r.OutOrderID)
		}
	}
}

func (j *job) finish(err error, now time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.state.Finished, j.state.Ended = true, now
	if err != nil {
		j.state.Err = err.Error()
	}
}

func (j *job) snapshot() jobState {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.state
	s.Counts = map[Outcome]int{}
	for k, v := range j.state.Counts {
		s.Counts[k] = v
	}
	s.Look = slices.Clone(j.state.Look)
	s.Orders = slices.Clone(j.state.Orders)
	for _, o := range []Outcome{Replayed, Completed, Purged, Skipped, Failed} {
		if n := s.Counts[o]; n > 0 {
			s.Rows = append(s.Rows, reasonRow{Reason: string(o), Count: n})
		}
	}
	if s.Total > 0 {
		s.Percent = min(100, 100*s.Done/s.Total)
	} else if s.Finished {
		s.Percent = 100
	}
	return s
}
