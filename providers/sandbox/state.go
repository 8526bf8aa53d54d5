package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Persistence. With Config.StateFile set (Open), the sandbox keeps its
// ledger in that file: accounts, bills (live and expired), SUD orders with
// their execution (when it ends, how, and whether its notification is still
// to be sent), the clock offset and the sequences that keep generated
// numbers unique. It loads the file when it opens and writes it after every
// change, at most every SaveInterval by one goroutine, and once more on
// Close. Each write is a whole new file: a temporary one beside it,
// fsynced, renamed over the old one, so a reader finds the old state or the
// new one, never half of either.
//
// This is a fake for development: a crash (SIGKILL, power loss) may lose
// the last SaveInterval of sandbox state. The saga stays safe when it
// does, because the sandbox then behaves like a provider that lost a
// bill: a cancel of a forgotten bill is "not found" (the order fails, as
// nothing is charged), and a pay under a forgotten bill number charges
// again, a difference between the sandbox's books and the saga's, never a
// second charge the saga made. Faults are not kept: they are test
// settings, and a restarted sandbox starts without any.

// SaveInterval is the most often a sandbox with a state file writes it.
const SaveInterval = 200 * time.Millisecond

// ErrBadState is wrapped by the error of Open for a state file that cannot
// be read as a sandbox state.
var ErrBadState = errors.New("sandbox: damaged state file")

// persister keeps a sandbox's state file up to date.
type persister struct {
	path string
	// mu is held shared by every change to the sandbox's state and
	// exclusively by a snapshot, so that a snapshot never sees half of
	// one (a bill without its debit).
	mu    sync.RWMutex
	dirty chan struct{} // capacity 1: a change since the last snapshot
	stop  chan struct{}
	done  chan struct{} // the save loop has returned

	saveMu  sync.Mutex // one write at a time
	failing atomic.Bool
}

func (p *persister) markDirty() {
	select {
	case p.dirty <- struct{}{}:
	default:
	}
}

// changing marks the start of a change to the sandbox's state; the
// function it returns marks its end. Without a state file it costs nothing.
func (s *Sandbox) changing() (done func()) {
	p := s.persist
	if p == nil {
		return noChange
	}
	p.mu.RLock()
	return p.changed
}

func noChange() {}

func (p *persister) changed() {
	p.mu.RUnlock()
	p.markDirty()
}

// Open returns a Sandbox like New and, when cfg.StateFile is set, loads
// its state from that file (a missing file is a new, empty sandbox) and
// keeps the file up to date from then on; Close writes it a last time. A
// file that is not a sandbox state is refused with an error wrapping
// ErrBadState, naming the file: nothing is overwritten.
func Open(cfg Config) (*Sandbox, error) {
	s := newSandbox(cfg)
	if s.cfg.StateFile == "" {
		return s, nil
	}
	path := s.cfg.StateFile
	if err := s.load(path); err != nil {
		return nil, err
	}
	s.persist = &persister{path: path, dirty: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	s.sud.notify.track()
	// A first write at once: a state file that cannot be written is an
	// error now, not a log line after the first order.
	if err := s.save(); err != nil {
		return nil, err
	}
	go s.saveLoop()
	return s, nil
}

// Flush writes the state file now. Without a state file it does nothing.
func (s *Sandbox) Flush() error {
	if s.persist == nil {
		return nil
	}
	return s.save()
}

// Close stops the sandbox's background work: it sends no more SUD
// notifications and, with a state file, writes that file a last time
// (notifications still pending are in it, to be sent by the next sandbox
// that opens it). Call it once the sandbox serves no more requests. Later
// calls return the first one's result.
func (s *Sandbox) Close() error {
	s.closeOnce.Do(func() {
		s.sud.notify.close()
		if p := s.persist; p != nil {
			close(p.stop)
			<-p.done
			s.closeErr = s.save()
		}
	})
	return s.closeErr
}

// saveLoop writes the state after each change, at most every SaveInterval.
func (s *Sandbox) saveLoop() {
	p := s.persist
	defer close(p.done)
	t := time.NewTimer(SaveInterval)
	t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-p.dirty:
		}
		if err := s.save(); err != nil {
			if !p.failing.Swap(true) {
				s.cfg.Logger.Error("sandbox: cannot write its state file; retrying", "file", p.path, "err", err)
			}
			p.markDirty() // try again after the interval
		} else if p.failing.Swap(false) {
			s.cfg.Logger.Info("sandbox: state file written again", "file", p.path)
		}
		t.Reset(SaveInterval)
		select {
		case <-p.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// save writes a snapshot of the state to the state file, atomically.
func (s *Sandbox) save() error {
	p := s.persist
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	st := s.snapshot()
	data, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return fmt.Errorf("sandbox state %s: encode: %w", p.path, err)
	}
	if err := writeFileAtomic(p.path, append(data, '\n')); err != nil {
		return fmt.Errorf("sandbox state %s: %w", p.path, err)
	}
	return nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// folder, fsynced, renamed over path, and the folder fsynced so that the
// rename itself survives a crash.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
