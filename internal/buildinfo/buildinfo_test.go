package buildinfo

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestPrintShowsEveryRecordedField(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	Info{Version: "v1.2.3", Revision: "abc123", Time: "2026-01-02T03:04:05Z", Modified: true, GoVersion: "go1.99"}.Print(&b)
	want := "coinsaga v1.2.3\nrevision  abc123 (modified)\ncommitted 2026-01-02T03:04:05Z\ngo        go1.99 " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if b.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestBuildInfoMetric(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	Register(reg)
	families, err := reg.Gather()
	if err != nil || len(families) != 1 || families[0].GetName() != "coinsaga_build_info" {
		t.Fatalf("gathered %v, %v", families, err)
	}
	m := families[0].GetMetric()[0]
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if m.GetGauge().GetValue() != 1 || labels["go_version"] != runtime.Version() || labels["version"] == "" {
		t.Errorf("coinsaga_build_info %v = %v", labels, m.GetGauge().GetValue())
	}
	if _, ok := labels["revision"]; !ok {
		t.Error("no revision label")
	}
}
