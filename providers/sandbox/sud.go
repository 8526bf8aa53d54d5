package sandbox

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// SUD business codes.
const (
	sudOK            = 0
	sudServiceError  = 10001
	sudParamError    = 10002
	sudBadAppKey     = 10003
	sudBadAppSecret  = 10004
	sudOrderExists   = 70501
	sudOrderNotFound = 70503
)

// Order statuses of query_order. An order is EXECUTING until its
// execution ends (at once unless a sud.create_order fault sets
// execute_delay_ms), then EXECUTE_FAIL or EXECUTE_SUCCESS. The sandbox never
// shows CREATED: it starts executing an order as it stores it.
const (
	sudStatusExecuting = "EXECUTING"
	sudStatusFail      = "EXECUTE_FAIL"
	sudStatusSuccess   = "EXECUTE_SUCCESS"
)

// validateSUD checks the SUD execution fields of a fault.
func (f Fault) validateSUD() error {
	if math.IsNaN(f.ExecuteFailRate) || f.ExecuteFailRate < 0 || f.ExecuteFailRate > 1 {
		return fmt.Errorf("execute_fail_rate %v not in [0,1]", f.ExecuteFailRate)
	}
	if f.ExecuteDelayMS < 0 {
		return fmt.Errorf("execute_delay_ms must not be negative")
	}
	if (f.ExecuteFailRate != 0 || f.ExecuteDelayMS != 0) && f.Endpoint != epSUDCreateOrder && f.Endpoint != EveryEndpoint {
		return fmt.Errorf("execute_fail_rate and execute_delay_ms apply to %s only", epSUDCreateOrder)
	}
	return nil
}

// chance rolls the seeded dice once: true with probability p.
func (t *faultTable) chance(p float64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rng.Float64() < p
}

// sudOrderFields are the fields an order was created with, past its ids,
// as query_order, a notification and the state file write them.
type sudOrderFields struct {
	OutGroupID string          `json:"out_group_id,omitempty"`
	MgID       string          `json:"mg_id"`
	RoomID     string          `json:"room_id"`
	Cmd        string          `json:"cmd"`
	FromUID    string          `json:"from_uid"`
	ToUID      string          `json:"to_uid"`
	Value      int32           `json:"value"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}

// sudOrder is one order. Every field is set before the order is stored and
// never changes: its status is computed from the clock (statusAt), so
// that 50,000 executing orders need no timer each.
type sudOrder struct {
	seq uint64
	// doneAt is when execution ends, by the sandbox clock; fails is its
	// outcome, rolled when the order was created.
	doneAt     time.Time
	fails      bool
	OutOrderID string `json:"out_order_id"`
	OrderID    string `json:"order_id"`
	Status     string `json:"status"` // set on copies only, see at
	sudOrderFields
	CreatedAt time.Time `json:"created_at"`
}

type sudShard struct {
	mu   sync.Mutex
	byID map[string]*sudOrder // out_order_id or order_id, see sudBook
}

// sudBook indexes orders by out_order_id (outs) and by order_id (ids).
type sudBook struct {
	seed maphash.Seed
	seq  atomic.Uint64
	base uint64 // order ids are base+seq, unique within one sandbox
	outs [nShards]sudShard
	ids  [nShards]sudShard
	// notify sends the orders' notifications (sudnotify.go).
	notify *sudNotifier
}

func newSUDBook(now time.Time) *sudBook {
	b := &sudBook{seed: maphash.MakeSeed(), base: uint64(now.UnixMilli()) * 1_000_000, notify: newSUDNotifier()}
	for i := range b.outs {
		b.outs[i].byID = make(map[string]*sudOrder)
		b.ids[i].byID = make(map[string]*sudOrder)
	}
	return b
}

func (b *sudBook) shard(shards *[nShards]sudShard, key string) *sudShard {
	return &shards[maphash.String(b.seed, key)%nShards]
}

// create stores o unless its out_order_id exists; it fills OrderID.
func (b *sudBook) create(o *sudOrder) bool {
	sh := b.shard(&b.outs, o.OutOrderID)
	sh.mu.Lock()
	if _, dup := sh.byID[o.OutOrderID]; dup {
		sh.mu.Unlock()
		return false
	}
	o.seq = b.seq.Add(1)
	o.OrderID = strconv.FormatUint(b.base+o.seq, 10)
	sh.byID[o.OutOrderID] = o
	sh.mu.Unlock()
	// The order id is unknown to anyone until the reply is written, so
	// indexing it after the out_order_id lock is released loses nothing.
	ish := b.shard(&b.ids, o.OrderID)
	ish.mu.Lock()
	ish.byID[o.OrderID] = o
	ish.mu.Unlock()
	return true
}

// finalStatus is what execution ends in.
func (o *sudOrder) finalStatus() string {
	if o.fails {
		return sudStatusFail
	}
	return sudStatusSuccess
}

// statusAt is the order's status at now.
func (o *sudOrder) statusAt(now time.Time) string {
	if now.Before(o.doneAt) {
		return sudStatusExecuting
	}
	return o.finalStatus()
}

// at is a copy of o with its status at now.
func (o *sudOrder) at(now time.Time) sudOrder {
	c := *o
	c.Status = o.statusAt(now)
	return c
}

// get returns the order under key with its status at now.
func (b *sudBook) get(shards *[nShards]sudShard, key string, now time.Time) (sudOrder, bool) {
	sh := b.shard(shards, key)
	sh.mu.Lock()
	o, ok := sh.byID[key]
	sh.mu.Unlock()
	if !ok {
		return sudOrder{}, false
	}
	return o.at(now), true
}

// list returns every order, in creation order, with its status at now.
func (b *sudBook) list(now time.Time) []SUDOrder {
	var all []*sudOrder
	for i := range b.outs {
		sh := &b.outs[i]
		sh.mu.Lock()
		for _, o := range sh.byID {
			all = append(all, o)
		}
		sh.mu.Unlock()
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq < all[j].seq })
	out := make([]SUDOrder, len(all))
	for i, o := range all {
		out[i] = SUDOrder{OutOrderID: o.OutOrderID, OrderID: o.OrderID, Status: o.statusAt(now)}
	}
	return out
}

func sudReply(code int, msg string, data any) reply {
	b, err := json.Marshal(struct {
		RetCode int    `json:"ret_code"`
		RetMsg  string `json:"ret_msg"`
		Data    any    `json:"data"`
	}{code, msg, data})
	if err != nil {
		panic("sandbox: marshal SUD reply: " + err.Error())
	}
	return reply{status: http.StatusOK, contentType: "application/json; charset=utf-8", body: b}
}

func busySUD(*http.Request, float64) reply {
	return sudReply(sudServiceError, "service exception", nil)
}

// sudDiscoveryKey is the path segment of the endpoint-discovery URL.
func sudDiscoveryKey(appID, appSecret string) string {
	m := hmac.New(md5.New, []byte(appSecret))
	m.Write([]byte(appID))
	return hex.EncodeToString(m.Sum(nil))
}

// sudSignature is the Sud-Auth signature of one request.
func sudSignature(appSecret, appID, timestamp, nonce string, body []byte) string {
	m := hmac.New(sha1.New, []byte(appSecret))
	m.Write([]byte(appID + "\n" + timestamp + "\n" + nonce + "\n"))
	m.Write(body)
	m.Write([]byte("\n"))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Sandbox) sudDiscovery(w http.ResponseWriter, r *http.Request) {
	want := sudDiscoveryKey(s.cfg.SUDAppID, s.cfg.SUDAppSecret)
	if subtle.ConstantTimeCompare([]byte(r.PathValue("key")), []byte(want)) != 1 {
		rep := sudReply(sudBadAppKey, "invalid app key", nil)
		rep.status = http.StatusNotFound
		writeReply(w, rep)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	base := scheme + "://" + r.Host
	b, _ := json.Marshal(map[string]map[string]string{"api": {
		"create_order": base + "/sud/create_order",
		"query_order":  base + "/sud/query_order",
	}})
	writeReply(w, reply{status: http.StatusOK, contentType: "application/json; charset=utf-8", body: b})
}

// parseSudAuth splits `Sud-Auth k="v",k="v"` into its fields.
func parseSudAuth(h string) (map[string]string, bool) {
	rest, ok := strings.CutPrefix(h, "Sud-Auth ")
	if !ok {
		return nil, false
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return nil, false
		}
		fields[k] = v[1 : len(v)-1]
	}
	return fields, true
}

// sudMaxSkew is how far a Sud-Auth timestamp may be from the sandbox
// clock, either way, as the real services are assumed to allow
// (providers.md: "assume ±5 minutes").
const sudMaxSkew = 5 * time.Minute

// sudJSONContentType reports whether a request's Content-Type is JSON in
// UTF-8, as create_order and query_order require
// ("Content-Type: application/json;charset=utf-8").
func sudJSONContentType(h string) bool {
	mt, params, err := mime.ParseMediaType(h)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// sudAuth checks the Content-Type, reads the body and checks the Sud-Auth
// header against it and against the clock.
func (s *Sandbox) sudAuth(c *call) ([]byte, *reply) {
	fail := func(code int, msg string) ([]byte, *reply) {
		r := sudReply(code, msg, nil)
		return nil, &r
	}
	if !sudJSONContentType(c.r.Header.Get("Content-Type")) {
		return fail(sudParamError, "Content-Type must be application/json;charset=utf-8")
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, c.r.Body, 1<<20))
	if err != nil {
		return fail(sudParamError, "body unreadable")
	}
	f, ok := parseSudAuth(c.r.Header.Get("Authorization"))
	if !ok || f["app_id"] != s.cfg.SUDAppID {
		return fail(sudBadAppKey, "invalid app key")
	}
	want := sudSignature(s.cfg.SUDAppSecret, f["app_id"], f["timestamp"], f["nonce"], body)
	if f["timestamp"] == "" || f["nonce"] == "" || subtle.ConstantTimeCompare([]byte(f["signature"]), []byte(want)) != 1 {
		return fail(sudBadAppSecret, "invalid app secret")
	}
	// The timestamp is signed, so it is checked once the signature holds:
	// a stale but genuine request is refused like a forged one, with the
	// code of the signature check (10004).
	ts, err := strconv.ParseInt(f["timestamp"], 10, 64)
	if err != nil {
		return fail(sudBadAppSecret, "invalid app secret: timestamp is not unix seconds")
	}
	// Against the sandbox clock, like every other time it reads: a client
	// of a sandbox whose clock was moved must sign with that clock, as a
	// real client's clock agrees with the real service's.
	if skew := c.now.Sub(time.Unix(ts, 0)); skew > sudMaxSkew || skew < -sudMaxSkew {
		return fail(sudBadAppSecret, "invalid app secret: timestamp expired")
	}
	return body, nil
}

func decodeStrict(body []byte, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	return dec.Decode(v) == nil && !dec.More()
}

func (s *Sandbox) sudCreateOrder(c *call) reply {
	body, bad := s.sudAuth(c)
	if bad != nil {
		return *bad
	}
	var in struct {
		OutOrderID string          `json:"out_order_id"`
		OutGroupID string          `json:"out_group_id"`
		MgID       string          `json:"mg_id"`
		RoomID     string          `json:"room_id"`
		Cmd        string          `json:"cmd"`
		FromUID    string          `json:"from_uid"`
		ToUID      string          `json:"to_uid"`
		Value      *int64          `json:"value"`
		Payload    json.RawMessage `json:"payload"`
	}
	if !decodeStrict(body, &in) {
		return sudReply(sudParamError, "body is not a JSON object of the documented fields", nil)
	}
	for _, f := range []struct{ name, v string }{
		{"out_order_id", in.OutOrderID}, {"mg_id", in.MgID}, {"room_id", in.RoomID},
		{"cmd", in.Cmd}, {"from_uid", in.FromUID}, {"to_uid", in.ToUID},
	} {
		if f.v == "" {
			return sudReply(sudParamError, f.name+" is required", nil)
		}
	}
	switch {
	case utf8.RuneCountInString(in.OutOrderID) > 64:
		return sudReply(sudParamError, "out_order_id longer than 64 characters", nil)
	case utf8.RuneCountInString(in.OutGroupID) > 64:
		return sudReply(sudParamError, "out_group_id longer than 64 characters", nil)
	case in.Value == nil:
		return sudReply(sudParamError, "value is required", nil)
	case *in.Value < math.MinInt32 || *in.Value > math.MaxInt32:
		return sudReply(sudParamError, "value is not an int32", nil)
	}
	payload := bytes.TrimSpace(in.Payload)
	if len(payload) > 0 && string(payload) != "null" && payload[0] != '{' {
		return sudReply(sudParamError, "payload must be an object", nil)
	}
	if string(payload) == "null" {
		payload = nil
	}
	if s.cfg.Games != nil {
		if err := s.cfg.Games.CheckCommand(in.MgID, in.Cmd, int32(*in.Value), json.RawMessage(payload)); err != nil {
			return sudReply(sudParamError, "game check: "+err.Error(), nil)
		}
	}
	// Execution: at once, or after the fault's delay; fails with the
	// fault's rate. The dice are rolled only when a rate is set, so that
	// faults without one keep their seeded sequences.
	o := &sudOrder{
		doneAt:     c.now.Add(time.Duration(c.fault.ExecuteDelayMS) * time.Millisecond),
		fails:      c.fault.ExecuteFailRate > 0 && s.faults.chance(c.fault.ExecuteFailRate),
		OutOrderID: in.OutOrderID,
		sudOrderFields: sudOrderFields{OutGroupID: in.OutGroupID,
			MgID: in.MgID, RoomID: in.RoomID, Cmd: in.Cmd, FromUID: in.FromUID, ToUID: in.ToUID,
			Value: int32(*in.Value), Payload: bytes.Clone(payload)},
		CreatedAt: c.now.UTC(),
	}
	if !s.sud.create(o) {
		return sudReply(sudOrderExists, "out_order_id already exists", nil)
	}
	// Without a delay the notification may reach the app before this
	// reply does, as it may with the real SUD.
	s.sud.notify.schedule(s, o)
	return sudReply(sudOK, "", map[string]string{"out_order_id": o.OutOrderID, "order_id": o.OrderID})
}

func (s *Sandbox) sudQueryOrder(c *call) reply {
	body, bad := s.sudAuth(c)
	if bad != nil {
		return *bad
	}
	var in struct {
		OutOrderID string `json:"out_order_id"`
		OrderID    string `json:"order_id"`
	}
	if !decodeStrict(body, &in) || (in.OutOrderID == "" && in.OrderID == "") {
		return sudReply(sudParamError, "out_order_id or order_id is required", nil)
	}
	var (
		o  sudOrder
		ok bool
	)
	if in.OutOrderID != "" {
		o, ok = s.sud.get(&s.sud.outs, in.OutOrderID, c.now)
		ok = ok && (in.OrderID == "" || o.OrderID == in.OrderID)
	} else {
		o, ok = s.sud.get(&s.sud.ids, in.OrderID, c.now)
	}
	if !ok {
		return sudReply(sudOrderNotFound, "order not found", nil)
	}
	return sudReply(sudOK, "", o)
}
