package main

import (
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coinsaga/coinsaga/internal/service"
)

// No Docker engine runs the tests, so the Dockerfile is checked as text
// against what it must agree with: the Makefile's build target (the image
// is built by `make build`, never by a copy of its command), go.mod's Go
// release, and serve's own flags (the image's command parses).

// dockerInstr is one instruction of a Dockerfile, continuations joined.
type dockerInstr struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
	line int
}

func parseDockerfile(t *testing.T, text string) []dockerInstr {
	t.Helper()
	var out []dockerInstr
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue // comments may sit inside a continuation too
		}
		if cur.Len() == 0 {
			start = i + 1
		} else {
			cur.WriteByte(' ')
		}
		if body, more := strings.CutSuffix(trimmed, `\`); more {
			cur.WriteString(strings.TrimSpace(body))
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstr{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile ends inside a continued line: %q", cur.String())
	}
	return out
}

// dockerStages splits the instructions at each FROM.
func dockerStages(instrs []dockerInstr) [][]dockerInstr {
	var stages [][]dockerInstr
	for _, in := range instrs {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	return stages
}

func find(stage []dockerInstr, cmd string) []dockerInstr {
	var out []dockerInstr
	for _, in := range stage {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// execForm decodes a JSON-array (exec form) argument.
func execForm(t *testing.T, in dockerInstr) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		t.Fatalf("line %d: %s %s is not exec form (a JSON array): %v", in.line, in.cmd, in.args, err)
	}
	return v
}

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var hasWordMakeBuild = regexp.MustCompile(`(^|[\s;&|])make\s+build($|[\s;&|])`)

func TestDockerfile(t *testing.T) {
	t.Parallel()
	instrs := parseDockerfile(t, readRepoFile(t, "Dockerfile"))
	stages := dockerStages(instrs)
	if len(stages) != 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, runtime := stages[0], stages[1]

	// What the Makefile builds, and where.
	makefile := readRepoFile(t, "Makefile")
	m := regexp.MustCompile(`(?m)^BIN\s*\?=\s*(\S+)\s*$`).FindStringSubmatch(makefile)
	if m == nil {
		t.Fatal("Makefile has no `BIN ?= ...` default")
	}
	bin := m[1]
	recipe := regexp.MustCompile(`(?m)^build:.*\n((?:\t.*\n)+)`).FindStringSubmatch(makefile)
	if recipe == nil || !strings.Contains(recipe[1], "-o $(BIN)") || !strings.Contains(recipe[1], "./cmd/coinsaga") {
		t.Fatalf("Makefile's build target does not build ./cmd/coinsaga into $(BIN): %q", recipe)
	}

	t.Run("the build stage is golang of go.mod's release on the runtime's Debian, with cgo", func(t *testing.T) {
		gomod := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readRepoFile(t, "go.mod"))
		if gomod == nil {
			t.Fatal("go.mod has no go line")
		}
		from := strings.Fields(build[0].args)
		if len(from) != 3 || !strings.EqualFold(from[1], "AS") || from[2] != "build" {
			t.Fatalf("FROM %s: want `FROM golang:... AS build`", build[0].args)
		}
		if want := "golang:" + gomod[1] + "-bookworm"; from[0] != want {
			t.Errorf("build image %s, want %s (go.mod says go %s)", from[0], want, gomod[1])
		}
		if rt := strings.Fields(runtime[0].args)[0]; rt != "debian:bookworm-slim" {
			t.Errorf("runtime image %s, want debian:bookworm-slim: the cgo binary links the build stage's glibc", rt)
		}
		for _, in := range instrs {
			if strings.Contains(in.args, "CGO_ENABLED=0") {
				t.Errorf("line %d turns cgo off: SQLite (mattn/go-sqlite3) needs it", in.line)
			}
		}
	})

	t.Run("the build stage runs make build and the runtime copies the Makefile's binary", func(t *testing.T) {
		var workdir string
		built := false
		for _, in := range build {
			switch in.cmd {
			case "WORKDIR":
				workdir = path.Join(workdir, in.args)
				if path.IsAbs(in.args) {
					workdir = in.args
				}
			case "RUN":
				if hasWordMakeBuild.MatchString(in.args) {
					built = true
				}
				if strings.Contains(in.args, "go build") {
					t.Errorf("line %d runs go build itself: use make build, so that the image and the Makefile cannot drift", in.line)
				}
			}
		}
		if !built {
			t.Fatal("no RUN make build in the build stage")
		}
		want := path.Join(workdir, bin)
		copied := false
		for _, in := range find(runtime, "COPY") {
			f := strings.Fields(in.args)
			if len(f) == 3 && f[0] == "--from=build" {
				if f[1] != want {
					t.Errorf("line %d copies %s from the build stage, but make build writes %s", in.line, f[1], want)
				}
				if f[2] != "/usr/local/bin/coinsaga" {
					t.Errorf("line %d installs the binary as %s, want /usr/local/bin/coinsaga (ENTRYPOINT runs coinsaga from PATH)", in.line, f[2])
				}
				copied = true
			}
		}
		if !copied {
			t.Fatal("the runtime stage copies nothing from the build stage")
		}
	})

	t.Run("the runtime runs coinsaga as a non-root user with ca-certificates and /data as a volume", func(t *testing.T) {
		if !slices.ContainsFunc(find(runtime, "RUN"), func(in dockerInstr) bool { return strings.Contains(in.args, "ca-certificates") }) {
			t.Error("ca-certificates are not installed: the real providers are https")
		}
		users := find(runtime, "USER")
		if len(users) == 0 {
			t.Fatal("no USER: the image would run as root")
		}
		if u, _, _ := strings.Cut(users[len(users)-1].args, ":"); u == "root" || u == "0" || u == "" {
			t.Errorf("USER %s is root", users[len(users)-1].args)
		}
		if v := find(runtime, "VOLUME"); len(v) != 1 || v[0].args != "/data" {
			t.Errorf("VOLUME %v, want /data", v)
		}
		if e := find(runtime, "ENTRYPOINT"); len(e) != 1 || !slices.Equal(execForm(t, e[0]), []string{"coinsaga"}) {
			t.Errorf(`ENTRYPOINT %v, want ["coinsaga"]`, e)
		}
	})

	t.Run("the command is serve flags that parse, listening on the exposed ports, its data in the volume", func(t *testing.T) {
		cmds := find(runtime, "CMD")
		if len(cmds) != 1 {
			t.Fatalf("%d CMD lines", len(cmds))
		}
		args := execForm(t, cmds[0])
		if len(args) == 0 || args[0] != "serve" {
			t.Fatalf("CMD %v does not start with serve", args)
		}
		var f serveFlags
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		f.register(fs)
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
			t.Fatalf("CMD %v: serve refuses its flags: %v %v", args, err, fs.Args())
		}
		get := func(name string) string { return fs.Lookup(name).Value.String() }
		if get("sandbox") != "true" {
			t.Error("CMD does not run the sandbox: the image's default must need no secrets")
		}
		if get("data-dir") != "/data" {
			t.Errorf("--data-dir %s is not the volume /data: a new container would forget every order", get("data-dir"))
		}
		var exposed []string
		for _, in := range find(runtime, "EXPOSE") {
			exposed = append(exposed, strings.Fields(in.args)...)
		}
		for _, name := range []string{"nats-listen", "http-listen", "sandbox-listen"} {
			host, port, err := net.SplitHostPort(get(name))
			if err != nil {
				t.Errorf("--%s %s: %v", name, get(name), err)
				continue
			}
			if !slices.Contains(exposed, port) {
				t.Errorf("--%s port %s is not in EXPOSE %v", name, port, exposed)
			}
			// Inside a container only an address beyond loopback can be
			// reached through a published port.
			if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
				t.Errorf("--%s %s: a published port reaches only 0.0.0.0 in a container", name, get(name))
			}
		}
	})

	t.Run("the build context has the sources and none of a local run's data", func(t *testing.T) {
		var patterns []string
		for _, l := range strings.Split(readRepoFile(t, ".dockerignore"), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				patterns = append(patterns, l)
			}
		}
		excluded := func(p string) bool {
			out := false
			for _, pat := range patterns {
				neg := strings.HasPrefix(pat, "!")
				pat = strings.TrimPrefix(strings.TrimPrefix(pat, "!"), "/")
				// A pattern that matches a folder leaves out all of it.
				for q := p; q != "." && q != "/"; q = path.Dir(q) {
					if ok, _ := path.Match(pat, q); ok {
						out = !neg
						break
					}
				}
			}
			return out
		}
		for _, p := range []string{"data/coinsaga.db", "data/sandbox.json", "data/jetstream/x", "bin/coinsaga", ".git/HEAD"} {
			if !excluded(p) {
				t.Errorf("%s goes into the build context", p)
			}
		}
		for _, p := range []string{"go.mod", "go.sum", "Makefile", "cmd/coinsaga/main.go", "events/catalog.json",
			"internal/embednats/embednats.go", "providers/sandbox/sandbox.go", "store/sqlite.go", "worker/worker.go"} {
			if excluded(p) {
				t.Errorf("%s is left out of the build context: make build needs it", p)
			}
		}
	})

	t.Run("a sandbox listening on every interface gives the in-process clients a loopback URL", func(t *testing.T) {
		_, u, stop, err := service.StartSandbox("0.0.0.0:0", "", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		pu, err := url.Parse(u)
		if err != nil || pu.Hostname() != "127.0.0.1" {
			t.Errorf("sandbox URL %s, want http://127.0.0.1:PORT: its admin API answers loopback only", u)
		}
	})
}
