package loadgen

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeWorker is ready once Run has started, unless it fails first.
type fakeWorker struct {
	fail    error // Run returns it at once
	ready   atomic.Bool
	stopped atomic.Bool
}

func (w *fakeWorker) Run(ctx context.Context) error {
	if w.fail != nil {
		return w.fail
	}
	w.ready.Store(true)
	<-ctx.Done()
	w.stopped.Store(true)
	return nil
}

func (w *fakeWorker) Ready() bool { return w.ready.Load() }

func TestStartWorkerReturnsOnceTheWorkerIsReady(t *testing.T) {
	t.Parallel()
	w := &fakeWorker{}
	alongside := make(chan struct{})
	stop, err := startWorker(context.Background(), w, func(ctx context.Context) {
		<-ctx.Done()
		close(alongside)
	})
	if err != nil {
		t.Fatalf("StartWorker: %v", err)
	}
	if !w.Ready() {
		t.Fatal("StartWorker returned before the worker was ready")
	}
	stop()
	if !w.stopped.Load() {
		t.Error("stop returned before the worker's Run did")
	}
	select {
	case <-alongside:
	case <-time.After(10 * time.Second):
		t.Error("the loop run alongside the worker was not stopped with it")
	}
	stop() // a second stop must not block or panic
}

func TestStartWorkerReportsAWorkerThatStopsBeforeItIsReady(t *testing.T) {
	t.Parallel()
	boom := errors.New("streams: no JetStream")
	_, err := startWorker(context.Background(), &fakeWorker{fail: boom})
	if err == nil || !strings.Contains(err.Error(), boom.Error()) {
		t.Errorf("StartWorker error %v, want one saying the worker stopped: %v", err, boom)
	}
}

func TestStartWorkerGivesUpWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	never := &neverReady{}
	if _, err := startWorker(ctx, never); !errors.Is(err, context.Canceled) {
		t.Errorf("StartWorker error %v, want context.Canceled", err)
	}
	if !never.stopped.Load() {
		t.Error("a worker left behind by StartWorker is still running")
	}
}

// neverReady runs until cancelled without ever becoming ready.
type neverReady struct{ stopped atomic.Bool }

func (w *neverReady) Run(ctx context.Context) error {
	<-ctx.Done()
	w.stopped.Store(true)
	return nil
}

func (w *neverReady) Ready() bool { return false }
