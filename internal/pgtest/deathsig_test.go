package pgtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAKilledTestBinaryLeavesNoServerAndItsDirectoryIsSwept SIGKILLs a
// child test binary that holds a server: the server must die with it
// (parent-death signal), and the next start must remove its directory.
func TestAKilledTestBinaryLeavesNoServerAndItsDirectoryIsSwept(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "kill" {
		DB(t)
		fmt.Printf("READY %s %d\n", srv.dir, srv.cmd.Process.Pid)
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until killed
		return
	}
	if os.Getenv("PGTEST_CHILD") != "" || os.Getenv(EnvURL) != "" {
		t.Skip("needs a server of the binary's own")
	}
	if _, err := os.Stat(BinDir + "/postgres"); err != nil {
		t.Skip("PostgreSQL 15 is not installed")
	}
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run", "^TestAKilledTestBinaryLeavesNoServerAndItsDirectoryIsSwept$")
	cmd.Env = append(os.Environ(), "PGTEST_CHILD=kill")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("child: %v (%q)", err, line)
	}
	var dir string
	var pid int
	if _, err := fmt.Sscanf(strings.TrimPrefix(line, "READY "), "%s %d", &dir, &pid); err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("child said %q: %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for running(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("postgres (pid %d) still runs 15 s after its test binary was killed", pid)
		}
		<-tick.C
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the killed binary's directory %s is already gone: %v", dir, err)
	}
	sweep()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory %s survived the sweep: %v", dir, err)
	}
}

// running reports a live process; a zombie nobody reaped yet has ended.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
