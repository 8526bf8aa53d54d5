// Package sud is the client of SUD's app-server API: create_order (the
// in-game paid order) and query_order (how a worker that lost a reply
// learns whether the order exists, and SUD's verdict on the action),
// signed with Sud-Auth, with endpoint discovery; and NotifyHandler, the
// receiver of SUD's signed order notifications. It classifies every reply
// into a providers.Class and Code from one table (CodeTable) and is the
// only place in coinsaga that knows SUD's return codes.
package sud

// The client: its configuration, and one signed call with the
// classification of its reply.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/internal/wire"
)

// Provider is the name the client reports in errors and observations.
const Provider = "sud"

// Endpoint names, as they appear in errors and metrics.
const (
	EndpointCreateOrder = "create_order"
	EndpointQueryOrder  = "query_order"
	EndpointDiscovery   = "discovery"
)

// Order statuses reported by query_order.
const (
	StatusCreated        = "CREATED"
	StatusExecuting      = "EXECUTING"
	StatusExecuteFail    = "EXECUTE_FAIL"
	StatusExecuteSuccess = "EXECUTE_SUCCESS"
)

const (
	// DefaultTimeout bounds every call when Config.Timeout is zero.
	DefaultTimeout = wire.DefaultTimeout
	// DefaultDiscoveryTTL is how long discovered endpoints are trusted
	// before they are fetched again.
	DefaultDiscoveryTTL = 10 * time.Minute
	// discoveryRetryAfter spaces refreshes while the discovery service is
	// failing and an older copy is still in use, so that an outage of that
	// service does not add a failing request to every order call.
	discoveryRetryAfter = 30 * time.Second
	// maxOutOrderID is SUD's limit on out_order_id and out_group_id.
	maxOutOrderID = 64
	contentType   = "application/json;charset=utf-8"
)

// Config configures a Client. Each of the two endpoint URLs is either
// configured or discovered from ASCBaseURL; a configured URL is used as is.
type Config struct {
	AppID          string
	AppSecret      string // secret: signs every request
	CreateOrderURL string
	QueryOrderURL  string
	ASCBaseURL     string // discovery: GET ASCBaseURL/DiscoveryKey(secret, id)
	HTTP           *http.Client
	Timeout        time.Duration // per call; default DefaultTimeout
	Observer       providers.Observer
	Now            func() time.Time // for timestamps and the discovery TTL; default time.Now
	DiscoveryTTL   time.Duration    // default DefaultDiscoveryTTL
}

// Client calls SUD. It is safe for concurrent use.
type Client struct {
	appID     string
	appSecret string
	createURL string // configured, or "" to discover
	queryURL  string
	ascURL    string
	caller    wire.Caller
	now       func() time.Time
	ttl       time.Duration

	mu       sync.Mutex
	disc     endpoints     // the last discovered copy; zero until the first success
	staleAt  time.Time     // when disc must be fetched again
	inflight chan struct{} // non-nil while a discovery fetch runs; closed when it ends
}

// New returns a client for cfg. It fails when a credential is missing or an
// endpoint can be neither used as configured nor discovered.
func New(cfg Config) (*Client, error) {
	if cfg.AppID == "" || cfg.AppSecret == "" {
		return nil, errors.New("sud: app_id and app_secret are required")
	}
	if (cfg.CreateOrderURL == "" || cfg.QueryOrderURL == "") && cfg.ASCBaseURL == "" {
		return nil, errors.New("sud: configure create_order and query_order URLs, or an ASC base URL to discover them")
	}
	for _, u := range []string{cfg.CreateOrderURL, cfg.QueryOrderURL, cfg.ASCBaseURL} {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || p.Scheme == "" || p.Host == "" {
			return nil, fmt.Errorf("sud: %q is not an absolute URL", u)
		}
	}
	c := &Client{
		appID:     cfg.AppID,
		appSecret: cfg.AppSecret,
		createURL: cfg.CreateOrderURL,
		queryURL:  cfg.QueryOrderURL,
		ascURL:    strings.TrimRight(cfg.ASCBaseURL, "/"),
		caller:    wire.NewCaller(Provider, cfg.HTTP, cfg.Timeout, cfg.Observer),
		now:       cfg.Now,
		ttl:       cfg.DiscoveryTTL,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.ttl <= 0 {
		c.ttl = DefaultDiscoveryTTL
	}
	return c, nil
}

// envelope is SUD's BaseResp.
type envelope struct {
	RetCode *wire.FlexInt   `json:"ret_code"`
	RetMsg  string          `json:"ret_msg"`
	Data    json.RawMessage `json:"data"`
}

// classified is a decoded reply that the call classified as a success.
type classified = wire.Classified[orderData]

// call performs one signed request about the order outOrderID and
// classifies the reply, reporting it to the observer.
func (c *Client) call(ctx context.Context, endpoint, outOrderID string, body []byte) (*classified, error) {
	ctx, cancel := context.WithTimeout(ctx, c.caller.Timeout)
	defer cancel()
	target, err := c.endpointURL(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	rep, err := wire.Observe(c.caller, endpoint, func() (*classified, error) {
		return c.roundTrip(ctx, endpoint, target, outOrderID, body)
	})
	if err != nil {
		var pe *providers.Error
		if errors.As(err, &pe) && (pe.Code == providers.CodeUnavailable || pe.Code == providers.CodeTimeout) {
			// A transport failure may mean the endpoint moved.
			c.invalidate(endpoint)
		}
		return nil, err
	}
	return rep, nil
}

// roundTrip returns either a success or a *providers.Error, never both and
// never a nil *providers.Error in a non-nil error.
func (c *Client) roundTrip(ctx context.Context, endpoint, target, outOrderID string, body []byte) (*classified, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, providers.ParamError(Provider, endpoint, "bad URL: "+err.Error())
	}
	ts := Timestamp(c.now())
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", AuthorizationHeader(c.appSecret, c.appID, ts, Nonce(), body))

	raw, perr := c.caller.Fetch(endpoint, req)
	if perr != nil {
		return nil, perr
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, badReply(endpoint, "undecodable reply", err)
	}
	if env.RetCode == nil {
		return nil, badReply(endpoint, "reply has no ret_code", nil)
	}
	ret := int(*env.RetCode)
	class, code := Classify(endpoint, ret)
	switch class {
	case providers.AlreadyDone:
		return &classified{Class: class}, nil
	case providers.OK:
		var d orderData
		if len(env.Data) > 0 && !bytes.Equal(env.Data, []byte("null")) {
			if err := json.Unmarshal(env.Data, &d); err != nil {
				return nil, badReply(endpoint, "undecodable data", err)
			}
		}
		if d.OrderID == "" {
			// The order id is the reason for the call: a success without it
			// cannot move the saga on.
			return nil, badReply(endpoint, "reply has no order_id", nil)
		}
		if got := string(d.OutOrderID); got != "" && got != outOrderID {
			// Binding another order's id to ours would corrupt the saga's
			// record of it.
			return nil, badReply(endpoint, fmt.Sprintf("reply is for out_order_id %q, not %q", got, outOrderID), nil)
		}
		return &classified{Class: class, Reply: d}, nil
	}
	return nil, &providers.Error{
		Provider: Provider, Endpoint: endpoint, Class: class, Code: code, Ret: ret,
		Msg: wire.Scrub(env.RetMsg, c.appSecret),
	}
}

// badReply is an HTTP 200 we could not make sense of (wire.BadReply): the
// order may have been created, and create_order is idempotent on
// out_order_id, so asking again is safe and is the only way to know.
func badReply(endpoint, msg string, err error) *providers.Error {
	return wire.BadReply(Provider, endpoint, msg, err)
}
