package sandbox

// The state file: its format, the snapshot of the ledger, bills and SUD
// orders that is written to it, and their restore from it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"
)

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
	Seq        uint64 `json:"seq"`
	OrderID    string `json:"order_id"`
	OutOrderID string `json:"out_order_id"`
	sudOrderFields
	CreatedAt time.Time `json:"created_at"`
	// DoneAt and Fails are the order's execution: when it ends by the
	// sandbox clock, and whether in EXECUTE_FAIL.
	DoneAt time.Time `json:"done_at"`
	Fails  bool      `json:"fails,omitempty"`
	// NotifyPending: the order's notification was scheduled and neither
	// delivered nor given up; it is sent once a notify URL is set again.
	NotifyPending bool `json:"notify_pending,omitempty"`
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
				Seq: o.seq, OrderID: o.OrderID, OutOrderID: o.OutOrderID,
				sudOrderFields: o.sudOrderFields, CreatedAt: o.CreatedAt.UTC(),
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
			OutOrderID: so.OutOrderID, OrderID: so.OrderID, sudOrderFields: so.sudOrderFields, CreatedAt: so.CreatedAt}
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
