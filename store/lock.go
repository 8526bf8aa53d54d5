package store

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// fileLock is an exclusive flock on a file next to the database. SQLite's
// own locks only serialise transactions; two coinsaga processes on one
// database would each run the saga for the same orders, so the second is
// refused at open instead.
type fileLock struct {
	f *os.File
}

// lockFile takes the lock at path without waiting. The kernel drops a
// flock when its holder dies, so a crashed process never leaves a stale
// lock behind.
func lockFile(path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	if err := flock(f); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid := strings.TrimSpace(string(b)); pid != "" {
				holder = " (pid " + pid + ")"
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: lock file %s is held%s; stop that process or give this one another database",
				ErrLocked, path, holder)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is only a hint for the message above; the flock is the lock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &fileLock{f: f}, nil
}

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// release drops the lock. The file stays: removing it would let a process
// that opened the old inode and one that creates a new file both "hold" it.
func (l *fileLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}

// LockFile takes the same lock on path for a store that has no file of its
// own (PostgreSQL): serve holds it on its data dir, because the prefix
// lease lets the same host and data dir take over at once on the ground
// that whoever held them before is dead. release drops it.
func LockFile(path string) (release func(), err error) {
	l, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	return l.release, nil
}
