// Command coinsaga is the order processor: `serve` runs workers, `sandbox`
// fakes the providers, and the rest are tools for game servers and
// operators. Run `coinsaga <command> --help` for each command's flags;
// every flag can also be set as COINSAGA_<FLAG> (upper case, "-" as "_").
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/coinsaga/coinsaga/internal/cli"
)

// program is coinsaga's command set. It is filled in init: completion
// reads it, and a variable whose initializer reaches itself does not
// compile.
var program = cli.Program{Name: "coinsaga", Tagline: "coinsaga: the order processor game studios trust with their players' coins."}

func init() {
	program.Commands = map[string]cli.ProgramCommand{
		"serve":      {Summary: "run saga workers (embedded JetStream and SQLite by default)", Run: runServe},
		"sandbox":    {Summary: "run the fake SUD, MOGS and Midas providers", Run: runSandbox},
		"publish":    {Summary: "validate and publish purchase intents", Run: runPublish},
		"watch":      {Summary: "print status events as they happen", Run: runWatch},
		"order":      {Summary: "inspect an order: order get <out_order_id>", Run: runOrder, Subs: []string{"get"}},
		"dlq":        {Summary: "list, show, replay or purge dead letters", Run: runDLQ, Subs: []string{"list", "show", "replay", "purge"}},
		"bench":      {Summary: "measure throughput and latency end to end", Run: runBench},
		"version":    {Summary: "print the version, VCS revision and Go version", Run: runVersion},
		"completion": {Summary: "print a bash, zsh or fish completion script", Run: runCompletion, Subs: []string{"bash", "zsh", "fish"}},
	}
}

// defaultGCPercent halves the garbage collector's work against Go's default
// of 100: an order allocates much short-lived JSON and HTTP garbage, and
// `coinsaga bench --self` measured about 20% less CPU per order at 200 for
// some 35 MiB more heap (docs/performance.md). GOGC, when set, wins.
const defaultGCPercent = 200

// defaultMemoryLimit is the soft heap limit that keeps GOGC=200 from
// doubling a large live heap: with 50,000 orders waiting in confirmation
// the whole `bench --self` process peaked at 606 MiB RSS without it and
// 403 MiB with it (docs/performance.md). Below it the collector runs as
// GOGC says; near it, more often. GOMEMLIMIT, when set, wins.
const defaultMemoryLimit = 384 << 20

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runWith(ctx, args, stdout, stderr)
}

// runWith runs one command line (cli.Program.Run has the exit codes).
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return program.Run(ctx, args, stdout, stderr)
}
