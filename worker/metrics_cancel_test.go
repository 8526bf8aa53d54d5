package worker

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
)

// The order keeps the pay's error code through its cancel, as the cause of
// the compensation; the cancel step's latency is labelled with the cancel's
// own result, so that a dashboard of cancels does not show pay errors.
func TestCancelStepMetricCarriesTheCancelsOwnResult(t *testing.T) {
	p := testPolicy(t0)
	o := orderAt(StepCancel, events.StateCompensating)
	o.BillNo, o.HasBaseline, o.ErrorCode, o.Error = "o1", true, codeConfirmTimeout, "debit not visible"
	tests := []struct {
		name string
		r    providers.CancelReply
		err  error
		want string
	}{
		{"a cancelled bill is ok", providers.CancelReply{Class: providers.OK}, nil, "ok"},
		{"an already cancelled bill is ok", providers.CancelReply{Class: providers.AlreadyDone}, nil, "ok"},
		{"a bill not found is not_found", providers.CancelReply{}, perr(providers.Final, providers.CodeNotFound), "not_found"},
		{"a busy cancel is busy", providers.CancelReply{}, perr(providers.Retryable, providers.CodeBusy), "busy"},
		{"a refused cancel is its code", providers.CancelReply{}, perr(providers.Final, providers.CodeLoginFailed), "login_failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			out := decideCancel(o, tc.r, tc.err, p)
			m.stepDone(StepCancel, out, time.Millisecond)
			families, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var results []string
			for _, f := range families {
				if f.GetName() != "coinsaga_step_duration_seconds" {
					continue
				}
				for _, s := range f.GetMetric() {
					for _, l := range s.GetLabel() {
						if l.GetName() == "result" {
							results = append(results, l.GetValue())
						}
					}
				}
			}
			if len(results) != 1 || results[0] != tc.want {
				t.Errorf("cancel step results %q, want [%q] (the order's error code is %q)", results, tc.want, out.next.ErrorCode)
			}
		})
	}
}
