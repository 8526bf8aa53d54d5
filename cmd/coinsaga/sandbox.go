package main

import (
	"context"
	"io"
	"net"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/cli"
	"github.com/coinsaga/coinsaga/internal/service"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// defaultSandboxListen is where `coinsaga sandbox` and `serve --sandbox`
// serve the fake providers.
const defaultSandboxListen = "127.0.0.1:9311"

func runSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	d := sandbox.DefaultConfig()
	cfg := d
	fs := newFlags("sandbox", "sandbox [flags]", stderr)
	listen := fs.String("listen", defaultSandboxListen, "listen address of the fake SUD, MOGS and Midas APIs")
	fs.Int64Var(&cfg.InitialBalance, "initial-balance", d.InitialBalance, "coins a new account starts with")
	fs.StringVar(&cfg.MOGSAppID, "mogs-appid", d.MOGSAppID, "MOGS appid the fake accepts")
	fs.StringVar(&cfg.MidasAppID, "midas-appid", d.MidasAppID, "Midas appid (offer id) the fake accepts")
	fs.StringVar(&cfg.MidasAppKey, "midas-appkey", d.MidasAppKey, "Midas appkey the fake verifies signatures with")
	fs.StringVar(&cfg.SUDAppID, "sud-app-id", d.SUDAppID, "SUD app_id the fake accepts")
	fs.StringVar(&cfg.SUDAppSecret, "sud-app-secret", d.SUDAppSecret, "SUD app_secret the fake verifies Sud-Auth with")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed of the fault randomness (0: time-based)")
	var logFormat, logLevel string
	cli.RegisterLogFlags(fs, &logFormat, &logLevel)
	src, err := parseSources(fs, args)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("sandbox takes no arguments (got %q)", fs.Args())
	}
	if cfg.InitialBalance < 0 {
		return usageErrorf("--initial-balance %d%s: want 0 or more coins", cfg.InitialBalance, src.From("initial-balance"))
	}
	log, err := cli.NewLogger(stderr, logFormat, logLevel)
	if err != nil {
		return err
	}
	cfg.Games = events.DefaultCatalog()
	cfg.Logger = log
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return cli.ListenError("listen", *listen, src, err, "another coinsaga sandbox, or a serve --sandbox?", "")
	}
	log.Info("sandbox listening", "url", "http://"+ln.Addr().String(),
		"mogs_appid", cfg.MOGSAppID, "midas_appid", cfg.MidasAppID, "sud_app_id", cfg.SUDAppID, "initial_balance", cfg.InitialBalance)
	if err := service.ServeSandbox(ctx, ln, cfg); err != nil {
		return err
	}
	log.Info("sandbox stopped")
	return nil
}
