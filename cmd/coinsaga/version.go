package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// build is what the Go toolchain recorded about this binary.
type build struct {
	version   string // module version: a tag, a pseudo-version, or (devel)
	revision  string // VCS commit, when built from a checkout
	time      string // that commit's time (RFC 3339)
	modified  bool   // the checkout had uncommitted changes
	goVersion string
}

func readBuild() build {
	b := build{version: "(devel)", goVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := info.Main.Version; v != "" {
		b.version = v
	}
	if info.GoVersion != "" {
		b.goVersion = info.GoVersion
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.time":
			b.time = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

func (b build) print(w io.Writer) {
	fmt.Fprintf(w, "coinsaga %s\n", b.version)
	if b.revision != "" {
		rev := b.revision
		if b.modified {
			rev += " (modified)"
		}
		fmt.Fprintf(w, "revision  %s\n", rev)
	}
	if b.time != "" {
		fmt.Fprintf(w, "committed %s\n", b.time)
	}
	fmt.Fprintf(w, "go        %s %s/%s\n", b.goVersion, runtime.GOOS, runtime.GOARCH)
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "version\n\nPrints the module version, the VCS revision and commit time the binary was built from,\nand the Go version. `coinsaga --version` prints the same.", stderr)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("version takes no arguments (got %q)", fs.Args())
	}
	readBuild().print(stdout)
	return nil
}

// registerBuildInfo adds coinsaga_build_info{version,revision,go_version},
// always 1, so that dashboards can tell which build each worker runs.
func registerBuildInfo(reg prometheus.Registerer) {
	b := readBuild()
	rev := b.revision
	if rev != "" && b.modified {
		rev += "-modified"
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coinsaga_build_info",
		Help: "Always 1; the labels say which build of coinsaga this is."}, []string{"version", "revision", "go_version"})
	g.WithLabelValues(b.version, rev, b.goVersion).Set(1)
	reg.MustRegister(g)
}
