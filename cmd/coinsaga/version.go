package main

import (
	"context"
	"io"

	"github.com/coinsaga/coinsaga/internal/buildinfo"
)

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "version\n\nPrints the module version, the VCS revision and commit time the binary was built from,\nand the Go version. `coinsaga --version` prints the same.", stderr)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("version takes no arguments (got %q)", fs.Args())
	}
	buildinfo.Read().Print(stdout)
	return nil
}
