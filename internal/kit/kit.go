// Package kit starts what an integration test needs, each piece on
// loopback with ports the kernel picks, and cleans up through t.Cleanup:
// embedded JetStream (StartJetStream), the HTTP sandbox of the providers
// (StartSandbox), a SQLite store in t.TempDir (OpenStore), a worker in
// this process (StartWorker), the coinsaga binary as a child process
// (StartProcess) or a JetStream cluster of nats-server processes that a
// test may SIGKILL and restart node by node (StartNATSCluster). It also waits, always with a deadline, on what tests
// wait for: status events (Status.WaitTerminal), dead letters
// (JetStream.DeadLetters, Status.WaitDeadLetter) and anything else
// (Eventually). And it holds the small pieces several packages' tests
// share: a LogBuffer that goroutines write while the test reads,
// PlayerIntent for numbered one-player orders, and AcceptOrders to fill a
// store before a benchmark.
//
// It is written once so that the tests of worker, cmd/coinsaga and docs
// set up the system the same way; it is for tests only.
package kit

import (
	"testing"
	"time"
)

// Eventually waits until cond holds, checking it at once and then every
// few milliseconds (backing off to 100ms), and fails the test with what
// if it does not hold within timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	EventuallyOn(t, nil, timeout, what, cond, nil)
}

// EventuallyOn is Eventually that also re-checks cond whenever wake
// fires, so a test waiting on events sees them at once; more, when not
// nil, is added to the failure (a log tail, say).
func EventuallyOn(t testing.TB, wake <-chan struct{}, timeout time.Duration, what string, cond func() bool, more func() string) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	pause := 5 * time.Millisecond
	for !cond() {
		tick := time.NewTimer(pause)
		select {
		case <-wake:
		case <-tick.C:
		case <-deadline.C:
			tick.Stop()
			if cond() {
				return
			}
			extra := ""
			if more != nil {
				extra = "\n" + more()
			}
			t.Fatalf("%s: not within %s%s", what, timeout, extra)
		}
		tick.Stop()
		pause = min(2*pause, 100*time.Millisecond)
	}
}
