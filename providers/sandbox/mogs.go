package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// MOGS return codes. ASSUMPTION: MOGS's list is not public; it shares field
// names with WeChat mini-game midas v1, so it is taken to share its codes.
const (
	mogsOK           = 0
	mogsBusy         = -1
	mogsNotFound     = 90000 // cancelpay: bill not found
	mogsLoginExpired = 90010
	mogsDuplicate    = 90012
	mogsNoBalance    = 90013
	mogsCancelled    = 90015 // cancelpay: already cancelled
	mogsProcessing   = 90016 // cancelpay: order being processed, retry (providers.md, Learned since)
	mogsParamError   = 90018
)

// mogsExpiredJSCode is the js_code that plays a login that has expired.
const mogsExpiredJSCode = "expired"

// mogsBody is the union of the four endpoints' POST bodies.
type mogsBody struct {
	OSPlatID   int    `json:"os_plat_id"`
	SessionKey string `json:"session_key"`
	BillNo     string `json:"bill_no"`
	PayItem    string `json:"pay_item"`
	Amt        int64  `json:"amt"`
}

// mogsRequest is a MOGS call that passed the checks common to every endpoint.
type mogsRequest struct {
	openid string
	body   mogsBody
}

func mogsReply(v any) reply {
	b, err := json.Marshal(v)
	if err != nil {
		panic("sandbox: marshal MOGS reply: " + err.Error())
	}
	return reply{status: http.StatusOK, contentType: "application/json; charset=utf-8", body: b}
}

type mogsErr struct {
	Ret    int    `json:"ret"`
	ErrMsg string `json:"errmsg"`
	BillNo string `json:"bill_no,omitempty"`
}

func mogsError(ret int, msg string) reply { return mogsReply(mogsErr{Ret: ret, ErrMsg: msg}) }

// busyMOGS answers -1, or on cancelpay either -1 or 90016 (order being
// processed): both mean "retry with the same bill_no".
func busyMOGS(r *http.Request, pick float64) reply {
	if pick >= 0.5 && strings.HasSuffix(r.URL.Path, "/cancelpay") {
		return mogsError(mogsProcessing, "order is being processed, retry")
	}
	return mogsError(mogsBusy, "system busy")
}

// mogsParse runs the checks every MOGS endpoint shares: query parameters,
// the JSON body, os_plat_id, then the login.
func (s *Sandbox) mogsParse(c *call) (mogsRequest, *reply) {
	fail := func(ret int, msg string) (mogsRequest, *reply) {
		r := mogsError(ret, msg)
		return mogsRequest{}, &r
	}
	q := c.r.URL.Query()
	openid, jsCode := q.Get("openid"), q.Get("js_code")
	switch {
	case q.Get("appid") == "":
		return fail(mogsParamError, "appid is required")
	case q.Get("appid") != s.cfg.MOGSAppID:
		return fail(mogsParamError, "unknown appid")
	case q.Get("app_plat") != "1":
		return fail(mogsParamError, "app_plat must be 1")
	case openid == "":
		return fail(mogsParamError, "openid is required")
	case jsCode == "":
		return fail(mogsParamError, "js_code is required")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(nil, c.r.Body, 1<<20))
	if err != nil {
		return fail(mogsParamError, "body unreadable")
	}
	var body mogsBody
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&body); err != nil || dec.More() {
		return fail(mogsParamError, "body is not a JSON object of the documented fields")
	}
	if body.OSPlatID != 1 {
		return fail(mogsParamError, "os_plat_id must be 1")
	}
	if jsCode == mogsExpiredJSCode {
		return fail(mogsLoginExpired, "login state invalid, log in again")
	}
	return mogsRequest{openid: openid, body: body}, nil
}

func (s *Sandbox) mogsGetBalance(c *call) reply {
	req, bad := s.mogsParse(c)
	if bad != nil {
		return *bad
	}
	v := s.ledger.read(provMOGS, s.cfg.MOGSAppID, req.openid, c.now)
	return mogsReply(struct {
		Ret         int    `json:"ret"`
		ErrMsg      string `json:"errmsg"`
		Balance     int64  `json:"balance"`
		GenBalance  int64  `json:"gen_balance"`
		IsFirst     bool   `json:"is_first"`
		SaveAmt     int64  `json:"save_amt"`
		SaveSum     int64  `json:"save_sum"`
		CostSum     int64  `json:"cost_sum"`
		PresentSums int64  `json:"present_sums"`
	}{mogsOK, "ok", v.Balance, v.GenBalance, v.SaveAmt == 0, v.SaveAmt, v.SaveSum, v.CostSum, v.PresentSums})
}

func validAmt(amt int64) bool { return amt > 0 && amt <= math.MaxInt32 }

// mogsBillNo is the bill number of a pay or present: the one sent, or the
// one MOGS generates when there is none, or the reply refusing the one sent.
// A generated one is all digits: the seed types bill_no as int in replies.
func (s *Sandbox) mogsBillNo(sent string) (string, *reply) {
	if sent == "" {
		return strconv.FormatUint(s.billSeq.Add(1), 10), nil
	}
	if p := billNoProblem(sent); p != "" {
		r := mogsError(mogsParamError, "bill_no "+p)
		return "", &r
	}
	return sent, nil
}

func (s *Sandbox) mogsPay(c *call) reply {
	req, bad := s.mogsParse(c)
	if bad != nil {
		return *bad
	}
	b := req.body
	if !validAmt(b.Amt) {
		return mogsError(mogsParamError, "amt must be between 1 and 2^31-1")
	}
	if b.BillNo, bad = s.mogsBillNo(b.BillNo); bad != nil {
		return *bad
	}
	st, balance, usedGen := s.ledger.pay(provMOGS, s.cfg.MOGSAppID, req.openid, b.BillNo, b.Amt, c.now, c.fault.visibilityDelay())
	switch st {
	case opDuplicate:
		return mogsReply(mogsErr{Ret: mogsDuplicate, ErrMsg: "bill_no already exists", BillNo: b.BillNo})
	case opInsufficient:
		return mogsError(mogsNoBalance, "insufficient balance")
	}
	return mogsReply(struct {
		Ret        int    `json:"ret"`
		ErrMsg     string `json:"errmsg"`
		Balance    int64  `json:"balance"`
		BillNo     string `json:"bill_no"`
		UsedGenAmt int64  `json:"used_gen_amt"`
	}{mogsOK, "ok", balance, b.BillNo, usedGen})
}

func (s *Sandbox) mogsCancelPay(c *call) reply {
	req, bad := s.mogsParse(c)
	if bad != nil {
		return *bad
	}
	if req.body.BillNo == "" {
		return mogsError(mogsParamError, "bill_no is required")
	}
	if p := billNoProblem(req.body.BillNo); p != "" {
		return mogsError(mogsParamError, "bill_no "+p)
	}
	// MOGS cancelpay carries no amount: the bill's own amount is returned.
	switch s.ledger.cancel(provMOGS, s.cfg.MOGSAppID, req.openid, req.body.BillNo, 0, c.now) {
	case opNotFound:
		return mogsError(mogsNotFound, "bill not found")
	case opAlreadyCancelled:
		return mogsReply(mogsErr{Ret: mogsCancelled, ErrMsg: "bill already cancelled", BillNo: req.body.BillNo})
	}
	return mogsReply(struct {
		Ret    int    `json:"ret"`
		ErrMsg string `json:"errmsg"`
		BillNo string `json:"bill_no"`
	}{mogsOK, "ok", req.body.BillNo})
}

func (s *Sandbox) mogsPresent(c *call) reply {
	req, bad := s.mogsParse(c)
	if bad != nil {
		return *bad
	}
	b := req.body
	if !validAmt(b.Amt) {
		return mogsError(mogsParamError, "amt must be greater than 0")
	}
	if b.BillNo, bad = s.mogsBillNo(b.BillNo); bad != nil {
		return *bad
	}
	st, balance := s.ledger.present(provMOGS, s.cfg.MOGSAppID, req.openid, b.BillNo, b.Amt, c.now)
	if st == opDuplicate {
		return mogsReply(mogsErr{Ret: mogsDuplicate, ErrMsg: "bill_no already exists", BillNo: b.BillNo})
	}
	return mogsReply(struct {
		Ret     int    `json:"ret"`
		ErrMsg  string `json:"errmsg"`
		Balance int64  `json:"balance"`
		BillNo  string `json:"bill_no"`
	}{mogsOK, "ok", balance, b.BillNo})
}
