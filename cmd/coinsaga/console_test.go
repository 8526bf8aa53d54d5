package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestServeRefusesAConsoleBeyondLoopbackWithoutAToken(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	_, stderr, code := runCLI(t, context.Background(), "serve", "--sandbox", "--data-dir", dataDir,
		"--nats-listen", "127.0.0.1:0", "--http-listen", "0.0.0.0:0", "--sandbox-listen", "127.0.0.1:0")
	oneLine(t, stderr, code, 1, "coinsaga serve: --http-listen 0.0.0.0:0 reaches beyond loopback and the console has no token: give --console-token NAME:SECRET")
	if _, err := os.Stat(filepath.Join(dataDir, "coinsaga.db")); err == nil {
		t.Error("a store was created although serve could not start")
	}
}

func TestTheImagesCommandPassesTheConsoleCheck(t *testing.T) {
	t.Parallel()
	stages := dockerStages(parseDockerfile(t, readRepoFile(t, "Dockerfile")))
	cmds := find(stages[len(stages)-1], "CMD")
	if len(cmds) != 1 {
		t.Fatalf("%d CMD lines", len(cmds))
	}
	args := execForm(t, cmds[0])
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatal(err)
	}
	// The image listens on 0.0.0.0 and carries no secret, so its console
	// must be off (or given a token), or the container would not start.
	if err := f.console.Check(f.httpListen); err != nil {
		t.Fatalf("CMD %v: %v", args, err)
	}
}
