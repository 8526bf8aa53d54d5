package kit

import (
	"context"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/worker"
)

// Worker is a worker running in the test's process.
type Worker struct {
	t      testing.TB
	Config worker.Config
	*worker.Worker
	cancel context.CancelFunc
	done   chan error
}

// StartWorker starts a worker with cfg, waits until it is ready, and
// drains it when the test ends.
func StartWorker(t testing.TB, cfg worker.Config) *Worker {
	t.Helper()
	w := &Worker{t: t, Config: cfg}
	w.run()
	t.Cleanup(w.Stop)
	return w
}

func (w *Worker) run() {
	w.t.Helper()
	ww, err := worker.New(w.Config)
	if err != nil {
		w.t.Fatal(err)
	}
	w.Worker = ww
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan error, 1)
	go func() { w.done <- ww.Run(ctx) }()
	Eventually(w.t, 10*time.Second, "worker ready", ww.Ready)
}

// Restart drains the worker and starts a new one with the same Config
// (the same store, NATS and providers), as a restarted process would: it
// knows only what is stored.
func (w *Worker) Restart() {
	w.t.Helper()
	w.Stop()
	w.run()
}

// Stop drains the worker and checks that it stopped cleanly; stopping a
// stopped worker does nothing.
func (w *Worker) Stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	w.cancel = nil
	select {
	case err := <-w.done:
		if err != nil {
			w.t.Errorf("worker stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		w.t.Error("worker did not drain within 30s")
	}
}
