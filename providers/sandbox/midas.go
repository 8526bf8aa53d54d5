package sandbox

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Midas (YSDK mpay) return codes.
const (
	midasOK           = 0
	midasParamError   = 1001
	midasBusy         = 1002
	midasNotFound     = 1003 // ASSUMPTION: cancel_pay_m of an unknown billno; not public
	midasNoBalance    = 1004
	midasLoginFailed  = 1018
	midasRiskControl  = 1145 // ASSUMPTION: 1145-1149 are risk control; the sandbox uses 1145
	midasDuplicate    = 1002215
	midasStillWorking = 3000111
)

// midasMaxSkew is how far, in seconds, ts may be from the sandbox clock.
// ASSUMPTION (providers.md, Learned since: timestamps): the real service
// refuses a ts more than 5 minutes off; as ts is a parameter, the code is
// the seed's 1001 parameter error.
const midasMaxSkew = 5 * 60

// openkey values that play a failed login and a risk-control refusal.
const (
	midasExpiredOpenKey = "expired"
	midasRiskOpenKey    = "risk"
)

// midasSessionIDOf pairs each cookie session_type with the session_id it
// takes (seed ysdk-midas-get-balance.md): the literal "openid" for QQ
// (kp_actoken) and H5 (openkey), "hy_gameid" for WeChat (wc_actoken) and
// guests (st_dummy). It is never the player's openid.
var midasSessionIDOf = map[string]string{
	"kp_actoken": "openid",
	"openkey":    "openid",
	"wc_actoken": "hy_gameid",
	"st_dummy":   "hy_gameid",
}

// midasCookies are the cookie fields the seed names, checked when present.
var midasCookies = []string{"session_id", "session_type", "org_loc", "appip"}

// midasCommon are the query parameters every mpay call requires.
var midasCommon = []string{"openid", "openkey", "appid", "ts", "sig", "pf", "pfkey", "zoneid"}

// midasRequest is a Midas call that passed the checks common to every
// endpoint, signature and login included.
type midasRequest struct {
	q      url.Values
	openid string
	jsonp  string // the jsonp function name, "" for plain json
}

func midasReply(v any, jsonp string) reply {
	b, err := json.Marshal(v)
	if err != nil {
		panic("sandbox: marshal Midas reply: " + err.Error())
	}
	if jsonp != "" {
		b = append(append(append([]byte(jsonp), '('), b...), ')')
	}
	// The seed shows text/html for JSON replies; clients must not insist
	// on application/json.
	return reply{status: http.StatusOK, contentType: "text/html; charset=utf-8", body: b}
}

type midasErr struct {
	Ret    int    `json:"ret"`
	Msg    string `json:"msg"`
	BillNo string `json:"billno,omitempty"`
}

// midasDuplicateBill is the answer to a billno already used: a pay or a
// present made with it, or a cancel of it already done.
func midasDuplicateBill(billNo, jsonp string) reply {
	return midasReply(midasErr{Ret: midasDuplicate, Msg: "duplicate billno", BillNo: billNo}, jsonp)
}

func midasError(ret int, msg, jsonp string) reply {
	return midasReply(midasErr{Ret: ret, Msg: msg}, jsonp)
}

// midasBusy answers either busy code: both mean "retry with the same billno".
func busyMidas(r *http.Request, pick float64) reply {
	var jsonp string
	if f := r.URL.Query().Get("format"); strings.HasPrefix(f, "jsonp_") && isJSONPName(f[len("jsonp_"):]) {
		jsonp = f[len("jsonp_"):]
	}
	if pick < 0.5 {
		return midasError(midasBusy, "system busy", jsonp)
	}
	return midasError(midasStillWorking, "still processing", jsonp)
}

// midasParse checks, in order: the query parses, format, the cookie, the
// common and endpoint parameters (extra), the appid, the sig, the login.
func (s *Sandbox) midasParse(c *call, extra ...string) (midasRequest, *reply) {
	var jsonp string
	fail := func(ret int, msg string) (midasRequest, *reply) {
		r := midasError(ret, msg, jsonp)
		return midasRequest{}, &r
	}
	q, err := url.ParseQuery(c.r.URL.RawQuery)
	if err != nil {
		return fail(midasParamError, "malformed query string")
	}
	for k, vs := range q {
		if len(vs) > 1 {
			return fail(midasParamError, "parameter "+k+" given more than once")
		}
	}
	switch f := q.Get("format"); {
	case f == "" || f == "json":
	case strings.HasPrefix(f, "jsonp_") && isJSONPName(f[len("jsonp_"):]):
		jsonp = f[len("jsonp_"):]
	default:
		return fail(midasParamError, "format must be json or jsonp_<func>")
	}
	if msg := checkMidasCookie(c.r); msg != "" {
		return fail(midasParamError, msg)
	}
	for _, group := range [][]string{midasCommon, extra} {
		for _, k := range group {
			if q.Get(k) == "" {
				return fail(midasParamError, k+" is required")
			}
		}
	}
	ts, err := strconv.ParseInt(q.Get("ts"), 10, 64)
	if err != nil {
		return fail(midasParamError, "ts must be unix seconds")
	}
	if skew := c.now.Unix() - ts; skew > midasMaxSkew || skew < -midasMaxSkew {
		return fail(midasParamError, "ts is more than 5 minutes away from the server time")
	}
	if at := q.Get("accounttype"); at != "" && at != "common" && at != "security" {
		return fail(midasParamError, "accounttype must be common or security")
	}
	if q.Get("appid") != s.cfg.MidasAppID {
		return fail(midasParamError, "invalid appid")
	}
	want := midasSig(s.cfg.MidasAppKey, http.MethodGet, "/v3/r"+c.r.URL.Path, q)
	if subtle.ConstantTimeCompare([]byte(want), []byte(q.Get("sig"))) != 1 {
		return fail(midasParamError, "sig check failed")
	}
	switch q.Get("openkey") {
	case midasExpiredOpenKey:
		return fail(midasLoginFailed, "login check failed")
	case midasRiskOpenKey:
		return fail(midasRiskControl, "payment refused by the security check")
	}
	return midasRequest{q: q, openid: q.Get("openid"), jsonp: jsonp}, nil
}

func isJSONPName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// checkMidasCookie returns why the session cookie is unacceptable, "" if it
// is fine. The seed says cookie values are urlencoded: a value holding a
// byte that urlencoding would have escaped is refused, as is a session_id
// that does not pair with the session_type.
func checkMidasCookie(r *http.Request) string {
	var vals [4]string
	for i, name := range midasCookies {
		ck, err := r.Cookie(name)
		if err != nil {
			continue
		}
		if !isURLEncoded(ck.Value) {
			return "cookie " + name + " must be urlencoded"
		}
		v, err := url.QueryUnescape(ck.Value)
		if err != nil {
			return "cookie " + name + " is not valid urlencoding"
		}
		vals[i] = v
	}
	sid, stype, loc := vals[0], vals[1], vals[2]
	want, known := midasSessionIDOf[stype]
	switch {
	case sid == "" || stype == "" || loc == "":
		return "cookie needs session_id, session_type and org_loc"
	case !known:
		return "cookie session_type must be kp_actoken, wc_actoken, st_dummy or openkey"
	case sid != want:
		return "cookie session_id must be " + want + " for session_type " + stype
	case loc != r.URL.Path:
		return "cookie org_loc must be the request path"
	}
	return ""
}

// isURLEncoded reports whether v could be the output of urlencoding: only
// unreserved bytes (A-Z a-z 0-9 - _ . ~), "+" for a space and "%" escapes.
// Whether each escape is well formed is left to the decoder.
func isURLEncoded(v string) bool {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == '~', c == '+', c == '%':
		default:
			return false
		}
	}
	return true
}

// midasSig is the OpenAPI V3.0 signature of a request to path with params
// (sig itself excluded): Base64(HMAC-SHA1(appkey+"&", source)).
func midasSig(appKey, method, path string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "sig" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var kv strings.Builder
	for i, k := range keys {
		if i > 0 {
			kv.WriteByte('&')
		}
		kv.WriteString(k)
		kv.WriteByte('=')
		if vs := params[k]; len(vs) > 0 {
			kv.WriteString(vs[0])
		}
	}
	source := method + "&" + rfc3986(path) + "&" + rfc3986(kv.String())
	m := hmac.New(sha1.New, []byte(appKey+"&"))
	m.Write([]byte(source))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// rfc3986 keeps A-Z a-z 0-9 - _ . and percent-encodes every other byte with
// upper-case hex, as providers.md specifies (so '~' becomes %7E).
func rfc3986(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 3 / 2)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// midasMoneyCall parses a pay, cancel or present (midasParse with the
// endpoint's params, in its order), then reads what it moves: the amount
// (in amtParam) and the billno; or it returns the reply refusing the call.
func (s *Sandbox) midasMoneyCall(c *call, amtParam string, params ...string) (req midasRequest, amt int64, billNo string, bad *reply) {
	req, bad = s.midasParse(c, params...)
	if bad != nil {
		return req, 0, "", bad
	}
	fail := func(msg string) (midasRequest, int64, string, *reply) {
		r := midasError(midasParamError, msg, req.jsonp)
		return req, 0, "", &r
	}
	amt, err := strconv.ParseInt(req.q.Get(amtParam), 10, 64)
	if err != nil || !validAmt(amt) {
		return fail(amtParam + " must be between 1 and 2^31-1")
	}
	billNo = req.q.Get("billno")
	if p := billNoProblem(billNo); p != "" {
		return fail("billno " + p)
	}
	return req, amt, billNo, nil
}

func (s *Sandbox) midasGetBalance(c *call) reply {
	req, bad := s.midasParse(c)
	if bad != nil {
		return *bad
	}
	v := s.ledger.read(provMidas, s.cfg.MidasAppID, req.openid, c.now)
	firstSave := 0
	if v.SaveAmt == 0 {
		firstSave = 1
	}
	return midasReply(struct {
		Ret        int   `json:"ret"`
		Balance    int64 `json:"balance"`
		GenBalance int64 `json:"gen_balance"`
		FirstSave  int   `json:"first_save"`
		SaveAmt    int64 `json:"save_amt"`
		GenExpire  int   `json:"gen_expire"`
		TSSList    []any `json:"tss_list"`
	}{midasOK, v.Balance, v.GenBalance, firstSave, v.SaveAmt, 0, []any{}}, req.jsonp)
}

func (s *Sandbox) midasPay(c *call) reply {
	req, amt, billNo, bad := s.midasMoneyCall(c, "amt", "amt", "billno")
	if bad != nil {
		return *bad
	}
	st, balance, usedGen := s.ledger.pay(provMidas, s.cfg.MidasAppID, req.openid, billNo, amt, c.now, c.fault.visibilityDelay())
	switch st {
	case opDuplicate:
		return midasDuplicateBill(billNo, req.jsonp)
	case opInsufficient:
		return midasError(midasNoBalance, "insufficient balance", req.jsonp)
	}
	return midasReply(struct {
		Ret        int    `json:"ret"`
		BillNo     string `json:"billno"`
		Balance    int64  `json:"balance"`
		UsedGenAmt int64  `json:"used_gen_amt"`
	}{midasOK, billNo, balance, usedGen}, req.jsonp)
}

func (s *Sandbox) midasCancelPay(c *call) reply {
	req, amt, billNo, bad := s.midasMoneyCall(c, "amt", "amt", "billno")
	if bad != nil {
		return *bad
	}
	switch s.ledger.cancel(provMidas, s.cfg.MidasAppID, req.openid, billNo, amt, c.now) {
	case opNotFound:
		return midasError(midasNotFound, "billno not found", req.jsonp)
	case opAlreadyCancelled:
		// An earlier cancel with this billno succeeded.
		return midasDuplicateBill(billNo, req.jsonp)
	case opAmountMismatch:
		return midasError(midasParamError, "amt does not match the bill", req.jsonp)
	}
	return midasReply(struct {
		Ret    int    `json:"ret"`
		BillNo string `json:"billno"`
	}{midasOK, billNo}, req.jsonp)
}

func (s *Sandbox) midasPresent(c *call) reply {
	req, amt, billNo, bad := s.midasMoneyCall(c, "presenttimes", "billno", "presenttimes")
	if bad != nil {
		return *bad
	}
	st, balance := s.ledger.present(provMidas, s.cfg.MidasAppID, req.openid, billNo, amt, c.now)
	if st == opDuplicate {
		return midasDuplicateBill(billNo, req.jsonp)
	}
	return midasReply(struct {
		Ret     int    `json:"ret"`
		BillNo  string `json:"billno"`
		Balance int64  `json:"balance"`
	}{midasOK, billNo, balance}, req.jsonp)
}
