package worker

import (
	"testing"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
)

// Game servers switch on events.Code*; the codes the worker actually puts
// into events come from providers.Code* and the saga's own constants. They
// must be the same strings.
func TestTheCodesInEventsAreTheOnesTheWorkerAssigns(t *testing.T) {
	for _, c := range []struct{ name, worker, events string }{
		{"insufficient balance", string(providers.CodeInsufficientBalance), events.CodeInsufficientBalance},
		{"login failed", string(providers.CodeLoginFailed), events.CodeLoginFailed},
		{"risk control", string(providers.CodeRiskControl), events.CodeRiskControl},
		{"param error", string(providers.CodeParamError), events.CodeParamError},
		{"not found", string(providers.CodeNotFound), events.CodeNotFound},
		{"already exists", string(providers.CodeAlreadyExists), events.CodeAlreadyExists},
		{"already cancelled", string(providers.CodeAlreadyCancelled), events.CodeAlreadyCancelled},
		{"busy", string(providers.CodeBusy), events.CodeBusy},
		{"unavailable", string(providers.CodeUnavailable), events.CodeUnavailable},
		{"timeout", string(providers.CodeTimeout), events.CodeTimeout},
		{"auth failed", string(providers.CodeAuthFailed), events.CodeAuthFailed},
		{"game not found", string(providers.CodeGameNotFound), events.CodeGameNotFound},
		{"bad reply", string(providers.CodeBadReply), events.CodeBadReply},
		{"unknown", string(providers.CodeUnknown), events.CodeUnknown},
		{"confirm timeout", codeConfirmTimeout, events.CodeConfirmTimeout},
		{"retries exhausted", codeRetriesExhausted, events.CodeRetriesExhausted},
		{"provider not configured", codeNotConfigured, events.CodeProviderNotConfigured},
		{"SUD execute failed", codeSUDExecuteFailed, events.CodeSUDExecuteFailed},
		{"SUD execute timeout", codeSUDExecuteTimeout, events.CodeSUDExecuteTimeout},
		{"SUD order conflict", codeSUDOrderConflict, events.CodeSUDOrderConflict},
		{"bill expired", codeBillExpired, events.CodeBillExpired},
	} {
		t.Run("the "+c.name+" code is the same in events and the worker", func(t *testing.T) {
			if c.worker != c.events {
				t.Errorf("worker assigns %q, events says %q", c.worker, c.events)
			}
		})
	}
}
