// Command coinsaga is the order processor: `serve` runs workers, `sandbox`
// fakes the providers, and the rest are tools for game servers and
// operators. Run `coinsaga <command> --help` for each command's flags;
// every flag can also be set as COINSAGA_<FLAG> (upper case, "-" as "_").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand: it parses its own flags from args.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is filled in init: completion reads it, and a variable whose
// initializer reaches itself does not compile.
var commands map[string]command

func init() {
	commands = map[string]command{
		"serve":      {"run saga workers (embedded JetStream and SQLite by default)", runServe},
		"sandbox":    {"run the fake SUD, MOGS and Midas providers", runSandbox},
		"publish":    {"validate and publish purchase intents", runPublish},
		"watch":      {"print status events as they happen", runWatch},
		"order":      {"inspect an order: order get <out_order_id>", runOrder},
		"dlq":        {"list, show, replay or purge dead letters", runDLQ},
		"bench":      {"measure throughput and latency end to end", runBench},
		"version":    {"print the version, VCS revision and Go version", runVersion},
		"completion": {"print a bash, zsh or fish completion script", runCompletion},
	}
}

// subcommands are the words that must follow a command, for completion.
var subcommands = map[string][]string{
	"dlq":        {"list", "show", "replay", "purge"},
	"order":      {"get"},
	"completion": {"bash", "zsh", "fish"},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "coinsaga: the order processor game studios trust with their players' coins.")
	fmt.Fprintln(w, "\nUsage: coinsaga <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nEvery command has --help. Flags may also come from COINSAGA_* environment variables.")
	fmt.Fprintln(w, "coinsaga --version prints the version.")
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

// runWith runs one command line until it ends or ctx is cancelled, and
// returns the exit status: 0, 1 when the command failed, 2 when the
// command line was wrong. An error is printed one line per problem, each
// naming the command.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return 0
		}
		args = []string{args[1], "--help"}
	case "-version", "--version":
		args = []string{"version"}
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "coinsaga: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	code := 1
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		if err == errUsage { // the command has said why
			return 2
		}
		code = 2
	}
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(stderr, "coinsaga %s: %s\n", args[0], strings.TrimSpace(line))
	}
	return code
}
