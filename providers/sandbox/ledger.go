package sandbox

import (
	"hash/maphash"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// billTTL is how long a bill_no stays an idempotency key (MOGS seed: 48 h).
const billTTL = 48 * time.Hour

// maxBillNo is the longest bill number either provider accepts.
const maxBillNo = 63

// billNoProblem says why s cannot be a MOGS or Midas bill number, "" when it
// can: 1 to 63 characters of [0-9A-Za-z_-], not starting with "_"
// (providers.md, Learned since: bill numbers; WeChat mini-game midas's rule,
// which MOGS shares with its field names and Midas is assumed to follow).
// The sandbox has its own copy of the rule so that it cross-checks the
// clients' (providers.BillNoProblem).
func billNoProblem(s string) string {
	if s == "" {
		return "is empty"
	}
	if len(s) > maxBillNo {
		return "is longer than 63 characters"
	}
	if s[0] == '_' {
		return "starts with _"
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_', c == '-':
		default:
			return "may hold only 0-9 A-Z a-z _ -"
		}
	}
	return ""
}

// nShards spreads accounts and bills over independent mutexes, so calls for
// different players rarely contend.
const nShards = 256

type provider uint8

const (
	provMOGS provider = iota + 1
	provMidas
)

func parseProvider(s string) (provider, bool) {
	switch s {
	case "mogs":
		return provMOGS, true
	case "midas":
		return provMidas, true
	}
	return 0, false
}

func (p provider) String() string {
	switch p {
	case provMOGS:
		return "mogs"
	case provMidas:
		return "midas"
	}
	return "unknown"
}

type acctKey struct {
	prov   provider
	appid  string
	openid string
}

// account is the true state of a coin account. hidden lists debits that
// balance reads must not show yet (visibility_delay_ms).
type account struct {
	prov          provider
	appid, openid string

	balance, gen, saveAmt, saveSum, costSum, presentSums int64

	hidden []hiddenDebit
}

type hiddenDebit struct {
	billNo   string
	until    int64 // unix nanoseconds at which the debit shows
	amt, gen int64
}

type billKind uint8

const (
	kindPay billKind = iota + 1
	kindPresent
)

func (k billKind) String() string {
	if k == kindPresent {
		return "present"
	}
	return "pay"
}

// billKey scopes a bill number per (provider, appid). appid always points at
// the owning account's string, so a bill costs no extra copy of it.
type billKey struct {
	prov   provider
	appid  string
	billNo string
}

// bill is stored by value in its shard's map: one allocation per bill (the
// map slot) besides the bill number itself.
type bill struct {
	acct      *account
	amt       int64
	usedGen   int64
	at        int64 // unix nanoseconds
	seq       uint64
	kind      billKind
	cancelled bool
}

type acctShard struct {
	mu sync.Mutex
	m  map[acctKey]*account
}

type billShard struct {
	mu sync.Mutex
	m  map[billKey]bill
	// expired keeps bills whose idempotency window has passed, so the admin
	// ledger still lists every debit ever made.
	expired []Bill
}

// ledger holds accounts and bills. Lock order: a bill shard, then an
// account shard; never two shards of the same kind. Account-only operations
// (balance reads, admin sets) take one account shard and nothing else.
type ledger struct {
	seed    maphash.Seed
	initial int64
	seq     atomic.Uint64
	accts   [nShards]acctShard
	bills   [nShards]billShard
}

func newLedger(initial int64) *ledger {
	l := &ledger{seed: maphash.MakeSeed(), initial: initial}
	for i := range l.accts {
		l.accts[i].m = make(map[acctKey]*account)
		l.bills[i].m = make(map[billKey]bill)
	}
	return l
}

func (l *ledger) acctShard(k acctKey) *acctShard {
	var h maphash.Hash
	h.SetSeed(l.seed)
	h.WriteString(k.appid)
	h.WriteByte(byte(k.prov))
	h.WriteString(k.openid)
	return &l.accts[h.Sum64()%nShards]
}

// lockAccount locks the shard of the account (prov, appid, openid) and
// returns it with the account's key; the caller unlocks it.
func (l *ledger) lockAccount(prov provider, appid, openid string) (*acctShard, acctKey) {
	ak := acctKey{prov, appid, openid}
	sh := l.acctShard(ak)
	sh.mu.Lock()
	return sh, ak
}

func (l *ledger) billShard(prov provider, appid, billNo string) *billShard {
	var h maphash.Hash
	h.SetSeed(l.seed)
	h.WriteString(appid)
	h.WriteByte(byte(prov))
	h.WriteString(billNo)
	return &l.bills[h.Sum64()%nShards]
}

// touch returns the account, creating it with the initial balance. The
// caller holds sh.mu.
func (l *ledger) touch(sh *acctShard, k acctKey) *account {
	if a := sh.m[k]; a != nil {
		return a
	}
	// The openid usually points into the request line it was parsed from:
	// a copy keeps 250 bytes of URL (with the login token) from living as
	// long as the account.
	k.openid = strings.Clone(k.openid)
	a := &account{prov: k.prov, appid: k.appid, openid: k.openid,
		balance: l.initial, saveAmt: l.initial, saveSum: l.initial}
	sh.m[k] = a
	return a
}

// lookupBill returns the live bill under k, retiring it first when its
// idempotency window has passed. The caller holds bs.mu.
func (bs *billShard) lookupBill(k billKey, now int64) (bill, bool) {
	b, ok := bs.m[k]
	if !ok {
		return bill{}, false
	}
	if now-b.at >= int64(billTTL) {
		bs.expired = append(bs.expired, b.public(k.billNo))
		delete(bs.m, k)
		return bill{}, false
	}
	return b, true
}

func (b bill) public(billNo string) Bill {
	return Bill{
		Provider: b.acct.prov.String(), AppID: b.acct.appid, OpenID: b.acct.openid,
		BillNo: billNo, Kind: b.kind.String(), Amt: b.amt, UsedGenAmt: b.usedGen,
		Cancelled: b.cancelled, At: time.Unix(0, b.at).UTC(),
	}
}

type opStatus uint8

const (
	opOK opStatus = iota
	opDuplicate
	opInsufficient
	opNotFound
	opAlreadyCancelled
	opAmountMismatch
)

// pruneHidden drops hidden debits that are visible by now. The caller holds
// the account's shard lock.
func (a *account) pruneHidden(now int64) {
	if len(a.hidden) == 0 {
		return
	}
	keep := a.hidden[:0]
	for _, h := range a.hidden {
		if h.until > now {
			keep = append(keep, h)
		}
	}
	clear(a.hidden[len(keep):])
	a.hidden = keep
	if len(a.hidden) == 0 {
		a.hidden = nil
	}
}

// pay debits amt under billNo, gifted coins first. hideFor > 0 keeps the
// debit out of balance reads for that long. It returns the balance after the
// debit and the gifted part of it.
func (l *ledger) pay(prov provider, appid, openid, billNo string, amt int64, now time.Time, hideFor time.Duration) (st opStatus, balance, usedGen int64) {
	n := now.UnixNano()
	bs := l.billShard(prov, appid, billNo)
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if _, dup := bs.lookupBill(billKey{prov, appid, billNo}, n); dup {
		return opDuplicate, 0, 0
	}
	sh, ak := l.lockAccount(prov, appid, openid)
	defer sh.mu.Unlock()
	a := l.touch(sh, ak)
	if a.balance < amt {
		// No bill is recorded: the same bill_no may succeed later.
		return opInsufficient, a.balance, 0
	}
	usedGen = min(a.gen, amt)
	a.balance -= amt
	a.gen -= usedGen
	a.costSum += amt
	a.pruneHidden(n)
	billNo = strings.Clone(billNo) // see touch: the bill outlives its request
	if hideFor > 0 {
		a.hidden = append(a.hidden, hiddenDebit{billNo: billNo, until: n + int64(hideFor), amt: amt, gen: usedGen})
	}
	bs.m[billKey{prov, a.appid, billNo}] = bill{acct: a, amt: amt, usedGen: usedGen, at: n, seq: l.seq.Add(1), kind: kindPay}
	return opOK, a.balance, usedGen
}

// present credits amt gifted coins under billNo.
func (l *ledger) present(prov provider, appid, openid, billNo string, amt int64, now time.Time) (st opStatus, balance int64) {
	n := now.UnixNano()
	bs := l.billShard(prov, appid, billNo)
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if _, dup := bs.lookupBill(billKey{prov, appid, billNo}, n); dup {
		return opDuplicate, 0
	}
	sh, ak := l.lockAccount(prov, appid, openid)
	defer sh.mu.Unlock()
	a := l.touch(sh, ak)
	a.balance += amt
	a.gen += amt
	a.presentSums += amt
	bs.m[billKey{prov, a.appid, strings.Clone(billNo)}] = bill{acct: a, amt: amt, at: n, seq: l.seq.Add(1), kind: kindPresent}
	return opOK, a.balance
}

// cancel reverses the pay billNo of openid: the whole amount back to
// balance, the gifted part back to gen_balance, cost_sum down. amt > 0 must
// match the bill. A present, another player's bill or an expired one is not
// found.
func (l *ledger) cancel(prov provider, appid, openid, billNo string, amt int64, now time.Time) opStatus {
	n := now.UnixNano()
	bk := billKey{prov, appid, billNo}
	bs := l.billShard(prov, appid, billNo)
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b, ok := bs.lookupBill(bk, n)
	if !ok || b.kind != kindPay || b.acct.openid != openid {
		return opNotFound
	}
	if b.cancelled {
		return opAlreadyCancelled
	}
	if amt > 0 && amt != b.amt {
		return opAmountMismatch
	}
	a := b.acct
	sh := l.acctShard(acctKey{a.prov, a.appid, a.openid})
	sh.mu.Lock()
	a.balance += b.amt
	a.gen += b.usedGen
	a.costSum -= b.amt
	for i, h := range a.hidden {
		if h.billNo == billNo {
			a.hidden = append(a.hidden[:i], a.hidden[i+1:]...)
			break
		}
	}
	sh.mu.Unlock()
	b.cancelled = true
	// Assigning to a string key stores the key given: a copy, as in pay.
	bk.billNo = strings.Clone(bk.billNo)
	bs.m[bk] = b
	return opOK
}

// read returns the account as balance reads show it: hidden debits not yet
// applied. It creates the account on first touch, like the real services.
func (l *ledger) read(prov provider, appid, openid string, now time.Time) AccountView {
	sh, ak := l.lockAccount(prov, appid, openid)
	defer sh.mu.Unlock()
	a := l.touch(sh, ak)
	a.pruneHidden(now.UnixNano())
	v := a.view()
	for _, h := range a.hidden {
		v.Balance += h.amt
		v.GenBalance += h.gen
		v.CostSum -= h.amt
	}
	return v
}

func (a *account) view() AccountView {
	return AccountView{Balance: a.balance, GenBalance: a.gen, SaveAmt: a.saveAmt,
		SaveSum: a.saveSum, CostSum: a.costSum, PresentSums: a.presentSums}
}

// peek returns the true state, without creating the account.
func (l *ledger) peek(prov provider, appid, openid string) (AccountView, bool) {
	sh, ak := l.lockAccount(prov, appid, openid)
	defer sh.mu.Unlock()
	a := sh.m[ak]
	if a == nil {
		return AccountView{}, false
	}
	return a.view(), true
}

// set overwrites balance and gen_balance. A new account's purchase counters
// follow the purchased part; an existing account keeps its counters (an
// operator's correction is not a purchase). Hidden debits are dropped: the
// operator set what reads must show.
func (l *ledger) set(prov provider, appid, openid string, balance, gen int64) {
	sh, ak := l.lockAccount(prov, appid, openid)
	defer sh.mu.Unlock()
	a := sh.m[ak]
	if a == nil {
		a = &account{prov: prov, appid: appid, openid: openid,
			saveAmt: balance - gen, saveSum: balance - gen, presentSums: gen}
		sh.m[ak] = a
	}
	a.balance, a.gen, a.hidden = balance, gen, nil
}

// allBills lists every bill, live or expired, in the order they were made.
func (l *ledger) allBills(keep func(*Bill) bool) []Bill {
	type seqBill struct {
		seq uint64
		b   Bill
	}
	var out []seqBill
	for i := range l.bills {
		bs := &l.bills[i]
		bs.mu.Lock()
		for _, b := range bs.expired {
			if keep(&b) {
				out = append(out, seqBill{0, b})
			}
		}
		for k, b := range bs.m {
			pb := b.public(k.billNo)
			if keep(&pb) {
				out = append(out, seqBill{b.seq, pb})
			}
		}
		bs.mu.Unlock()
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].b.At.Equal(out[j].b.At) {
			return out[i].b.At.Before(out[j].b.At)
		}
		return out[i].seq < out[j].seq
	})
	bills := make([]Bill, len(out))
	for i := range out {
		bills[i] = out[i].b
	}
	return bills
}
