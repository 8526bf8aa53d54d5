package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// CommandFunc runs one subcommand: it parses its own flags from args.
type CommandFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Program is a command-line program of subcommands, in the manner of
// rivercli's command set: the binary's main only builds one and runs it.
type Program struct {
	Name     string // "coinsaga"
	Tagline  string // the usage's first line
	Commands map[string]ProgramCommand
}

// ProgramCommand is one entry of a Program. Subs are the words that
// must follow it (dlq list, order get), for shell completion.
type ProgramCommand struct {
	Summary string
	Run     CommandFunc
	Subs    []string
}

// Names are the commands, sorted.
func (p Program) Names() []string {
	names := make([]string, 0, len(p.Commands))
	for n := range p.Commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Usage writes the program's usage: its commands, one line each.
func (p Program) Usage(w io.Writer) {
	fmt.Fprintln(w, p.Tagline)
	fmt.Fprintf(w, "\nUsage: %s <command> [flags]\n\nCommands:\n", p.Name)
	for _, n := range p.Names() {
		fmt.Fprintf(w, "  %-11s %s\n", n, p.Commands[n].Summary)
	}
	fmt.Fprintf(w, "\nEvery command has --help. Flags may also come from %s_* environment variables.\n", strings.ToUpper(p.Name))
	fmt.Fprintf(w, "%s --version prints the version.\n", p.Name)
}

// Run runs one command line until it ends or ctx is cancelled, and
// returns the exit status: 0, 1 when the command failed, 2 when the
// command line was wrong. An error is printed one line per problem, each
// naming the command.
func (p Program) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		p.Usage(stdout)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		p.Usage(stdout)
		return 0
	case "help":
		if len(args) == 1 {
			p.Usage(stdout)
			return 0
		}
		args = []string{args[1], "--help"}
	case "-version", "--version":
		args = []string{"version"}
	}
	cmd, ok := p.Commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n", p.Name, args[0])
		p.Usage(stderr)
		return 2
	}
	err := cmd.Run(ctx, args[1:], stdout, stderr)
	code := 1
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		if err == ErrUsage { // the command has said why
			return 2
		}
		code = 2
	}
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(stderr, "%s %s: %s\n", p.Name, args[0], strings.TrimSpace(line))
	}
	return code
}

// CompletionTree is what a completion script knows of p: every command
// with its summary, subcommands and flags. flagsOf(args...) returns the
// flags the command line args builds (learnt by running it with --help),
// so that a new flag shows up in the scripts without being listed twice.
func (p Program) CompletionTree(flagsOf func(args ...string) []Flag) []Command {
	var tree []Command
	for _, n := range p.Names() {
		c := p.Commands[n]
		cc := Command{Name: n, Summary: c.Summary}
		if len(c.Subs) == 0 {
			cc.Flags = flagsOf(n)
		}
		for _, s := range c.Subs {
			cc.Subs = append(cc.Subs, Command{Name: s, Flags: flagsOf(n, s)})
		}
		tree = append(tree, cc)
	}
	return tree
}
