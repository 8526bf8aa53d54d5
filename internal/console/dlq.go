package console

// The /dlq page: the dead letters that match the operator's filter, a page
// at a time.

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
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
