package kit

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// childEnv tells a test binary started by StartProcess to run the
// program's main instead of its tests.
const childEnv = "COINSAGA_TEST_MAIN"

// RunAsChild is for a TestMain: in a process StartProcess started it runs
// main with the command line and exits with its code; otherwise it
// returns at once and the tests run. The test binary thus doubles as the
// program's binary, built once with the tests (race detector included),
// so that child-process tests exercise exactly what the program does.
func RunAsChild(main func(args []string) int) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(main(os.Args[1:]))
	}
}

// Process is the program (the test binary, see RunAsChild) running as a
// child process, its standard error kept line by line.
type Process struct {
	t      testing.TB
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string      // every stderr line so far, kept whole: a chatty child must not push a line out before it is waited for
	read   int           // lines WaitLog has looked at
	more   chan struct{} // a line arrived (coalesced)
	exited chan struct{}
	err    error
}

// StartProcess runs the program with args as a separate process; it is
// killed when the test ends if it still runs.
func StartProcess(t testing.TB, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, more: make(chan struct{}, 1), exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), childEnv+"=1")
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// WaitLog waits for a log line after the last one it matched, matching
// re, and returns its submatches.
func (p *Process) WaitLog(re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		for p.read < len(p.lines) {
			line := p.lines[p.read]
			p.read++
			if m := re.FindStringSubmatch(line); m != nil {
				p.mu.Unlock()
				return m
			}
		}
		p.mu.Unlock()
		select {
		case <-p.more:
		case <-p.exited:
			p.mu.Lock()
			unread := p.read < len(p.lines)
			p.mu.Unlock()
			if unread {
				continue // the last lines came with the exit
			}
			p.t.Fatalf("the process exited (%v) before logging %s; stderr:\n%s", p.err, re, p.Output())
		case <-deadline:
			p.t.Fatalf("no log line matching %s within %s; stderr:\n%s", re, timeout, p.Output())
		}
	}
}

// Output returns everything the process wrote to standard error so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lines) == 0 {
		return ""
	}
	return strings.Join(p.lines, "\n") + "\n"
}

// Tail returns the last n lines of standard error.
func (p *Process) Tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines[max(0, len(p.lines)-n):], "\n")
}

// Exited is closed when the process has exited; Err then says how.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is the process's exit error (nil for exit 0), once Exited is closed.
func (p *Process) Err() error {
	<-p.exited
	return p.err
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// WaitExit waits for the process to exit on its own and returns its exit
// error (nil for exit 0); it fails the test if the process still runs
// after timeout.
func (p *Process) WaitExit(timeout time.Duration) error {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.t.Fatalf("the process did not exit within %s:\n%s", timeout, p.Tail(20))
		return nil
	}
}

// Kill ends the process at once, as a crash would.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Stop asks for a graceful shutdown and checks it exits 0 within timeout.
func (p *Process) Stop(timeout time.Duration) {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			p.t.Errorf("the process did not exit cleanly on SIGTERM: %v\n%s", p.err, p.Output())
		}
	case <-time.After(timeout):
		p.t.Fatalf("the process did not stop within %s of SIGTERM", timeout)
	}
}

// ReserveAddr returns a loopback address whose port stays reserved for
// the test: a socket is bound to it but does not listen, so connecting
// is refused (nobody answers there) and no other socket gets the port
// from the kernel, yet a child process can listen on it (both sockets
// set SO_REUSEADDR, and only one listens). It replaces picking a free
// port and releasing it, which left a moment for another process to take
// the port before the child bound it.
func ReserveAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}
