// Package pgtest gives tests a throwaway PostgreSQL database, with no
// Docker: one server per test binary, started on first use from the
// PostgreSQL 15 binaries (Debian package postgresql-15), and one fresh
// database per test.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		url := pgtest.DB(t) // skips when PostgreSQL is not installed
//		...
//	}
//
// With COINSAGA_TEST_DATABASE_URL set, the databases are created on that
// server instead (its user must be allowed to CREATE DATABASE). Without
// PostgreSQL the tests skip with one line naming the package to install;
// under CI (CI=true) they fail instead, so that CI cannot pass by running
// nothing.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// BinDir is where Debian's postgresql-15 puts initdb and postgres.
const BinDir = "/usr/lib/postgresql/15/bin"

// binDir is BinDir, except in the test of what happens without it.
var binDir = BinDir

// EnvURL names a server to use instead of starting one.
const EnvURL = "COINSAGA_TEST_DATABASE_URL"

// dirPrefix names the server directories in os.TempDir, so that a later
// run can find and remove the ones a killed test binary left behind.
const dirPrefix = "coinsaga-pgtest-"

var (
	once    sync.Once
	srv     *server // nil when none could be started
	srvErr  error   // why not
	skipMsg string  // set instead of srvErr when PostgreSQL is not installed
	dbSeq   atomic.Int64
)

// server is the one PostgreSQL of this test binary, or the external one.
type server struct {
	admin   *sql.DB // to the maintenance database, for CREATE/DROP DATABASE
	baseURL url.URL // the server; Path is replaced per database
	prefix  string  // database names: prefix + sequence number
	dir     string  // our own server's directory; "" for an external server
	cmd     *exec.Cmd
	exited  chan struct{}
}

// DB creates an empty database for t, drops it when t ends, and returns
// its URL (postgres://...). It skips t when PostgreSQL is not installed,
// or fails it under CI.
func DB(t testing.TB) string {
	t.Helper()
	once.Do(start)
	if skipMsg != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %s", skipMsg)
		}
		t.Skip(skipMsg)
	}
	if srvErr != nil {
		t.Fatalf("pgtest: %v", srvErr)
	}
	name := fmt.Sprintf("%s%d", srv.prefix, dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// FILE_COPY copies template0's files instead of WAL-logging every
	// block: 55-130 ms a database here, several times faster.
	if _, err := srv.admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 STRATEGY FILE_COPY"); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE ends any connection a test leaked instead of failing.
		if _, err := srv.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u := srv.baseURL
	u.Path = "/" + name
	return u.String()
}

// Main runs the tests of a package and then stops the server DB started,
// removing its directory. Use it from TestMain; without it the server
// dies with the test binary (parent-death signal) and leaves its
// directory for the next run to sweep.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop shuts the server down (fast shutdown: open sessions are ended)
// and removes its directory. DB must not be called afterwards.
func Stop() {
	s := srv
	if s == nil {
		return
	}
	_ = s.admin.Close()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	_ = os.RemoveAll(s.dir)
}

func start() {
	if raw := os.Getenv(EnvURL); raw != "" {
		srv, srvErr = external(raw)
		return
	}
	postgres := filepath.Join(binDir, "postgres")
	if _, err := os.Stat(postgres); err != nil {
		skipMsg = fmt.Sprintf("PostgreSQL 15 is not installed (%s missing): apt-get install postgresql-15, or set %s", postgres, EnvURL)
		return
	}
	sweep()
	srv, srvErr = launch()
}

// external uses the server at raw: databases are made on it with names
// unique to this process, so that parallel test binaries do not collide.
func external(raw string) (*server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvURL, err)
	}
	admin, err := sql.Open("pgx", raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvURL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		return nil, fmt.Errorf("%s: %w", EnvURL, err)
	}
	return &server{admin: admin, baseURL: *u, prefix: fmt.Sprintf("coinsaga_test_%d_", os.Getpid())}, nil
}

// launch runs initdb and postgres in a new directory. The server listens
// only on a unix socket in that directory, runs without fsync (a test
// database need not survive a power cut) and dies with this process.
func launch() (_ *server, err error) {
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	cred, err := credential(dir)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(binDir, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()

	cmd := exec.Command(filepath.Join(binDir, "postgres"), "-D", data, "-k", dir,
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=300")
	cmd.Stdout, cmd.Stderr = logf, logf
	// SIGQUIT is PostgreSQL's immediate shutdown: the postmaster ends its
	// backends too, so a killed test binary leaves no server running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	s := &server{dir: dir, cmd: cmd, exited: make(chan struct{}), prefix: "t"}
	started := make(chan error, 1)
	// The parent-death signal fires when the thread that started the
	// child exits, not the process: keep that thread for the child's life.
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(s.exited)
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(s.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s.baseURL = url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/postgres",
		RawQuery: url.Values{"host": {dir}, "sslmode": {"disable"}}.Encode()}
	admin, err := sql.Open("pgx", s.baseURL.String())
	if err != nil {
		stopNow(s)
		return nil, err
	}
	s.admin = admin
	if err := waitReady(s, filepath.Join(dir, "postgres.log")); err != nil {
		admin.Close()
		stopNow(s)
		return nil, err
	}
	return s, nil
}

func stopNow(s *server) {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// waitReady waits until the server takes connections or exits.
func waitReady(s *server, logPath string) error {
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := s.admin.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited at start:\n%s", log)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after 30 s: %w", err)
		}
	}
}

// credential is who runs the server: PostgreSQL refuses to run as root,
// so root runs it as the postgres user and hands it dir; anyone else runs
// it as themselves.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses root: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user postgres: %w", err)
	}
	// MkdirTemp makes dir 0700 for root; t.TempDir's parent would be
	// unreachable for postgres altogether, hence a directory of our own.
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	if err := os.Chown(filepath.Join(dir, "owner.pid"), uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// sweep removes the directories of servers whose test binary is gone (a
// SIGKILLed binary cannot clean up; its server died with it).
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			// No owner written yet: a run starting right now, or one that
			// died in its first instant. Leave it unless it is old.
			if fi, serr := os.Stat(d); serr == nil && time.Since(fi.ModTime()) > time.Hour {
				_ = os.RemoveAll(d)
			}
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || !alive(pid) {
			_ = os.RemoveAll(d)
		}
	}
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
