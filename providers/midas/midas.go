// Package midas is the client of YSDK / Midas mpay (get_balance_m, pay_m,
// cancel_pay_m, present_m): signed GET requests with a session cookie. It
// classifies every reply into a providers.Class and Code and is the only
// place in coinsaga that knows Midas's return codes.
package midas

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/internal/wire"
)

// Provider is the name the client reports in errors and observations.
const Provider = "midas"

// Endpoint names, as they appear in errors and metrics; the request path is
// "/mpay/" + name.
const (
	EndpointGetBalance = "get_balance_m"
	EndpointPay        = "pay_m"
	EndpointCancelPay  = "cancel_pay_m"
	EndpointPresent    = "present_m"
)

// DefaultTimeout bounds every call when Config.Timeout is zero.
const DefaultTimeout = wire.DefaultTimeout

// Config configures a Client.
type Config struct {
	BaseURL  string // https://ysdk.qq.com (live) or https://ysdktest.qq.com (sandbox)
	AppID    string // the offer id
	AppKey   string // secret: signs every request
	HTTP     *http.Client
	Timeout  time.Duration // per call; default DefaultTimeout
	Observer providers.Observer
	Now      func() time.Time // for ts; default time.Now
}

// Client calls Midas. It is safe for concurrent use.
type Client struct {
	base   string
	appID  string
	appKey string
	caller wire.Caller
	now    func() time.Time
}

var _ providers.Wallet = (*Client)(nil)

// New returns a client for cfg, filling in defaults.
func New(cfg Config) *Client {
	c := &Client{
		base:   strings.TrimRight(cfg.BaseURL, "/"),
		appID:  cfg.AppID,
		appKey: cfg.AppKey,
		caller: wire.NewCaller(Provider, cfg.HTTP, cfg.Timeout, cfg.Observer),
		now:    cfg.Now,
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Provider returns "midas".
func (c *Client) Provider() string { return Provider }

// reply is the union of the four endpoints' replies, past the fields both
// wallets share (wire.WalletReply). The echoed billno is not read: the key
// that matters is the one we sent, which the replies report.
type reply struct {
	wire.WalletReply
	Msg       string        `json:"msg"`
	FirstSave wire.FlexBool `json:"first_save"`
}

// Balance reads the player's coin account.
func (c *Client) Balance(ctx context.Context, acct providers.Account) (providers.Balance, error) {
	rep, err := c.call(ctx, EndpointGetBalance, acct, nil)
	if err != nil {
		return providers.Balance{}, err
	}
	return rep.Reply.AccountBalance(rep.Reply.FirstSave), nil
}

// Debit calls pay_m for d.Amount coins under billno d.BillNo. A duplicate
// billno (1002215) means an earlier call with it succeeded: AlreadyDone.
func (c *Client) Debit(ctx context.Context, acct providers.Account, d providers.Debit) (providers.DebitReply, error) {
	if err := providers.CheckMoneyCall(Provider, EndpointPay, d.BillNo, d.Amount); err != nil {
		return providers.DebitReply{}, err
	}
	extra := url.Values{"amt": {strconv.FormatInt(d.Amount, 10)}, "billno": {d.BillNo}}
	payItem := d.PayItem
	if payItem == "" {
		payItem = acct.Midas.PayItem
	}
	if payItem != "" {
		extra.Set("payitem", payItem)
	}
	rep, err := c.call(ctx, EndpointPay, acct, extra)
	if err != nil {
		return providers.DebitReply{}, err
	}
	return rep.Reply.DebitReply(rep.Class, d.BillNo), nil
}

// Cancel calls cancel_pay_m for the pay with cn.BillNo and its amount. A
// duplicate billno (1002215) here means the bill is already cancelled.
func (c *Client) Cancel(ctx context.Context, acct providers.Account, cn providers.Cancel) (providers.CancelReply, error) {
	if err := providers.CheckMoneyCall(Provider, EndpointCancelPay, cn.BillNo, cn.Amount); err != nil {
		return providers.CancelReply{}, err
	}
	extra := url.Values{"amt": {strconv.FormatInt(cn.Amount, 10)}, "billno": {cn.BillNo}}
	rep, err := c.call(ctx, EndpointCancelPay, acct, extra)
	if err != nil {
		return providers.CancelReply{}, err
	}
	return providers.CancelReply{Class: rep.Class, BillNo: cn.BillNo}, nil
}

// Present calls present_m for p.Amount coins under billno p.BillNo.
func (c *Client) Present(ctx context.Context, acct providers.Account, p providers.Present) (providers.PresentReply, error) {
	if err := providers.CheckMoneyCall(Provider, EndpointPresent, p.BillNo, p.Amount); err != nil {
		return providers.PresentReply{}, err
	}
	extra := url.Values{"presenttimes": {strconv.FormatInt(p.Amount, 10)}, "billno": {p.BillNo}}
	rep, err := c.call(ctx, EndpointPresent, acct, extra)
	if err != nil {
		return providers.PresentReply{}, err
	}
	return rep.Reply.PresentReply(rep.Class, p.BillNo), nil
}

// classified is a decoded reply that the call classified as a success.
type classified = wire.Classified[reply]

// SessionID returns the cookie's session_id for a session type: "openid"
// for QQ (kp_actoken) and H5 (openkey), "hy_gameid" for WeChat (wc_actoken)
// and guests (st_dummy). ok is false for an unknown type.
func SessionID(sessionType string) (id string, ok bool) {
	switch sessionType {
	case "kp_actoken", "openkey":
		return "openid", true
	case "wc_actoken", "st_dummy":
		return "hy_gameid", true
	}
	return "", false
}

// call performs one request and classifies the reply, reporting it to the
// observer. It returns a classified reply for OK and AlreadyDone and a
// *providers.Error otherwise.
func (c *Client) call(ctx context.Context, endpoint string, acct providers.Account, extra url.Values) (*classified, error) {
	return wire.Observe(c.caller, endpoint, func() (*classified, error) {
		return c.roundTrip(ctx, endpoint, acct, extra)
	})
}

// params returns the signed query of a call (sig included), for the
// request and for tests that check what goes on the wire.
func (c *Client) params(endpoint string, acct providers.Account, extra url.Values) url.Values {
	m := acct.Midas
	zone := m.ZoneID
	if zone == "" {
		zone = "1"
	}
	q := url.Values{
		"openid":  {acct.OpenID},
		"openkey": {m.OpenKey},
		"appid":   {c.appID},
		"ts":      {strconv.FormatInt(c.now().Unix(), 10)},
		"pf":      {m.PF},
		"pfkey":   {m.PFKey},
		"zoneid":  {zone},
		"format":  {"json"},
	}
	if m.UserIP != "" {
		q.Set("userip", m.UserIP)
	}
	if m.AccountType != "" {
		q.Set("accounttype", m.AccountType)
	}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("sig", Sign(http.MethodGet, SignPathPrefix+"/mpay/"+endpoint, q, c.appKey))
	return q
}

// roundTrip returns either a success or a *providers.Error, never both and
// never a nil *providers.Error in a non-nil error.
func (c *Client) roundTrip(ctx context.Context, endpoint string, acct providers.Account, extra url.Values) (*classified, error) {
	sessionID, ok := SessionID(acct.Midas.SessionType)
	if !ok {
		return nil, providers.ParamError(Provider, endpoint, "unknown session_type "+strconv.Quote(acct.Midas.SessionType))
	}
	ctx, cancel := context.WithTimeout(ctx, c.caller.Timeout)
	defer cancel()

	path := "/mpay/" + endpoint
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path+"?"+encodeQuery(c.params(endpoint, acct, extra)), nil)
	if err != nil {
		// The URL holds openkey and pfkey: say only what was wrong with the base.
		return nil, providers.ParamError(Provider, endpoint, "bad base URL "+strconv.Quote(c.base))
	}
	req.Header.Set("Cookie", "session_id="+Encode(sessionID)+"; session_type="+Encode(acct.Midas.SessionType)+"; org_loc="+Encode(path))

	raw, perr := c.caller.Fetch(endpoint, req)
	if perr != nil {
		return nil, perr
	}
	var rep reply
	if err := json.Unmarshal(stripJSONP(raw), &rep); err != nil {
		return nil, wire.BadReply(Provider, endpoint, "undecodable reply", err)
	}
	needBalance := endpoint == EndpointGetBalance || endpoint == EndpointPay
	class, perr := c.caller.ClassifyWallet(endpoint, Codes, rep.WalletReply, needBalance, rep.Msg, acct.Midas.OpenKey, acct.Midas.PFKey, c.appKey)
	if perr != nil {
		return nil, perr
	}
	return &classified{Reply: rep, Class: class}, nil
}

// stripJSONP unwraps a `func({...})` reply. We always ask for format=json,
// but a gateway configured for jsonp must not fail a payment whose body is
// perfectly readable.
func stripJSONP(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] == '{' {
		return b
	}
	open := bytes.IndexByte(b, '(')
	if open <= 0 || !isIdent(b[:open]) {
		return b
	}
	rest := bytes.TrimRight(b[open+1:], "; \t\r\n")
	if len(rest) == 0 || rest[len(rest)-1] != ')' {
		return b
	}
	return rest[:len(rest)-1]
}

func isIdent(b []byte) bool {
	for _, c := range bytes.TrimSpace(b) {
		if !(c == '_' || c == '$' || c == '.' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Return codes, from the seed, the public mpay documentation and public
// production clients. Codes holds what each one means.
const (
	RetOK              = 0
	RetParamError      = 1001 // also a bad sig, a stale ts, a bad billno or cookie
	RetBusy            = 1002
	RetNotFound        = 1003 // cancel_pay_m of an unknown billno (assumption, shared with the sandbox)
	RetInsufficient    = 1004
	RetLoginFailed     = 1018
	RetRiskFirst       = 1145
	RetRiskLast        = 1149
	RetDuplicateBill   = 1002215
	RetStillProcessing = 3000111
)

// Sources of the rows of Codes.
const (
	srcSeed       = "seed ysdk-midas-get-balance.md"
	srcMpayDocs   = "public mpay documentation (providers.md, YSDK / Midas mpay: ret codes)"
	srcProduction = "public production clients (providers.md, Learned since: more codes from public production clients)"
)

// Codes is what every Midas ret the client knows means, and where that
// comes from. A ret without a row is Final with CodeUnknown.
var Codes = providers.CodeTable{
	{Ret: RetOK, Class: providers.OK, Source: srcSeed + ": ret 0 success"},
	{Ret: RetParamError, Class: providers.Final, Code: providers.CodeParamError, Source: srcSeed + ": 1001 parameter error"},
	{Ret: RetLoginFailed, Class: providers.Final, Code: providers.CodeLoginFailed, Source: srcSeed + ": 1018 login check failed"},
	{Ret: RetBusy, Class: providers.Retryable, Code: providers.CodeBusy, Source: srcMpayDocs + ": 1002 system busy, retry"},
	{Ret: RetInsufficient, Class: providers.Final, Code: providers.CodeInsufficientBalance, Source: srcMpayDocs + ": 1004 insufficient balance"},
	{Ret: RetRiskFirst, Class: providers.Final, Code: providers.CodeRiskControl, Source: srcMpayDocs + ": 1145-1149 risk control"},
	{Ret: 1146, Class: providers.Final, Code: providers.CodeRiskControl, Source: srcMpayDocs + ": 1145-1149 risk control"},
	{Ret: 1147, Class: providers.Final, Code: providers.CodeRiskControl, Source: srcMpayDocs + ": 1145-1149 risk control"},
	{Ret: 1148, Class: providers.Final, Code: providers.CodeRiskControl, Source: srcMpayDocs + ": 1145-1149 risk control"},
	{Ret: RetRiskLast, Class: providers.Final, Code: providers.CodeRiskControl, Source: srcMpayDocs + ": 1145-1149 risk control"},
	// The duplicate's reply may carry no balance: DebitReply.BalanceKnown
	// says so, and the saga confirms against its own baseline.
	{Ret: RetDuplicateBill, Endpoints: []string{EndpointPay, EndpointPresent}, Class: providers.AlreadyDone, Source: srcProduction + ": 1002215 on pay_m/present_m, already charged with this billno"},
	{Ret: RetDuplicateBill, Endpoints: []string{EndpointCancelPay}, Class: providers.AlreadyDone, Source: "assumption: 1002215 on cancel_pay_m means an earlier cancel with this billno succeeded (shared with the sandbox)"},
	{Ret: RetStillProcessing, Class: providers.Retryable, Code: providers.CodeBusy, Source: srcProduction + ": 3000111 still processing, retry with the same billno"},
	{Ret: RetNotFound, Endpoints: []string{EndpointCancelPay}, Class: providers.Final, Code: providers.CodeNotFound, Source: "assumption: 1003 on cancel_pay_m is an unknown (or expired) billno; not public, shared with the sandbox"},
}

// Classify maps a Midas ret on endpoint to an outcome, from Codes. Success
// and already-done classes carry an empty Code.
func Classify(endpoint string, ret int) (providers.Class, providers.Code) {
	return Codes.Classify(endpoint, ret)
}
