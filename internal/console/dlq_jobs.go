package console

// Jobs: the replays and purges the console started, and their progress
// pages.

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

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
