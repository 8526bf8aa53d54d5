package main

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/coinsaga/coinsaga/internal/cli"
	"github.com/coinsaga/coinsaga/internal/kit"
)

// oneLine checks a user's mistake the way the CLI promises to report it:
// the exit code, exactly one line on stderr naming the cause, and nothing
// of Go's insides.
func oneLine(t *testing.T, stderr string, code, wantCode int, want string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, wantCode, stderr)
	}
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) != 1 {
		t.Errorf("%d lines on stderr, want 1:\n%s", len(lines), stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not say %q", stderr, want)
	}
	for _, leak := range []string{"main.", "EOF", "!!", "struct {", "Usage:", "strconv.", "parse error"} {
		if strings.Contains(stderr, leak) {
			t.Errorf("stderr shows %q: %s", leak, stderr)
		}
	}
}

// mistake is a command line that is wrong (in the environment env, too),
// the exit code and what its one line on stderr must say.
type mistake struct {
	name string
	args []string
	env  map[string]string
	code int
	want string
}

// mistakesGetOneLine runs each mistake in-process and checks its line.
// The environment is set per case, so the calling test cannot be parallel.
func mistakesGetOneLine(t *testing.T, tests []mistake) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, stderr, code := runCLI(t, context.Background(), tc.args...)
			oneLine(t, stderr, code, tc.code, tc.want)
		})
	}
}

func TestFlagsMayFollowArguments(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Bool("json", false, "")
	fs.String("nats-url", "", "")
	fs.Duration("timeout", 0, "")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"flags after the arguments move before them", []string{"get", "ID", "--json"}, []string{"--json", "--", "get", "ID"}},
		{"a flag keeps its value", []string{"get", "--nats-url", "nats://x", "ID"}, []string{"--nats-url", "nats://x", "--", "get", "ID"}},
		{"a value given with = stays one word", []string{"get", "--timeout=2s", "ID"}, []string{"--timeout=2s", "--", "get", "ID"}},
		{"a bool flag takes no value", []string{"get", "--json", "ID"}, []string{"--json", "--", "get", "ID"}},
		{"-- ends the flags", []string{"get", "--", "--json"}, []string{"--", "get", "--json"}},
		{"- alone is an argument", []string{"-"}, []string{"--", "-"}},
		{"no arguments: only flags", []string{"--json"}, []string{"--json"}},
		{"an unknown flag is left for the flag package to name", []string{"a", "--frob", "b"}, []string{"--frob", "--", "a", "b"}},
		{"a missing value is left for the flag package to name", []string{"a", "--nats-url"}, []string{"--nats-url"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := interspersed(fs, tc.args); !slices.Equal(got, tc.want) {
				t.Errorf("interspersed(%q) = %q, want %q", tc.args, got, tc.want)
			}
		})
	}
	t.Run("order get ID --json reaches NATS instead of printing the usage", func(t *testing.T) {
		url := "nats://" + kit.ReserveAddr(t)
		_, stderr, code := runCLI(t, context.Background(), "order", "get", "some-order", "--json", "--nats-url", url)
		oneLine(t, stderr, code, 1, "no NATS server answers at "+url)
	})
}

func TestMistakesGetOneLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	typo := write("typo.yaml", "mogs:\n  baseurl: https://m\n")
	list := write("list.yaml", "- sud\n- mogs\n")
	empty := write("empty.yaml", "")
	secret := write("secret.yaml", "sud:\n  app_id: a\n  app_secret: s\n  app_secret_env: SUD_APP_SECRET\n  asc_base_url: https://a\nmogs:\n  base_url: https://m\n  app_id: x\n")
	unset := write("unset.yaml", "sud:\n  app_id: a\n  app_secret_env: COINSAGA_TEST_UNSET_SECRET\n  asc_base_url: https://a\nmogs:\n  base_url: https://m\n  app_id: x\n")
	twice := write("twice.yaml", "sud:\n  app_id: a\n  app_id: b\n")
	broken := write("broken.yaml", "sud:\n  app_id: [\n")
	section := write("section.yaml", "sud: [1, 2]\n")
	nested := write("nested.yaml", "mogs:\n  app_id: {a: 1}\n")
	mistakesGetOneLine(t, []mistake{
		{"a mistyped config key names file, line and key", []string{"serve", "--config", typo}, nil, 1,
			"config " + typo + " line 2: mogs.baseurl: unknown key; did you mean base_url?"},
		{"a list for a config is named a list", []string{"serve", "--config", list}, nil, 1,
			"config " + list + " line 1: the file holds a list; want the keys sud, mogs, midas, database, timeout, protect"},
		{"an empty config is called empty", []string{"serve", "--config", empty}, nil, 1,
			"config " + empty + ": the file is empty"},
		{"a secret given two ways is one problem", []string{"serve", "--config", secret}, nil, 1,
			"config " + secret + " line 4: sud.app_secret_env: give the secret one way only, not both app_secret and app_secret_env"},
		{"a secret's unset variable is one problem", []string{"serve", "--config", unset}, nil, 1,
			"line 3: sud.app_secret_env: the environment variable COINSAGA_TEST_UNSET_SECRET is not set"},
		{"a key given twice names both lines", []string{"serve", "--config", twice}, nil, 1,
			"config " + twice + " line 3: sud.app_id: given twice (first on line 2)"},
		{"broken YAML names its line", []string{"serve", "--config", broken}, nil, 1, "config " + broken + " line 2: not valid YAML"},
		{"a section that is no mapping", []string{"serve", "--config", section}, nil, 1, "line 1: sud: holds a list; want the keys app_id"},
		{"a value that is a mapping", []string{"serve", "--config", nested}, nil, 1, "line 2: mogs.app_id: holds a map of keys; want one value"},
		{"a missing config file", []string{"serve", "--config", filepath.Join(dir, "none.yaml")}, nil, 1, "none.yaml: no such file or directory"},

		{"a value that does not parse says what it should be", []string{"serve", "--concurrency", "many"}, nil, 2, `--concurrency "many": want a whole number`},
		{"a duration that does not parse", []string{"serve", "--confirm-interval", "soon"}, nil, 2, `--confirm-interval "soon": want a duration like`},
		{"an environment value that does not parse", []string{"serve"}, map[string]string{"COINSAGA_CONCURRENCY": "many"}, 2, `COINSAGA_CONCURRENCY="many": want a whole number`},
		{"an unknown flag", []string{"serve", "--frob"}, nil, 2, "unknown flag --frob (coinsaga serve --help lists the flags)"},
		{"a flag without its value", []string{"order", "get", "x", "--nats-url"}, nil, 2, "a value is missing after --nats-url"},
		{"order without get", []string{"order"}, nil, 2, "missing subcommand: order get <out_order_id>"},
		{"order with another subcommand", []string{"order", "list"}, nil, 2, `unknown subcommand "list"`},
		{"order get without an id", []string{"order", "get"}, nil, 2, "order get needs the out_order_id"},
		{"completion without a shell", []string{"completion"}, nil, 2, "completion takes one shell: bash, zsh or fish"},
		{"completion for another shell", []string{"completion", "tcsh"}, nil, 2, `unknown shell "tcsh"`},
		{"version with an argument", []string{"version", "now"}, nil, 2, "version takes no arguments"},
	})
}

func TestConfigProblemsAreOneLineEach(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("sud:\n  app_id: a\nmidas:\n  base_url: ftp://x\ntimeout: soon\n"), 0o600)
	_, stderr, code := runCLI(t, context.Background(), "serve", "--config", path)
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	want := []string{
		"coinsaga serve: config " + path + " line 5: timeout: \"soon\" is not a positive duration like 5s",
		"coinsaga serve: config " + path + " line 1: sud.app_secret: required: give app_secret, app_secret_env or app_secret_file",
		"coinsaga serve: config " + path + " line 1: sud: set create_order_url (and query_order_url), or asc_base_url for discovery",
		"coinsaga serve: config " + path + " line 4: midas.base_url: \"ftp://x\" is not an http(s) URL",
		"coinsaga serve: config " + path + " line 3: midas.app_id: required with midas.base_url (the offer id)",
		"coinsaga serve: config " + path + " line 3: midas.app_key: required with midas.base_url: give app_key, app_key_env or app_key_file",
	}
	if got := strings.Split(strings.TrimSpace(stderr), "\n"); !slices.Equal(got, want) {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, strings.Join(want, "\n"))
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	out, stderr, code := runCLI(t, context.Background(), "version")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "coinsaga ") || !strings.Contains(out, "go        "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("version printed:\n%s", out)
	}
	again, _, code := runCLI(t, context.Background(), "--version")
	if code != 0 || again != out {
		t.Errorf("--version (exit %d) printed:\n%s\nwant what version printed:\n%s", code, again, out)
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	tree := completionTree()
	t.Run("the tree has every command, subcommand and flag", func(t *testing.T) {
		byName := map[string]cli.Command{}
		for _, c := range tree {
			byName[c.Name] = c
		}
		for name := range program.Commands {
			if _, ok := byName[name]; !ok {
				t.Errorf("command %s is missing", name)
			}
		}
		var f serveFlags
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		f.register(fs)
		var want []string
		fs.VisitAll(func(fl *flag.Flag) { want = append(want, fl.Name) })
		var got []string
		for _, fl := range byName["serve"].Flags {
			got = append(got, fl.Name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("serve flags %q, want %q", got, want)
		}
		for cmd, c := range program.Commands {
			for _, s := range c.Subs {
				_, stderr, code := runCLI(t, context.Background(), cmd, s, "--help")
				if code != 0 || !strings.Contains(stderr, "Usage: coinsaga "+cmd) {
					t.Errorf("%s %s --help: exit %d:\n%s", cmd, s, code, stderr)
				}
			}
		}
		if flags := flagsOf("dlq", "list"); !slices.ContainsFunc(flags, func(f cli.Flag) bool { return f.Name == "reason" && f.Value }) {
			t.Errorf("dlq list flags %v lack --reason VALUE", flags)
		}
	})
	t.Run("no flag takes a value in one command and none in another", func(t *testing.T) {
		kinds := map[string]bool{}
		check := func(where string, flags []cli.Flag) {
			for _, f := range flags {
				if v, seen := kinds[f.Name]; seen && v != f.Value {
					t.Errorf("--%s (%s): takes a value here but not elsewhere; the scripts skip one list of value flags", f.Name, where)
				}
				kinds[f.Name] = f.Value
			}
		}
		for _, c := range tree {
			check(c.Name, c.Flags)
			for _, s := range c.Subs {
				check(c.Name+" "+s.Name, s.Flags)
			}
		}
	})
	scripts := map[string]string{}
	// shellWith finds shell, skipping the test without it, and writes its
	// completion script to a file of the test's own.
	shellWith := func(t *testing.T, shell string) (bin, script string) {
		t.Helper()
		bin, err := exec.LookPath(shell)
		if err != nil {
			t.Skipf("no %s here", shell)
		}
		script = filepath.Join(t.TempDir(), "coinsaga."+shell)
		os.WriteFile(script, []byte(scripts[shell]), 0o600)
		return bin, script
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, stderr, code := runCLI(t, context.Background(), "completion", shell)
		if code != 0 || !strings.Contains(out, "dlq") || !strings.Contains(out, "--nats-url") || !strings.Contains(out, "replay") {
			t.Fatalf("completion %s: exit %d, %s\n%s", shell, code, stderr, out)
		}
		scripts[shell] = out
		t.Run(shell+" parses the script", func(t *testing.T) {
			bin, path := shellWith(t, shell)
			if out, err := exec.Command(bin, "-n", path).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", shell, err, out)
			}
		})
	}
	t.Run("bash completes commands, subcommands and flags", func(t *testing.T) {
		bash, path := shellWith(t, "bash")
		probe := `source "$1"
c() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMPREPLY=(); _coinsaga; echo "${COMPREPLY[*]}"; }
c coinsaga se
c coinsaga dlq ""
c coinsaga dlq list --js
c coinsaga order get ID --ti
c coinsaga --nats-url x order ""
c coinsaga serve --nats-url ""
c coinsaga serve --nats-url x --concurrency 5 --sandbox-l
c coinsaga completion ""
`
		out, err := exec.Command(bash, "-c", probe, "probe", path).CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		want := []string{"serve", "list show replay purge", "--json", "--timeout", "get", "", "--sandbox-listen", "bash zsh fish"}
		if got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !slices.Equal(got, want) {
			t.Errorf("bash completed %q, want %q", got, want)
		}
	})
	t.Run("fish completes commands, subcommands and flags", func(t *testing.T) {
		fish, path := shellWith(t, "fish")
		probe := `source $argv[1]
for l in "coinsaga dlq " "coinsaga dlq list --js" "coinsaga order get ID --ti" "coinsaga serve --nats-url x --sandbox-l"
    complete -C "$l" | string replace -r '\t.*' '' | string join ' '
end
true`
		out, err := exec.Command(fish, "--no-config", "-c", probe, path).CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		want := []string{"list purge replay show", "--json", "--timeout", "--sandbox-listen"}
		if got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !slices.Equal(got, want) {
			t.Errorf("fish completed %q, want %q", got, want)
		}
	})
}
