package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Worker is what a run needs of a worker it runs in this process.
type Worker interface {
	Run(ctx context.Context) error
	Ready() bool
}

// StartWorker runs w, and alongside it each of also (a retention loop, say)
// with w's context, and returns once w is ready to take orders: a run that
// published sooner would time the worker's start-up. stop cancels w and
// waits until Run has returned (w drains its running steps first), so the
// caller closes the store, NATS and the sandbox only after it.
func StartWorker(ctx context.Context, w Worker, also ...func(context.Context)) (stop func(), err error) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	for _, f := range also {
		go f(wctx)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	// Ready has no channel to wait on; a 5 ms poll costs nothing next to
	// the streams' creation it waits for.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !w.Ready() {
		select {
		case err := <-done:
			cancel()
			return func() {}, fmt.Errorf("worker stopped before it was ready: %v", err)
		case <-deadline.C:
			stop()
			return func() {}, errors.New("worker not ready within 30s")
		case <-ctx.Done():
			stop()
			return func() {}, ctx.Err()
		case <-tick.C:
		}
	}
	return stop, nil
}
