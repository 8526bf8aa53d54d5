package mogs_test

import (
	"context"
	"testing"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

func TestABusyCancelpayIsRetryableWhicheverCodeSaysSo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.sb.SetFault(sandbox.Fault{Endpoint: "mogs.cancelpay", BusyRate: 1})
	seen := map[int]bool{}
	for range 40 {
		_, err := e.client.Cancel(ctx, account("p"), providers.Cancel{BillNo: "busy-1", Amount: 1})
		pe := wantErr(t, err, providers.Retryable, providers.CodeBusy)
		seen[pe.Ret] = true
	}
	if !seen[-1] || !seen[90016] || len(seen) != 2 {
		t.Fatalf("saw rets %v in 40 busy cancels, want -1 and 90016", seen)
	}
}
