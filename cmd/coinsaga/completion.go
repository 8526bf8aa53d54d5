package main

import (
	"context"
	"io"
	"sort"

	"github.com/coinsaga/coinsaga/internal/cli"
)

// compCommand is one command as a completion script knows it.
type compCommand struct {
	name    string   // "serve", or "list" under dlq
	summary string   // one line
	subs    []string // subcommands, in order; empty for a leaf
	flags   []compFlag
}

type compFlag struct {
	name, usage string
	value       bool // takes a value (--nats-url URL), unlike --json
}

// completionTree learns every command's flags from the flag sets the
// commands themselves build, by running each with --help: a new flag
// shows up in the scripts without anyone listing it twice.
func completionTree() []compCommand {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var tree []compCommand
	for _, n := range names {
		c := compCommand{name: n, summary: commands[n].summary, subs: subcommands[n]}
		if len(c.subs) == 0 {
			c.flags = flagsOf(n)
		}
		tree = append(tree, c)
	}
	return tree
}

// flagsOf runs `coinsaga args... --help` and returns the flags of the
// last flag set it made.
func flagsOf(args ...string) []compFlag {
	var c cli.FlagCollector
	runWith(context.Background(), append(args, "--help"), io.Discard, &c)
	if len(c.Sets) == 0 {
		return nil
	}
	var flags []compFlag
	for _, f := range cli.FlagsOf(c.Sets[len(c.Sets)-1]) {
		flags = append(flags, compFlag{name: f.Name, usage: f.Usage, value: f.Value})
	}
	return flags
}

// subFlags are the flags of cmd's subcommand sub.
func subFlags(cmd, sub string) []compFlag {
	if cmd == "completion" {
		return flagsOf(cmd)
	}
	return flagsOf(cmd, sub)
}

const completionSynopsis = `completion bash|zsh|fish

Prints a shell completion script for commands, subcommands and flags.
  bash:  source <(coinsaga completion bash)     # in ~/.bashrc
  zsh:   source <(coinsaga completion zsh)      # in ~/.zshrc, after compinit
         (or save it as _coinsaga in a directory of $fpath)
  fish:  coinsaga completion fish > ~/.config/fish/completions/coinsaga.fish`

func runCompletion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("completion", completionSynopsis, stderr)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("completion takes one shell: bash, zsh or fish")
	}
	switch fs.Arg(0) {
	case "bash", "zsh", "fish":
	default:
		return usageErrorf("completion: unknown shell %q: want bash, zsh or fish", fs.Arg(0))
	}
	cliFlags := func(fl []compFlag) []cli.Flag {
		out := make([]cli.Flag, len(fl))
		for i, f := range fl {
			out[i] = cli.Flag{Name: f.name, Usage: f.usage, Value: f.value}
		}
		return out
	}
	var tree []cli.Command
	for _, c := range completionTree() {
		cc := cli.Command{Name: c.name, Summary: c.summary, Flags: cliFlags(c.flags)}
		for _, s := range c.subs {
			cc.Subs = append(cc.Subs, cli.Command{Name: s, Flags: cliFlags(subFlags(c.name, s))})
		}
		tree = append(tree, cc)
	}
	return cli.WriteCompletion(stdout, fs.Arg(0), tree)
}
