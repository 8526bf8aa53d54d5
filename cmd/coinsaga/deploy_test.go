package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"gopkg.in/yaml.v3"
)

// No Docker engine runs here, so deploy/compose.yaml is checked as YAML
// against what it must agree with: the NATS configs beside it (the ones
// the cluster test runs), serve's flags, go.mod's nats-server version.

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

func TestDeployCompose(t *testing.T) {
	t.Parallel()
	var c composeFile
	// yaml.v3 resolves the file's anchors and merge keys (<<: *worker).
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "deploy/compose.yaml")), &c); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	natsVersion := regexp.MustCompile(`(?m)^\s*github\.com/nats-io/nats-server/v2 v(\S+)`).FindStringSubmatch(readRepoFile(t, "go.mod"))
	if natsVersion == nil {
		t.Fatal("go.mod does not require github.com/nats-io/nats-server/v2")
	}
	nodes := []string{"n1", "n2", "n3"}
	confs := map[string]*server.Options{}
	for i, name := range nodes {
		path := filepath.Join("..", "..", "deploy", "nats", fmt.Sprintf("node-%d.conf", i+1))
		opts, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		confs[name] = opts
	}
	mounted := func(s composeService, target string) (string, bool) {
		for _, v := range s.Volumes {
			if src, dst, ok := strings.Cut(v, ":"); ok && strings.TrimSuffix(dst, ":ro") == target {
				return src, true
			}
		}
		return "", false
	}

	t.Run("each NATS node runs its config file of deploy/nats, on go.mod's nats-server, its store on a volume", func(t *testing.T) {
		for i, name := range nodes {
			s, ok := c.Services[name]
			if !ok {
				t.Fatalf("no service %s", name)
			}
			if want := "nats:" + natsVersion[1] + "-alpine"; s.Image != want {
				t.Errorf("%s runs %s, want %s: the version the cluster test runs", name, s.Image, want)
			}
			src, ok := mounted(s, "/etc/nats/node.conf")
			if want := fmt.Sprintf("./nats/node-%d.conf", i+1); !ok || src != want {
				t.Errorf("%s mounts %q as /etc/nats/node.conf, want %s", name, src, want)
			}
			if !slices.Equal(s.Command, []string{"-c", "/etc/nats/node.conf", "-sd", "/data/jetstream"}) {
				t.Errorf("%s command %v, want its config and its store under the /data volume", name, s.Command)
			}
			vol, ok := mounted(s, "/data")
			if _, declared := c.Volumes[vol]; !ok || !declared {
				t.Errorf("%s keeps /data on %q, not a declared volume: a restart would lose its replicas", name, vol)
			}
			if s.Healthcheck == nil || !strings.Contains(strings.Join(s.Healthcheck.Test, " "), "/healthz") {
				t.Errorf("%s has no /healthz healthcheck: workers would start before JetStream is current", name)
			}
		}
	})

	t.Run("the NATS configs make one cluster of the compose services and differ only in server_name", func(t *testing.T) {
		text := map[string]string{}
		for i, name := range nodes {
			o := confs[name]
			if o.ServerName != name {
				t.Errorf("node-%d.conf: server_name %q, want %q", i+1, o.ServerName, name)
			}
			if !o.JetStream {
				t.Errorf("node-%d.conf: JetStream is off", i+1)
			}
			if o.StoreDir != "" {
				t.Errorf("node-%d.conf sets store_dir %s: then -sd cannot override it and the cluster test cannot run the file", i+1, o.StoreDir)
			}
			if o.Cluster.Name != confs["n1"].Cluster.Name || o.Cluster.Name == "" {
				t.Errorf("node-%d.conf: cluster name %q, want one shared name", i+1, o.Cluster.Name)
			}
			var routes []string
			for _, r := range o.Routes {
				routes = append(routes, r.Host)
			}
			var want []string
			for _, n := range nodes {
				want = append(want, net.JoinHostPort(n, strconv.Itoa(o.Cluster.Port)))
			}
			if !slices.Equal(routes, want) {
				t.Errorf("node-%d.conf: routes %v, want every node's cluster port %v", i+1, routes, want)
			}
			raw := readRepoFile(t, fmt.Sprintf("deploy/nats/node-%d.conf", i+1))
			raw = strings.Replace(raw, "server_name: "+name+"\n", "server_name: nX\n", 1)
			text[name] = strings.Replace(raw, "NATS node "+name+" ", "NATS node nX ", 1)
		}
		if text["n1"] != text["n2"] || text["n1"] != text["n3"] {
			t.Error("node-1.conf, node-2.conf and node-3.conf differ beyond the node's name")
		}
	})

	t.Run("PostgreSQL 15 commits synchronously", func(t *testing.T) {
		pg, ok := c.Services["postgres"]
		if !ok {
			t.Fatal("no service postgres")
		}
		if !strings.HasPrefix(pg.Image, "postgres:15") {
			t.Errorf("postgres image %s, want postgres:15", pg.Image)
		}
		if !slices.Contains(pg.Command, "synchronous_commit=on") {
			t.Errorf("postgres command %v does not set synchronous_commit=on", pg.Command)
		}
	})

	t.Run("three workers run serve on PostgreSQL, all three NATS nodes and the sandbox, streams R3", func(t *testing.T) {
		sb, ok := c.Services["sandbox"]
		if !ok || len(sb.Command) < 1 || sb.Command[0] != "sandbox" {
			t.Fatalf("no sandbox service running `coinsaga sandbox`: %+v", sb)
		}
		sbListen := ""
		for i, a := range sb.Command {
			if a == "--listen" && i+1 < len(sb.Command) {
				sbListen = sb.Command[i+1]
			}
		}
		_, sbPort, err := net.SplitHostPort(sbListen)
		if err != nil {
			t.Fatalf("sandbox --listen %q: %v", sbListen, err)
		}
		pg := c.Services["postgres"]
		dataVolumes := map[string]bool{}
		for _, name := range []string{"w1", "w2", "w3"} {
			w, ok := c.Services[name]
			if !ok {
				t.Fatalf("no service %s", name)
			}
			if len(w.Command) == 0 || w.Command[0] != "serve" {
				t.Fatalf("%s command %v does not start with serve", name, w.Command)
			}
			var f serveFlags
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f.register(fs)
			if err := fs.Parse(w.Command[1:]); err != nil || fs.NArg() != 0 {
				t.Fatalf("%s: serve refuses %v: %v %v", name, w.Command[1:], err, fs.Args())
			}
			get := func(flag string) string { return fs.Lookup(flag).Value.String() }
			if get("stream-replicas") != "3" {
				t.Errorf("%s: --stream-replicas %s, want 3 on the 3-node cluster", name, get("stream-replicas"))
			}
			var urls []string
			for _, n := range nodes {
				urls = append(urls, fmt.Sprintf("nats://%s:%d", n, confs[n].Port))
			}
			if got := get("nats-url"); got != strings.Join(urls, ",") {
				t.Errorf("%s: --nats-url %s, want every node at its config's client port: %s", name, got, strings.Join(urls, ","))
			}
			if want := "http://sandbox:" + sbPort; get("sandbox-url") != want {
				t.Errorf("%s: --sandbox-url %s, want %s", name, get("sandbox-url"), want)
			}
			db, err := url.Parse(w.Environment["COINSAGA_DATABASE_URL"])
			if err != nil || db.Scheme != "postgres" || db.Hostname() != "postgres" {
				t.Errorf("%s: COINSAGA_DATABASE_URL %q is not the postgres service", name, w.Environment["COINSAGA_DATABASE_URL"])
			} else if u := db.User.Username(); u != pg.Environment["POSTGRES_USER"] || strings.TrimPrefix(db.Path, "/") != pg.Environment["POSTGRES_DB"] {
				t.Errorf("%s: database URL user %s db %s, but postgres creates %s and %s", name, u, db.Path, pg.Environment["POSTGRES_USER"], pg.Environment["POSTGRES_DB"])
			}
			if get("database-url") != "" {
				t.Errorf("%s passes --database-url on the command line: it holds a password, use COINSAGA_DATABASE_URL", name)
			}
			vol, ok := mounted(w, get("data-dir"))
			if !ok || dataVolumes[vol] {
				t.Errorf("%s: --data-dir %s is not on a volume of its own (%q): it holds the worker's lock file", name, get("data-dir"), vol)
			}
			dataVolumes[vol] = true
			for _, dep := range append([]string{"postgres"}, nodes...) {
				if w.DependsOn[dep].Condition != "service_healthy" {
					t.Errorf("%s does not wait for %s to be healthy", name, dep)
				}
			}
		}
	})

	t.Run("every named volume is declared", func(t *testing.T) {
		for name, s := range c.Services {
			for _, v := range s.Volumes {
				src, _, _ := strings.Cut(v, ":")
				if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
					if _, err := os.Stat(filepath.Join("..", "..", "deploy", src)); err != nil {
						t.Errorf("%s mounts %s: %v", name, src, err)
					}
					continue
				}
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("%s uses volume %s, which is not declared", name, src)
				}
			}
		}
	})
}
