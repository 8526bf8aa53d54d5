package main

import (
	"context"
	"io"

	"github.com/coinsaga/coinsaga/internal/cli"
)

// completionTree is every command with its flags, learnt from the flag
// sets the commands themselves build (cli.Program.CompletionTree).
func completionTree() []cli.Command { return program.CompletionTree(flagsOf) }

// flagsOf runs `coinsaga args... --help` and returns the flags of the
// last flag set it made.
func flagsOf(args ...string) []cli.Flag {
	var c cli.FlagCollector
	runWith(context.Background(), append(args, "--help"), io.Discard, &c)
	if len(c.Sets) == 0 {
		return nil
	}
	return cli.FlagsOf(c.Sets[len(c.Sets)-1])
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
	tree := completionTree()
	return cli.WriteCompletion(stdout, fs.Arg(0), tree)
}
