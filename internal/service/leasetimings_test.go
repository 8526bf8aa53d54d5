package service

import (
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/config"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/worker"
)

// The rescue grace is what keeps a new owner from acting while the dead
// owner's last money call may still be under way (docs/architecture.md,
// "Why no order is charged twice"). The store cannot see the provider
// timeout nor the step timeout, so serve, which wires all three, checks
// them here: a shorter grace, or a longer timeout, must fail this test.
func TestTheRescueGraceOutlastsTheLastMoneyCallOfAFencedWorker(t *testing.T) {
	t.Parallel()
	t.Run("the grace is at least twice the provider timeout", func(t *testing.T) {
		if store.RescueGrace < 2*config.DefaultTimeout {
			t.Errorf("RescueGrace %s, want at least twice the provider timeout %s", store.RescueGrace, config.DefaultTimeout)
		}
	})
	t.Run("the fence margin and the grace outlast a step's calls and retries", func(t *testing.T) {
		// A step checks the local fence just before it starts and then
		// runs for at most the step timeout; the database lets the lease
		// expire at least LeaseFenceMargin after the fence closed, and
		// another worker may act only RescueGrace after that.
		if after := store.LeaseFenceMargin + store.RescueGrace; after <= worker.DefaultStepTimeout {
			t.Errorf("another worker may act %s after the fence closed, within a step's %s", after, worker.DefaultStepTimeout)
		}
	})
	t.Run("takeover after a crash fits in 30 seconds", func(t *testing.T) {
		// The lease expires at most LeaseTTL after the last renew; then
		// the grace, then one rescue and one claim pass (a second each).
		if worst := store.LeaseTTL + store.RescueGrace + 2*time.Second; worst >= 30*time.Second {
			t.Errorf("worst-case takeover %s, want under 30 s", worst)
		}
	})
}
