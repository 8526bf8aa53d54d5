// Package mogs is the client of the MOGS game-coin API (getbalance, pay,
// cancelpay, present). It signs nothing (MOGS authenticates the player with
// js_code), classifies every reply into a providers.Class and Code, and is
// the only place in coinsaga that knows MOGS's return codes.
package mogs

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
const Provider = "mogs"

// Endpoint names, as they appear in the URL path, errors and metrics.
const (
	EndpointGetBalance = "getbalance"
	EndpointPay        = "pay"
	EndpointCancelPay  = "cancelpay"
	EndpointPresent    = "present"
)

// DefaultTimeout bounds every call when Config.Timeout is zero.
const DefaultTimeout = wire.DefaultTimeout

// Config configures a Client.
type Config struct {
	BaseURL  string // e.g. https://test.creativity.qq.com:9311, no trailing slash needed
	AppID    string // appid assigned by MOGS
	HTTP     *http.Client
	Timeout  time.Duration // per call; default DefaultTimeout
	Observer providers.Observer
}

// Client calls MOGS. It is safe for concurrent use.
type Client struct {
	base   string
	appID  string
	caller wire.Caller
}

var _ providers.Wallet = (*Client)(nil)

// New returns a client for cfg, filling in defaults.
func New(cfg Config) *Client {
	return &Client{
		base:   strings.TrimRight(cfg.BaseURL, "/"),
		appID:  cfg.AppID,
		caller: wire.NewCaller(Provider, cfg.HTTP, cfg.Timeout, cfg.Observer),
	}
}

// Provider returns "mogs".
func (c *Client) Provider() string { return Provider }

// request is the JSON body shared by the four endpoints; each sends the
// fields its seed documents and leaves the rest out.
type request struct {
	OSPlatID   int    `json:"os_plat_id"`
	SessionKey string `json:"session_key,omitempty"`
	BillNo     string `json:"bill_no,omitempty"`
	PayItem    string `json:"pay_item,omitempty"`
	Amt        int64  `json:"amt,omitempty"`
}

// reply is the union of the four endpoints' replies, past the fields both
// wallets share (wire.WalletReply). The echoed bill_no is not read: the seed types it int, the sandbox sends a
// string, and either way the key that matters is the one we sent, which the
// replies report.
type reply struct {
	wire.WalletReply
	ErrMsg      string        `json:"errmsg"`
	IsFirst     wire.FlexBool `json:"is_first"`
	SaveSum     wire.FlexInt  `json:"save_sum"`
	CostSum     wire.FlexInt  `json:"cost_sum"`
	PresentSums wire.FlexInt  `json:"present_sums"`
}

// Balance reads the player's coin account.
func (c *Client) Balance(ctx context.Context, acct providers.Account) (providers.Balance, error) {
	rep, err := c.call(ctx, EndpointGetBalance, acct, request{})
	if err != nil {
		return providers.Balance{}, err
	}
	b := rep.Reply.AccountBalance(rep.Reply.IsFirst)
	// MOGS alone reports the account's running sums.
	b.SaveSum, b.CostSum, b.PresentSums = int64(rep.Reply.SaveSum), int64(rep.Reply.CostSum), int64(rep.Reply.PresentSums)
	return b, nil
}

// Debit pays d.Amount coins under d.BillNo. A duplicate bill_no (90012)
// means an earlier call with the same key debited: AlreadyDone.
func (c *Client) Debit(ctx context.Context, acct providers.Account, d providers.Debit) (providers.DebitReply, error) {
	if err := providers.CheckMoneyCall(Provider, EndpointPay, d.BillNo, d.Amount); err != nil {
		return providers.DebitReply{}, err
	}
	payItem := d.PayItem
	if payItem == "" {
		payItem = acct.MOGS.PayItem
	}
	rep, err := c.call(ctx, EndpointPay, acct, request{BillNo: d.BillNo, PayItem: payItem, Amt: d.Amount})
	if err != nil {
		return providers.DebitReply{}, err
	}
	return rep.Reply.DebitReply(rep.Class, d.BillNo), nil
}

// Cancel reverses the pay with c.BillNo. MOGS's cancelpay takes no amount;
// c.Amount is not sent.
func (c *Client) Cancel(ctx context.Context, acct providers.Account, cn providers.Cancel) (providers.CancelReply, error) {
	if err := providers.CheckBillNo(Provider, EndpointCancelPay, cn.BillNo); err != nil {
		return providers.CancelReply{}, err
	}
	rep, err := c.call(ctx, EndpointCancelPay, acct, request{BillNo: cn.BillNo, PayItem: acct.MOGS.PayItem})
	if err != nil {
		return providers.CancelReply{}, err
	}
	return providers.CancelReply{Class: rep.Class, BillNo: cn.BillNo}, nil
}

// Present gives p.Amount coins under p.BillNo.
func (c *Client) Present(ctx context.Context, acct providers.Account, p providers.Present) (providers.PresentReply, error) {
	if err := providers.CheckMoneyCall(Provider, EndpointPresent, p.BillNo, p.Amount); err != nil {
		return providers.PresentReply{}, err
	}
	rep, err := c.call(ctx, EndpointPresent, acct, request{BillNo: p.BillNo, Amt: p.Amount})
	if err != nil {
		return providers.PresentReply{}, err
	}
	return rep.Reply.PresentReply(rep.Class, p.BillNo), nil
}

// classified is a decoded reply that the call classified as a success.
type classified = wire.Classified[reply]

// call performs one request and classifies the reply. It returns a
// classified reply for OK and AlreadyDone, and a *providers.Error otherwise.
func (c *Client) call(ctx context.Context, endpoint string, acct providers.Account, body request) (*classified, error) {
	return wire.Observe(c.caller, endpoint, func() (*classified, error) {
		return c.roundTrip(ctx, endpoint, acct, body)
	})
}

// roundTrip returns either a success or a *providers.Error, never both and
// never a nil *providers.Error in a non-nil error.
func (c *Client) roundTrip(ctx context.Context, endpoint string, acct providers.Account, body request) (*classified, error) {
	ctx, cancel := context.WithTimeout(ctx, c.caller.Timeout)
	defer cancel()

	body.OSPlatID = acct.MOGS.OSPlatID
	if body.OSPlatID == 0 {
		body.OSPlatID = 1
	}
	body.SessionKey = acct.MOGS.SessionKey
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, providers.ParamError(Provider, endpoint, "encode request: "+err.Error())
	}
	appPlat := acct.MOGS.AppPlat
	if appPlat == 0 {
		appPlat = 1
	}
	q := url.Values{
		"appid":    {c.appID},
		"app_plat": {strconv.Itoa(appPlat)},
		"openid":   {acct.OpenID},
		"js_code":  {acct.MOGS.JSCode},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/"+endpoint+"?"+q.Encode(), bytes.NewReader(payload))
	if err != nil {
		// The URL holds js_code: say only what was wrong with the base.
		return nil, providers.ParamError(Provider, endpoint, "bad base URL "+strconv.Quote(c.base))
	}
	req.Header.Set("Content-Type", "application/json")

	raw, perr := c.caller.Fetch(endpoint, req)
	if perr != nil {
		return nil, perr
	}
	var rep reply
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, wire.BadReply(Provider, endpoint, "undecodable reply", err)
	}
	// getbalance and pay always carry the balance, the saga's confirmation baseline.
	needBalance := endpoint == EndpointGetBalance || endpoint == EndpointPay
	class, perr := c.caller.ClassifyWallet(endpoint, Codes, rep.WalletReply, needBalance, rep.ErrMsg, acct.MOGS.JSCode, acct.MOGS.SessionKey)
	if perr != nil {
		return nil, perr
	}
	return &classified{Reply: rep, Class: class}, nil
}

// Return codes. MOGS does not publish its list; apart from 0 these follow
// WeChat mini-game midas v1, whose field names MOGS shares (an assumption
// recorded in providers.md). Codes holds what each one means.
const (
	RetOK               = 0
	RetBusy             = -1
	RetNotFound         = 90000 // cancelpay: no such bill
	RetLoginExpired     = 90010
	RetDuplicateBill    = 90012
	RetInsufficient     = 90013
	RetAlreadyCancelled = 90015
	RetProcessing       = 90016 // cancelpay: the order is being processed
	RetParamError       = 90018
)

// Sources of the rows of Codes.
const (
	srcSeed        = "seed mogs-game-coin-api.md"
	srcWeChatMidas = "assumption: MOGS shares WeChat mini-game midas v1's codes as it shares its field names (providers.md, MOGS)"
	srcProduction  = "public production clients (providers.md, Learned since: more codes from public production clients)"
)

// Codes is what every MOGS return code the client knows means, and where
// that comes from. A code without a row is Final with CodeUnknown.
var Codes = providers.CodeTable{
	{Ret: RetOK, Class: providers.OK, Source: srcSeed + ": ret 0 is success"},
	// -1 is busy: retry with the same bill_no. WeChat has also answered an
	// insufficient balance as -1, which is one more reason never to read
	// "not charged" into it.
	{Ret: RetBusy, Class: providers.Retryable, Code: providers.CodeBusy, Source: srcWeChatMidas + ": -1 system busy"},
	{Ret: RetNotFound, Endpoints: []string{EndpointCancelPay}, Class: providers.Final, Code: providers.CodeNotFound, Source: srcWeChatMidas + ": cancelpay 90000 bill not found"},
	{Ret: RetLoginExpired, Class: providers.Final, Code: providers.CodeLoginFailed, Source: srcWeChatMidas + ": 90010 login expired"},
	{Ret: RetDuplicateBill, Endpoints: []string{EndpointPay, EndpointPresent}, Class: providers.AlreadyDone, Source: srcWeChatMidas + ": 90012 bill_no already exists, an earlier call with it took effect"},
	{Ret: RetInsufficient, Class: providers.Final, Code: providers.CodeInsufficientBalance, Source: srcWeChatMidas + ": 90013 insufficient balance"},
	{Ret: RetAlreadyCancelled, Endpoints: []string{EndpointCancelPay}, Class: providers.AlreadyDone, Source: srcWeChatMidas + ": cancelpay 90015 already cancelled"},
	{Ret: RetProcessing, Endpoints: []string{EndpointCancelPay}, Class: providers.Retryable, Code: providers.CodeBusy, Source: srcProduction + ": WeChat midas 90016 on cancel, order being processed, retry"},
	{Ret: RetParamError, Class: providers.Final, Code: providers.CodeParamError, Source: srcWeChatMidas + ": 90018 parameter error"},
}

// Classify maps a MOGS return code on endpoint to an outcome, from Codes.
// Success and already-done classes carry an empty Code.
func Classify(endpoint string, ret int) (providers.Class, providers.Code) {
	return Codes.Classify(endpoint, ret)
}
