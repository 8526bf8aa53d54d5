package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/coinsaga/coinsaga/internal/config"
	"github.com/coinsaga/coinsaga/internal/service"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/worker"
)

// The names bench.go builds its in-process system with, now in
// internal/service, internal/config and worker. They go once bench (moving
// to internal/loadgen) calls those packages itself.
var (
	newProviders      = service.NewProviders
	sandboxConfig     = config.Sandbox
	startSandboxState = service.StartSandbox
)

func startSandbox(addr string, log *slog.Logger) (*sandbox.Sandbox, string, func(), error) {
	return service.StartSandbox(addr, "", log)
}

func pruneLoop(ctx context.Context, st store.Store, retention time.Duration, log *slog.Logger) {
	worker.PruneLoop(ctx, st, retention, time.Now, log)
}
