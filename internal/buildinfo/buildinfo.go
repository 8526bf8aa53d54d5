// Package buildinfo says which build of coinsaga this is, from what the Go
// toolchain recorded in the binary: for `coinsaga version` and for the
// coinsaga_build_info metric that dashboards read.
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Info is what the Go toolchain recorded about this binary.
type Info struct {
	Version   string // module version: a tag, a pseudo-version, or (devel)
	Revision  string // VCS commit, when built from a checkout
	Time      string // that commit's time (RFC 3339)
	Modified  bool   // the checkout had uncommitted changes
	GoVersion string
}

// Read returns this binary's Info.
func Read() Info {
	b := Info{Version: "(devel)", GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := info.Main.Version; v != "" {
		b.Version = v
	}
	if info.GoVersion != "" {
		b.GoVersion = info.GoVersion
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// Print writes b as `coinsaga version` shows it.
func (b Info) Print(w io.Writer) {
	fmt.Fprintf(w, "coinsaga %s\n", b.Version)
	if b.Revision != "" {
		rev := b.Revision
		if b.Modified {
			rev += " (modified)"
		}
		fmt.Fprintf(w, "revision  %s\n", rev)
	}
	if b.Time != "" {
		fmt.Fprintf(w, "committed %s\n", b.Time)
	}
	fmt.Fprintf(w, "go        %s %s/%s\n", b.GoVersion, runtime.GOOS, runtime.GOARCH)
}

// Register adds coinsaga_build_info{version,revision,go_version}, always
// 1, so that dashboards can tell which build each worker runs.
func Register(reg prometheus.Registerer) {
	b := Read()
	rev := b.Revision
	if rev != "" && b.Modified {
		rev += "-modified"
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coinsaga_build_info",
		Help: "Always 1; the labels say which build of coinsaga this is."}, []string{"version", "revision", "go_version"})
	g.WithLabelValues(b.Version, rev, b.GoVersion).Set(1)
	reg.MustRegister(g)
}
