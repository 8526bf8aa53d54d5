package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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

const (
	stateFormat  = "coinsaga-sandbox-state"
	stateVersion = 1
)

// state is the JSON of a state file.
type state struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	SavedAt time.Time `json:"saved_at"` // sandbox clock, for the reader
	// ClockOffsetNS is how far AdvanceClock had moved the clock.
	ClockOffsetNS int64 `json:"clock_offset_ns"`
	// MOGSBillSeq and LedgerSeq keep generated bill numbers and the order
	// of bills made at one instant.
	MOGSBillSeq  uint64         `json:"mogs_bill_seq"`
	LedgerSeq    uint64         `json:"ledger_seq"`
	Accounts     []stateAccount `json:"accounts"`
	Bills        []stateBill    `json:"bills"`         // inside their idempotency window
	ExpiredBills []Bill         `json:"expired_bills"` // kept for the admin bill list
	SUD          stateSUD       `json:"sud"`
}

type stateAccount struct {
	Provider string `json:"provider"`
	AppID    string `json:"appid"`
	OpenID   string `json:"openid"`
	AccountView
	// Hidden are debits balance reads do not show yet.
	Hidden []stateHidden `json:"hidden,omitempty"`
}

type stateHidden struct {
	BillNo string    `json:"bill_no"`
	Until  time.Time `json:"until"`
	Amt    int64     `json:"amt"`
	Gen    int64     `json:"gen"`
}

type stateBill struct {
	Bill
	Seq uint64 `json:"seq"`
}

type stateSUD struct {
	Base   uint64          `json:"base"`
	Seq    uint64          `json:"seq"`
	Orders []stateSUDOrder `json:"orders"`
}

type stateSUDOrder struct {
	Seq        uint64          `json:"seq"`
	OrderID    string          `json:"order_id"`
	OutOrderID string          `json:"out_order_id"`
	OutGroupID string          `json:"out_group_id,omitempty"`
	MgID       string          `json:"mg_id"`
	RoomID     string          `json:"room_id"`
	Cmd        string          `json:"cmd"`
	FromUID    string          `json:"from_uid"`
	ToUID      string          `json:"to_uid"`
	Value      int32           `json:"value"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	// DoneAt and Fails are the order's execution: when it ends by the
	// sandbox clock, and whether in EXECUTE_FAIL.
	DoneAt time.Time `json:"done_at"`
	Fails  bool      `json:"fails,omitempty"`
	// NotifyPending: the order's notification was scheduled and neither
	// delivered nor given up; it is sent once a notify URL is set again.
	NotifyPending bool `json:"notify_pending,omitempty"`
}

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

// snapshot copies the state, with every change held off while it does.
func (s *Sandbox) snapshot() state {
	p := s.persist
	p.mu.Lock()
	defer p.mu.Unlock()
	st := state{
		Format: stateFormat, Version: stateVersion, SavedAt: s.now().UTC(),
		ClockOffsetNS: s.clockOffset.Load(), MOGSBillSeq: s.billSeq.Load(), LedgerSeq: s.ledger.seq.Load(),
		Accounts: []stateAccount{}, Bills: []stateBill{}, ExpiredBills: []Bill{},
		SUD: stateSUD{Base: s.sud.base, Seq: s.sud.seq.Load(), Orders: []stateSUDOrder{}},
	}
	l := s.ledger
	for i := range l.accts {
		sh := &l.accts[i]
		sh.mu.Lock()
		for _, a := range sh.m {
			sa := stateAccount{Provider: a.prov.String(), AppID: a.appid, OpenID: a.openid, AccountView: a.view()}
			for _, h := range a.hidden {
				sa.Hidden = append(sa.Hidden, stateHidden{BillNo: h.billNo, Until: time.Unix(0, h.until).UTC(), Amt: h.amt, Gen: h.gen})
			}
			st.Accounts = append(st.Accounts, sa)
		}
		sh.mu.Unlock()
	}
	for i := range l.bills {
		bs := &l.bills[i]
		bs.mu.Lock()
		st.ExpiredBills = append(st.ExpiredBills, bs.expired...)
		for k, b := range bs.m {
			st.Bills = append(st.Bills, stateBill{Bill: b.public(k.billNo), Seq: b.seq})
		}
		bs.mu.Unlock()
	}
	pending := s.sud.notify.pendingOrders()
	for i := range s.sud.outs {
		sh := &s.sud.outs[i]
		sh.mu.Lock()
		for _, o := range sh.byID {
			_, np := pending[o]
			st.SUD.Orders = append(st.SUD.Orders, stateSUDOrder{
				Seq: o.seq, OrderID: o.OrderID, OutOrderID: o.OutOrderID, OutGroupID: o.OutGroupID,
				MgID: o.MgID, RoomID: o.RoomID, Cmd: o.Cmd, FromUID: o.FromUID, ToUID: o.ToUID,
				Value: o.Value, Payload: o.Payload, CreatedAt: o.CreatedAt.UTC(),
				DoneAt: o.doneAt.UTC(), Fails: o.fails, NotifyPending: np,
			})
		}
		sh.mu.Unlock()
	}
	// A stable order, so that two saves of one state are the same file.
	sort.Slice(st.Accounts, func(i, j int) bool {
		a, b := st.Accounts[i], st.Accounts[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		if a.AppID != b.AppID {
			return a.AppID < b.AppID
		}
		return a.OpenID < b.OpenID
	})
	sort.Slice(st.Bills, func(i, j int) bool { return st.Bills[i].Seq < st.Bills[j].Seq })
	sort.SliceStable(st.ExpiredBills, func(i, j int) bool { return st.ExpiredBills[i].At.Before(st.ExpiredBills[j].At) })
	sort.Slice(st.SUD.Orders, func(i, j int) bool { return st.SUD.Orders[i].Seq < st.SUD.Orders[j].Seq })
	return st
}

// load reads the state file into a new sandbox; a missing file leaves it
// empty.
func (s *Sandbox) load(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sandbox state %s: %w", path, err)
	}
	if err := s.restore(data); err != nil {
		return fmt.Errorf("%w %s: %v. It holds the in-process sandbox's accounts, bills and SUD orders: "+
			"move it away to start the sandbox empty (orders still in flight then fail or are compensated against the bills it forgot), "+
			"or run `make clean` to start over with an empty data dir", ErrBadState, path, err)
	}
	return nil
}

// restore fills a new, empty sandbox from a state file's bytes.
func (s *Sandbox) restore(data []byte) error {
	var st state
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return fmt.Errorf("not JSON of a sandbox state: %v", err)
	}
	if dec.More() {
		return errors.New("data after the state")
	}
	if st.Format != stateFormat {
		return fmt.Errorf("format %q, want %q", st.Format, stateFormat)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("version %d, this coinsaga reads version %d", st.Version, stateVersion)
	}
	if st.ClockOffsetNS < 0 {
		return fmt.Errorf("clock_offset_ns %d is negative: the clock only moves forward", st.ClockOffsetNS)
	}
	l := s.ledger
	for i, sa := range st.Accounts {
		p, ok := parseProvider(sa.Provider)
		if !ok {
			return fmt.Errorf("accounts[%d]: provider %q", i, sa.Provider)
		}
		if sa.OpenID == "" || sa.AppID == "" {
			return fmt.Errorf("accounts[%d]: appid and openid are required", i)
		}
		k := acctKey{p, sa.AppID, sa.OpenID}
		sh := l.acctShard(k)
		if sh.m[k] != nil {
			return fmt.Errorf("accounts[%d]: %s/%s/%s appears twice", i, sa.Provider, sa.AppID, sa.OpenID)
		}
		v := sa.AccountView
		a := &account{prov: p, appid: sa.AppID, openid: sa.OpenID, balance: v.Balance, gen: v.GenBalance,
			saveAmt: v.SaveAmt, saveSum: v.SaveSum, costSum: v.CostSum, presentSums: v.PresentSums}
		for _, h := range sa.Hidden {
			a.hidden = append(a.hidden, hiddenDebit{billNo: h.BillNo, until: h.Until.UnixNano(), amt: h.Amt, gen: h.Gen})
		}
		sh.m[k] = a
	}
	for i, sb := range st.Bills {
		b := sb.Bill
		p, ok := parseProvider(b.Provider)
		if !ok {
			return fmt.Errorf("bills[%d]: provider %q", i, b.Provider)
		}
		var kind billKind
		switch b.Kind {
		case kindPay.String():
			kind = kindPay
		case kindPresent.String():
			kind = kindPresent
		default:
			return fmt.Errorf("bills[%d]: kind %q", i, b.Kind)
		}
		if b.BillNo == "" {
			return fmt.Errorf("bills[%d]: bill_no is empty", i)
		}
		ak := acctKey{p, b.AppID, b.OpenID}
		a := l.acctShard(ak).m[ak]
		if a == nil {
			return fmt.Errorf("bills[%d] (%s): its account %s/%s/%s is not in the file", i, b.BillNo, b.Provider, b.AppID, b.OpenID)
		}
		bk := billKey{p, a.appid, b.BillNo}
		bs := l.billShard(p, a.appid, b.BillNo)
		if _, dup := bs.m[bk]; dup {
			return fmt.Errorf("bills[%d]: bill %s of %s/%s appears twice", i, b.BillNo, b.Provider, b.AppID)
		}
		bs.m[bk] = bill{acct: a, amt: b.Amt, usedGen: b.UsedGenAmt, at: b.At.UnixNano(), seq: sb.Seq, kind: kind, cancelled: b.Cancelled}
		if sb.Seq > st.LedgerSeq {
			return fmt.Errorf("bills[%d]: seq %d beyond ledger_seq %d", i, sb.Seq, st.LedgerSeq)
		}
	}
	for i, b := range st.ExpiredBills {
		p, ok := parseProvider(b.Provider)
		if !ok {
			return fmt.Errorf("expired_bills[%d]: provider %q", i, b.Provider)
		}
		bs := l.billShard(p, b.AppID, b.BillNo)
		bs.expired = append(bs.expired, b)
	}
	l.seq.Store(st.LedgerSeq)

	book := s.sud
	for i, so := range st.SUD.Orders {
		if so.OutOrderID == "" || so.OrderID == "" {
			return fmt.Errorf("sud.orders[%d]: out_order_id and order_id are required", i)
		}
		if so.Seq == 0 || so.Seq > st.SUD.Seq {
			return fmt.Errorf("sud.orders[%d] (%s): seq %d not in 1..%d", i, so.OutOrderID, so.Seq, st.SUD.Seq)
		}
		if len(so.Payload) > 0 {
			// The file is indented for a reader; the order keeps the
			// compact bytes create_order stored.
			var c bytes.Buffer
			if err := json.Compact(&c, so.Payload); err != nil {
				return fmt.Errorf("sud.orders[%d]: payload: %v", i, err)
			}
			so.Payload = c.Bytes()
		}
		o := &sudOrder{seq: so.Seq, doneAt: so.DoneAt, fails: so.Fails,
			OutOrderID: so.OutOrderID, OrderID: so.OrderID, OutGroupID: so.OutGroupID, MgID: so.MgID, RoomID: so.RoomID,
			Cmd: so.Cmd, FromUID: so.FromUID, ToUID: so.ToUID, Value: so.Value, Payload: so.Payload, CreatedAt: so.CreatedAt}
		osh, ish := book.shard(&book.outs, o.OutOrderID), book.shard(&book.ids, o.OrderID)
		if _, dup := osh.byID[o.OutOrderID]; dup {
			return fmt.Errorf("sud.orders[%d]: out_order_id %s appears twice", i, o.OutOrderID)
		}
		if _, dup := ish.byID[o.OrderID]; dup {
			return fmt.Errorf("sud.orders[%d]: order_id %s appears twice", i, o.OrderID)
		}
		osh.byID[o.OutOrderID], ish.byID[o.OrderID] = o, o
		if so.NotifyPending {
			book.notify.restored = append(book.notify.restored, o)
		}
	}
	if len(st.SUD.Orders) > 0 || st.SUD.Base != 0 {
		// Order ids go on from where they were, so that a restarted
		// sandbox never hands out an id it already gave.
		book.base = st.SUD.Base
		book.seq.Store(st.SUD.Seq)
	}
	s.clockOffset.Store(st.ClockOffsetNS)
	s.billSeq.Store(max(s.billSeq.Load(), st.MOGSBillSeq))
	return nil
}
