package console

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// sample is one reading of the worker's counters. Rates and p99 are
// differences between two samples, as Prometheus' rate() takes them.
type sample struct {
	at        time.Time
	completed float64 // coinsaga_order_transitions_total{state="completed"}
	accepted  float64 // coinsaga_intents_total{outcome="accepted"}
	// cumulative counts of coinsaga_order_duration_seconds{state="completed"}
	buckets []bucket
	calls   map[string]endpointCalls // by "provider.endpoint"
	circuit map[string]bool          // coinsaga_provider_circuit_open
	refused map[string]float64       // coinsaga_provider_calls_refused_total
}

type bucket struct {
	upper float64
	count float64
}

type endpointCalls struct {
	total, retryable, final float64
}

// readSample reads what the overview needs from g. Series it does not
// find stay zero: a console on a worker without provider protection has
// no circuits to show.
func readSample(g prometheus.Gatherer, at time.Time) (sample, error) {
	s := sample{at: at, calls: map[string]endpointCalls{}, circuit: map[string]bool{}, refused: map[string]float64{}}
	families, err := g.Gather()
	if err != nil && len(families) == 0 {
		return s, fmt.Errorf("gather metrics: %w", err)
	}
	for _, f := range families {
		switch f.GetName() {
		case "coinsaga_order_transitions_total":
			for _, m := range f.GetMetric() {
				if label(m, "state") == "completed" {
					s.completed += m.GetCounter().GetValue()
				}
			}
		case "coinsaga_intents_total":
			for _, m := range f.GetMetric() {
				if label(m, "outcome") == "accepted" {
					s.accepted += m.GetCounter().GetValue()
				}
			}
		case "coinsaga_order_duration_seconds":
			for _, m := range f.GetMetric() {
				if label(m, "state") != "completed" {
					continue
				}
				for _, b := range m.GetHistogram().GetBucket() {
					s.buckets = append(s.buckets, bucket{upper: b.GetUpperBound(), count: float64(b.GetCumulativeCount())})
				}
				s.buckets = append(s.buckets, bucket{upper: math.Inf(1), count: float64(m.GetHistogram().GetSampleCount())})
			}
		case "coinsaga_provider_requests_total":
			for _, m := range f.GetMetric() {
				key := label(m, "provider") + "." + label(m, "endpoint")
				c := s.calls[key]
				v := m.GetCounter().GetValue()
				c.total += v
				switch label(m, "class") {
				case "retryable":
					c.retryable += v
				case "final":
					c.final += v
				}
				s.calls[key] = c
			}
		case "coinsaga_provider_circuit_open":
			for _, m := range f.GetMetric() {
				s.circuit[label(m, "endpoint")] = m.GetGauge().GetValue() > 0
			}
		case "coinsaga_provider_calls_refused_total":
			for _, m := range f.GetMetric() {
				s.refused[label(m, "endpoint")] += m.GetCounter().GetValue()
			}
		}
	}
	return s, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// history keeps the last samples, enough for the charts' ten minutes.
type history struct {
	mu      sync.RWMutex
	samples []sample // oldest first
	keep    time.Duration
}

func (h *history) add(s sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, s)
	cut := 0
	for cut < len(h.samples)-1 && s.at.Sub(h.samples[cut].at) > h.keep {
		cut++
	}
	h.samples = append(h.samples[:0], h.samples[cut:]...)
}

// rates computes the view over the kept samples and now, a reading taken
// for this page, so that a page never shows counters older than itself.
func (h *history) rates(now sample) rates {
	h.mu.RLock()
	ss := make([]sample, len(h.samples), len(h.samples)+1)
	copy(ss, h.samples)
	h.mu.RUnlock()
	if len(ss) > 0 && !now.at.After(ss[len(ss)-1].at) {
		return computeRates(ss)
	}
	return computeRates(append(ss, now))
}

// rates is the overview's view of the samples.
type rates struct {
	SampledAt  time.Time
	Window     time.Duration // what the figures below cover
	Completed  float64       // orders/s over the last minute
	Accepted   float64       // intents/s over the last minute
	P99        string        // accepted to completed, last minute
	P99Window  string        // over the whole window
	RateSeries []float64     // completed/s per sample interval
	P99Series  []float64     // seconds, trailing minute at each sample
	Endpoints  []endpointView
}

type endpointView struct {
	Name      string
	PerSecond float64
	Retryable float64 // share of calls, 0..1
	Final     float64
	Open      bool
	Refused   float64
	HasBreak  bool // the endpoint has a circuit breaker reporting
}

func computeRates(ss []sample) rates {
	var r rates
	if len(ss) == 0 {
		return r
	}
	last := ss[len(ss)-1]
	r.SampledAt = last.at
	first := ss[0]
	r.Window = last.at.Sub(first.at)
	minute := at(ss, last.at.Add(-time.Minute))
	if dt := last.at.Sub(minute.at).Seconds(); dt > 0 {
		r.Completed = nonNeg(last.completed-minute.completed) / dt
		r.Accepted = nonNeg(last.accepted-minute.accepted) / dt
	}
	r.P99 = durationText(quantile(0.99, minute.buckets, last.buckets))
	r.P99Window = durationText(quantile(0.99, first.buckets, last.buckets))
	for i := 1; i < len(ss); i++ {
		dt := ss[i].at.Sub(ss[i-1].at).Seconds()
		v := 0.0
		if dt > 0 {
			v = nonNeg(ss[i].completed-ss[i-1].completed) / dt
		}
		r.RateSeries = append(r.RateSeries, v)
		p := quantile(0.99, at(ss[:i+1], ss[i].at.Add(-time.Minute)).buckets, ss[i].buckets)
		if math.IsNaN(p) {
			p = 0
		}
		r.P99Series = append(r.P99Series, p)
	}
	names := map[string]bool{}
	for k := range last.calls {
		names[k] = true
	}
	for k := range last.circuit {
		names[k] = true
	}
	for name := range names {
		e := endpointView{Name: name, Open: last.circuit[name]}
		_, e.HasBreak = last.circuit[name]
		now, then := last.calls[name], first.calls[name]
		if dt := r.Window.Seconds(); dt > 0 {
			e.PerSecond = nonNeg(now.total-then.total) / dt
		}
		if n := now.total - then.total; n > 0 {
			e.Retryable = nonNeg(now.retryable-then.retryable) / n
			e.Final = nonNeg(now.final-then.final) / n
		}
		e.Refused = nonNeg(last.refused[name] - first.refused[name])
		r.Endpoints = append(r.Endpoints, e)
	}
	sort.Slice(r.Endpoints, func(i, j int) bool { return r.Endpoints[i].Name < r.Endpoints[j].Name })
	return r
}

// at returns the newest sample taken at or before t, or the oldest.
func at(ss []sample, t time.Time) sample {
	best := ss[0]
	for _, s := range ss {
		if s.at.After(t) {
			break
		}
		best = s
	}
	return best
}

func nonNeg(v float64) float64 { return math.Max(v, 0) }

// quantile estimates the q-quantile of what was observed between two
// readings of a cumulative histogram, interpolating inside the bucket as
// Prometheus' histogram_quantile does. NaN when nothing was observed.
func quantile(q float64, before, after []bucket) float64 {
	if len(after) == 0 {
		return math.NaN()
	}
	counts := make([]float64, len(after))
	for i, b := range after {
		counts[i] = b.count
		if i < len(before) && before[i].upper == b.upper {
			counts[i] -= before[i].count
		}
	}
	total := counts[len(counts)-1]
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, prev := 0.0, 0.0
	for i, b := range after {
		if counts[i] >= rank {
			if math.IsInf(b.upper, 1) {
				return lower // the top finite bound: all one can say
			}
			inBucket := counts[i] - prev
			if inBucket <= 0 {
				return b.upper
			}
			return lower + (b.upper-lower)*(rank-prev)/inBucket
		}
		lower, prev = b.upper, counts[i]
	}
	return lower
}

func durationText(seconds float64) string {
	if math.IsNaN(seconds) {
		return "–"
	}
	d := time.Duration(seconds * float64(time.Second))
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return d.Round(10 * time.Millisecond).String()
}

// sampleLoop reads g every interval until ctx ends.
func sampleLoop(ctx context.Context, g prometheus.Gatherer, h *history, every time.Duration, now func() time.Time, tick func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if s, err := readSample(g, now()); err == nil {
			h.add(s)
		}
		if tick != nil {
			tick()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
