package console

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/worker"
)

// letterCounts is the dead-letter stream counted by reason, refreshed in
// the background: reading every letter's headers takes longer than a
// page may.
type letterCounts struct {
	At       time.Time
	ByReason map[events.Reason]int
	Total    int
	Err      string
}

func (c *Console) countLettersLoop(ctx context.Context) {
	for {
		start := time.Now()
		c.countLetters(ctx)
		// A long queue takes long to read: count it at most a tenth of
		// the time, so that the console never keeps NATS busy with it.
		wait := max(c.cfg.LetterCountsEvery, 10*time.Since(start))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (c *Console) countLetters(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ls, err := c.cfg.DeadLetters.List(ctx, LetterFilter{}, 0)
	if errors.Is(err, ErrNoStream) {
		err = nil // no stream yet: no letters
	}
	n := letterCounts{At: c.now(), ByReason: map[events.Reason]int{}}
	if err != nil {
		n.Err = err.Error()
	}
	for _, l := range ls {
		n.ByReason[l.Reason]++
		n.Total++
	}
	c.lettersMu.Lock()
	if err != nil && !c.letters.At.IsZero() {
		// Keep the last good counts, and say they are old.
		c.letters.Err = n.Err
	} else {
		c.letters = n
	}
	c.lettersMu.Unlock()
}

func (c *Console) letterCounts() letterCounts {
	c.lettersMu.RLock()
	defer c.lettersMu.RUnlock()
	return c.letters
}

type stateRow struct {
	State    string
	Count    int64
	Terminal bool
	Alarm    bool // an operator should look
}

type reasonRow struct {
	Reason string
	Count  int
}

type overviewData struct {
	Now        time.Time
	StatsAt    time.Time
	StatsErr   string
	States     []stateRow
	InProgress int64
	Waiting    int64 // debited, polling the balance
	Scheduled  []reasonRow
	Outbox     int64
	OutboxLag  string
	Rates      rates
	HasMetrics bool
	RateChart  sparkline
	P99Chart   sparkline
	Letters    letterCounts
	Reasons    []reasonRow
	HasLetters bool
}

var allStates = []events.State{events.StateAccepted, events.StateOrdered, events.StateDebited, events.StateCompensating,
	events.StateCompleted, events.StateFailed, events.StateCompensated, events.StateRejected, events.StateNeedsAttention}

var allReasons = []events.Reason{events.ReasonFailed, events.ReasonNeedsAttention, events.ReasonRejected, events.ReasonConflict, events.ReasonInvalid}

func (c *Console) overviewData(ctx context.Context) overviewData {
	d := overviewData{Now: c.now(), HasMetrics: c.cfg.Metrics != nil, HasLetters: c.cfg.DeadLetters != nil}
	st, at, err := c.stats.get(ctx)
	d.StatsAt = at
	if err != nil {
		d.StatsErr = err.Error()
	}
	for _, s := range allStates {
		n := st.ByState[string(s)]
		d.States = append(d.States, stateRow{State: string(s), Count: n, Terminal: s.Terminal(),
			Alarm: n > 0 && s == events.StateNeedsAttention})
		if !s.Terminal() {
			d.InProgress += n
		}
	}
	d.Waiting = st.ScheduledByStep[string(worker.StepConfirm)]
	for step, n := range st.ScheduledByStep {
		d.Scheduled = append(d.Scheduled, reasonRow{Reason: step, Count: int(n)})
	}
	sort.Slice(d.Scheduled, func(i, j int) bool { return d.Scheduled[i].Reason < d.Scheduled[j].Reason })
	d.Outbox = st.Outbox
	d.OutboxLag = "0s"
	if !st.OldestOutbox.IsZero() {
		d.OutboxLag = durationText(d.Now.Sub(st.OldestOutbox).Seconds())
	}
	if c.cfg.Metrics != nil {
		if now, err := readSample(c.cfg.Metrics, d.Now); err == nil {
			d.Rates = c.hist.rates(now)
		}
	}
	d.RateChart = chart(d.Rates.RateSeries)
	d.P99Chart = chart(d.Rates.P99Series)
	d.Letters = c.letterCounts()
	for _, r := range allReasons {
		d.Reasons = append(d.Reasons, reasonRow{Reason: string(r), Count: d.Letters.ByReason[r]})
	}
	return d
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "overview", "Overview", c.overviewData(r.Context()))
}
