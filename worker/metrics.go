package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/store"
)

// Metrics are the worker's Prometheus series. It also observes provider
// calls (it is a providers.Observer), so pass it to the clients too.
type Metrics struct {
	orders         *prometheus.GaugeVec
	transitions    *prometheus.CounterVec
	intents        *prometheus.CounterVec
	stepSeconds    *prometheus.HistogramVec
	orderSeconds   *prometheus.HistogramVec
	providerCalls  *prometheus.CounterVec
	providerSecs   *prometheus.HistogramVec
	inflight       prometheus.Gauge
	waitingConfirm prometheus.Gauge
	outboxPending  prometheus.Gauge
	outboxLag      prometheus.Gauge
	deadLetters    *prometheus.CounterVec
	storeFailures  prometheus.Counter
	storeFailing   prometheus.Gauge
	declinedAfter  prometheus.Counter
	circuitOpen    *prometheus.GaugeVec
	callsRefused   *prometheus.CounterVec
	callWaits      *prometheus.HistogramVec
	stepsHeld      *prometheus.CounterVec
	sudVerdicts    *prometheus.CounterVec
}

// NewMetrics creates the series and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	s := series{reg}
	return &Metrics{
		orders:         s.gaugeVec("coinsaga_orders", "Orders in the store by state.", "state"),
		transitions:    s.counterVec("coinsaga_order_transitions_total", "State changes by the state entered.", "state"),
		intents:        s.counterVec("coinsaga_intents_total", "Intents consumed, by outcome: accepted, rejected, invalid, duplicate, conflict.", "outcome"),
		stepSeconds:    s.latency("coinsaga_step_duration_seconds", "Saga step latency, provider call included, by step and result.", "step", "result"),
		orderSeconds:   s.latency("coinsaga_order_duration_seconds", "Accepted to terminal, by final state.", "state"),
		providerCalls:  s.counterVec("coinsaga_provider_requests_total", "Provider calls by provider, endpoint and outcome class.", "provider", "endpoint", "class"),
		providerSecs:   s.latency("coinsaga_provider_request_duration_seconds", "Provider call latency.", "provider", "endpoint"),
		inflight:       s.gauge("coinsaga_inflight_orders", "Orders with a saga step running now."),
		waitingConfirm: s.gauge("coinsaga_orders_waiting_confirmation", "Debited orders polling the balance for the debit to show."),
		outboxPending:  s.gauge("coinsaga_outbox_pending", "Status events and dead letters not yet acknowledged by JetStream."),
		outboxLag:      s.gauge("coinsaga_outbox_lag_seconds", "Age of the oldest unpublished outbox message."),
		deadLetters:    s.counterVec("coinsaga_dead_letters_total", "Dead letters published, by reason.", "reason"),
		storeFailures:  s.counter("coinsaga_store_write_failures_total", "Writes the store refused (a full disk, a broken file); while they fail, steps pause."),
		storeFailing:   s.gauge("coinsaga_store_writes_failing", "1 while the store's writes fail and steps are paused, else 0."),
		declinedAfter: s.counter("coinsaga_pay_declined_after_sud_total",
			"Pays declined for want of coins after SUD had the order: the player spent elsewhere since the baseline, and the action may have run unpaid."),
		circuitOpen: s.gaugeVec("coinsaga_provider_circuit_open",
			"1 while the circuit breaker of a provider endpoint is open (calls refused, orders held), else 0.", "endpoint"),
		callsRefused: s.counterVec("coinsaga_provider_calls_refused_total", "Provider calls an open circuit refused without sending them.", "endpoint"),
		callWaits: s.latency("coinsaga_provider_call_wait_seconds",
			"How long provider calls waited for a rate-limit token or a bulkhead slot, by kind.", "endpoint", "kind"),
		stepsHeld:   s.counterVec("coinsaga_steps_held_total", "Saga steps held by an open circuit, waiting without spending a retry.", "step"),
		sudVerdicts: s.counterVec("coinsaga_sud_notifications_total", "SUD order-change notifications received, by status.", "status"),
	}
}

// series makes the worker's series and registers each one as it makes
// it, so that no series is declared and left out of the registry.
type series struct{ reg prometheus.Registerer }

// latencyBuckets are the buckets of every latency histogram, from a
// millisecond to the five minutes a confirmation can take.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

func register[C prometheus.Collector](s series, c C) C {
	s.reg.MustRegister(c)
	return c
}

func (s series) counter(name, help string) prometheus.Counter {
	return register(s, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

func (s series) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return register(s, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

func (s series) gauge(name, help string) prometheus.Gauge {
	return register(s, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}

func (s series) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return register(s, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels))
}

// latency is a histogram of durations in seconds over latencyBuckets.
func (s series) latency(name, help string, labels ...string) *prometheus.HistogramVec {
	return register(s, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets}, labels))
}

// ObserveCall implements providers.Observer.
func (m *Metrics) ObserveCall(provider, endpoint string, class providers.Class, elapsed time.Duration) {
	m.providerCalls.WithLabelValues(provider, endpoint, class.String()).Inc()
	m.providerSecs.WithLabelValues(provider, endpoint).Observe(elapsed.Seconds())
}

func (m *Metrics) intentReceived(outcome string) { m.intents.WithLabelValues(outcome).Inc() }

func (m *Metrics) stepDone(step Step, out outcome, elapsed time.Duration) {
	m.stepSeconds.WithLabelValues(string(step), stepResult(step, out)).Observe(elapsed.Seconds())
	if out.declinedAfterSUD {
		m.declinedAfter.Inc()
	}
	if out.held {
		m.stepsHeld.WithLabelValues(string(step)).Inc()
	}
}

// stepResult is the result label of a step: "ok" or its error code. A
// finished cancel keeps the pay's error code on the order, as the cause
// of the compensation; its own result is "ok" (compensated) or not_found
// (no such bill, nothing was charged).
func stepResult(step Step, out outcome) string {
	if step == StepCancel && out.next.Step != StepCancel {
		if out.next.State == events.StateCompensated {
			return "ok"
		}
		return string(providers.CodeNotFound)
	}
	if out.next.ErrorCode != "" {
		return out.next.ErrorCode
	}
	return "ok"
}

func (m *Metrics) transition(mv move, now time.Time) {
	if mv.to != mv.from {
		m.transitions.WithLabelValues(string(mv.to)).Inc()
	}
	if mv.to.Terminal() && mv.ended && !mv.createdAt.IsZero() {
		m.orderSeconds.WithLabelValues(string(mv.to)).Observe(now.Sub(mv.createdAt).Seconds())
	}
}

func (m *Metrics) observeWrites(ok bool) {
	failing := 0.0
	if !ok {
		failing = 1
	}
	m.storeFailing.Set(failing)
}

func (m *Metrics) observeStats(st store.Stats, now time.Time) {
	for _, s := range events.States() {
		m.orders.WithLabelValues(string(s)).Set(float64(st.ByState[string(s)]))
	}
	m.waitingConfirm.Set(float64(st.ScheduledByStep[string(StepConfirm)]))
	m.outboxPending.Set(float64(st.Outbox))
	lag := 0.0
	if !st.OldestOutbox.IsZero() {
		lag = now.Sub(st.OldestOutbox).Seconds()
	}
	m.outboxLag.Set(lag)
}

// CircuitChanged implements protect.Observer.
func (m *Metrics) CircuitChanged(endpoint string, open bool) {
	v := 0.0
	if open {
		v = 1
	}
	m.circuitOpen.WithLabelValues(endpoint).Set(v)
}

// CallRefused implements protect.Observer.
func (m *Metrics) CallRefused(endpoint string) { m.callsRefused.WithLabelValues(endpoint).Inc() }

// CallWaited implements protect.Observer.
func (m *Metrics) CallWaited(endpoint, kind string, d time.Duration) {
	m.callWaits.WithLabelValues(endpoint, kind).Observe(d.Seconds())
}
