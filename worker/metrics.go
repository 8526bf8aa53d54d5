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
	latency := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	m := &Metrics{
		orders: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coinsaga_orders",
			Help: "Orders in the store by state."}, []string{"state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coinsaga_order_transitions_total",
			Help: "State changes by the state entered."}, []string{"state"}),
		intents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coinsaga_intents_total",
			Help: "Intents consumed, by outcome: accepted, rejected, invalid, duplicate, conflict."}, []string{"outcome"}),
		stepSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "coinsaga_step_duration_seconds",
			Help: "Saga step latency, provider call included, by step and result.", Buckets: latency}, []string{"step", "result"}),
		orderSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "coinsaga_order_duration_seconds",
			Help: "Accepted to terminal, by final state.", Buckets: latency}, []string{"state"}),
		providerCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coinsaga_provider_requests_total",
			Help: "Provider calls by provider, endpoint and outcome class."}, []string{"provider", "endpoint", "class"}),
		providerSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "coinsaga_provider_request_duration_seconds",
			Help: "Provider call latency.", Buckets: latency}, []string{"provider", "endpoint"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "coinsaga_inflight_orders",
			Help: "Orders with a saga step running now."}),
		waitingConfirm: prometheus.NewGauge(prometheus.GaugeOpts{Name: "coinsaga_orders_waiting_confirmation",
			Help: "Debited orders polling the balance for the debit to show."}),
		outboxPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "coinsaga_outbox_pending",
			Help: "Status events and dead letters not yet acknowledged by JetStream."}),
		outboxLag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "coinsaga_outbox_lag_seconds",
			Help: "Age of the oldest unpublished outbox message."}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coinsaga_dead_letters_total",
			Help: "Dead letters published, by reason."}, []string{"reason"}),
		storeFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "coinsaga_store_write_failures_total",
			Help: "Writes the store refused (a full disk, a broken file); while they fail, steps pause."}),
		storeFailing: prometheus.NewGauge(prometheus.GaugeOpts{Name: "coinsaga_store_writes_failing",
			Help: "1 while the store's writes fail and steps are paused, else 0."}),
		declinedAfter: prometheus.NewCounter(prometheus.CounterOpts{Name: "coinsaga_pay_declined_after_sud_total",
			Help: "Pays declined for want of coins after SUD had the order: the player spent elsewhere since the baseline, and the action may have run unpaid."}),
		circuitOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coinsaga_provider_circuit_open",
			Help: "1 while the circuit breaker of a provider endpoint is open (calls refused, orders held), else 0."}, []string{"endpoint"}),
		callsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coinsaga_provider_calls_refused_total",
			Help: "Provider calls an open circuit refused without sending them."}, []string{"endpoint"}),
		callWaits: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "coinsaga_provider_call_wait_seconds",
			Help: "How long provider calls waited for a rate-limit token or a bulkhead slot, by kind.", Buckets: latency}, []string{"endpoint", "kind"}),
		stepsHeld: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coinsaga_steps_held_total",
			Help: "Saga steps held by an open circuit, waiting without spending a retry."}, []string{"step"}),
		sudVerdicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coinsaga_sud_notifications_total",
			Help: "SUD order-change notifications received, by status."}, []string{"status"}),
	}
	reg.MustRegister(m.orders, m.transitions, m.intents, m.stepSeconds, m.orderSeconds, m.providerCalls,
		m.providerSecs, m.inflight, m.waitingConfirm, m.outboxPending, m.outboxLag, m.deadLetters,
		m.storeFailures, m.storeFailing, m.declinedAfter, m.sudVerdicts,
		m.circuitOpen, m.callsRefused, m.callWaits, m.stepsHeld)
	return m
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
