// Package sud is the client of SUD's app-server API: create_order (the
// in-game paid order) and query_order (how a worker that lost a reply
// learns whether the order exists, and SUD's verdict on the action),
// signed with Sud-Auth, with endpoint discovery; and NotifyHandler, the
// receiver of SUD's signed order notifications. It classifies every reply
// into a providers.Class and Code from one table (CodeTable) and is the
// only place in coinsaga that knows SUD's return codes.
package sud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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
	DefaultTimeout = 5 * time.Second
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
	http      *http.Client
	timeout   time.Duration
	obs       providers.Observer
	now       func() time.Time
	ttl       time.Duration

	mu       sync.Mutex
	disc     endpoints     // the last discovered copy; zero until the first success
	staleAt  time.Time     // when disc must be fetched again
	inflight chan struct{} // non-nil while a discovery fetch runs; closed when it ends
}

type endpoints struct {
	CreateOrder string `json:"create_order"`
	QueryOrder  string `json:"query_order"`
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
		http:      cfg.HTTP,
		timeout:   cfg.Timeout,
		obs:       cfg.Observer,
		now:       cfg.Now,
		ttl:       cfg.DiscoveryTTL,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.http == nil {
		c.http = providers.NewHTTPClient(c.timeout)
	}
	if c.obs == nil {
		c.obs = providers.NopObserver{}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.ttl <= 0 {
		c.ttl = DefaultDiscoveryTTL
	}
	return c, nil
}

// CreateOrderRequest is create_order's body, field for field.
type CreateOrderRequest struct {
	OutOrderID string          `json:"out_order_id"`
	OutGroupID string          `json:"out_group_id,omitempty"`
	MGID       string          `json:"mg_id"`
	RoomID     string          `json:"room_id"`
	Cmd        string          `json:"cmd"`
	FromUID    string          `json:"from_uid"`
	ToUID      string          `json:"to_uid"`
	Value      int32           `json:"value"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}

// CreateOrderReply is a successful create_order. On AlreadyDone (70501:
// the out_order_id exists) SUD does not say its order_id, so OrderID is
// empty and the caller asks QueryOrder.
type CreateOrderReply struct {
	Class      providers.Class
	OutOrderID string
	OrderID    string
}

// Order is what query_order (and an order notification) reports: the
// order's status and the fields it was created with, so that a worker that
// adopts an existing order can check it is the same order (mg_id, cmd,
// value, uids). A field SUD left out of its reply is empty: it did not say,
// which is not the same as a match.
type Order struct {
	OutOrderID string
	OrderID    string
	Status     string // StatusCreated, StatusExecuting, StatusExecuteFail, StatusExecuteSuccess
	OutGroupID string
	MgID       string
	RoomID     string
	Cmd        string
	FromUID    string
	ToUID      string
	// Value is as SUD wrote it, not narrowed to the int32 it should be,
	// so that a value no order of ours can have never looks like ours.
	Value int64
	// Payload is the payload object as SUD wrote it, "" when absent. SUD
	// may re-encode it (key order, spacing): compare it as JSON, not bytes.
	Payload string
}

// envelope is SUD's BaseResp.
type envelope struct {
	RetCode *wire.FlexInt   `json:"ret_code"`
	RetMsg  string          `json:"ret_msg"`
	Data    json.RawMessage `json:"data"`
}

// orderData is create_order's and query_order's data, and a notification's.
// The field names are those of SUD's public query_order doc
// (AppServerQueryOrderResp), which are create_order's own.
type orderData struct {
	OutOrderID wire.FlexString `json:"out_order_id"`
	OrderID    wire.FlexString `json:"order_id"`
	Status     string          `json:"status"`
	OutGroupID wire.FlexString `json:"out_group_id"`
	MgID       wire.FlexString `json:"mg_id"`
	RoomID     wire.FlexString `json:"room_id"`
	Cmd        string          `json:"cmd"`
	FromUID    wire.FlexString `json:"from_uid"`
	ToUID      wire.FlexString `json:"to_uid"`
	Value      wire.FlexInt    `json:"value"`
	Payload    json.RawMessage `json:"payload"`
}

// order is d as an Order.
func (d orderData) order() Order {
	o := Order{
		OutOrderID: string(d.OutOrderID), OrderID: string(d.OrderID), Status: d.Status,
		OutGroupID: string(d.OutGroupID), MgID: string(d.MgID), RoomID: string(d.RoomID), Cmd: d.Cmd,
		FromUID: string(d.FromUID), ToUID: string(d.ToUID), Value: int64(d.Value),
	}
	if p := bytes.TrimSpace(d.Payload); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
		o.Payload = string(p)
	}
	return o
}

// CreateOrder places the in-game paid order, keyed by r.OutOrderID.
func (c *Client) CreateOrder(ctx context.Context, r CreateOrderRequest) (CreateOrderReply, error) {
	if err := checkID(EndpointCreateOrder, "out_order_id", r.OutOrderID, true); err != nil {
		return CreateOrderReply{}, err
	}
	if err := checkID(EndpointCreateOrder, "out_group_id", r.OutGroupID, false); err != nil {
		return CreateOrderReply{}, err
	}
	if p := bytes.TrimSpace(r.Payload); len(p) == 0 || bytes.Equal(p, []byte("null")) {
		r.Payload = nil
	}
	body, err := json.Marshal(r)
	if err != nil {
		return CreateOrderReply{}, providers.ParamError(Provider, EndpointCreateOrder, "encode request: "+err.Error())
	}
	env, err := c.call(ctx, EndpointCreateOrder, r.OutOrderID, body)
	if err != nil {
		return CreateOrderReply{}, err
	}
	if env.class == providers.AlreadyDone {
		return CreateOrderReply{Class: providers.AlreadyDone, OutOrderID: r.OutOrderID}, nil
	}
	return CreateOrderReply{Class: providers.OK, OutOrderID: r.OutOrderID, OrderID: string(env.data.OrderID)}, nil
}

// QueryOrder reports the order with outOrderID; an unknown order (70503)
// is a Final error with CodeNotFound.
func (c *Client) QueryOrder(ctx context.Context, outOrderID string) (Order, error) {
	if err := checkID(EndpointQueryOrder, "out_order_id", outOrderID, true); err != nil {
		return Order{}, err
	}
	body, err := json.Marshal(struct {
		OutOrderID string `json:"out_order_id"`
	}{outOrderID})
	if err != nil {
		return Order{}, providers.ParamError(Provider, EndpointQueryOrder, "encode request: "+err.Error())
	}
	env, err := c.call(ctx, EndpointQueryOrder, outOrderID, body)
	if err != nil {
		return Order{}, err
	}
	o := env.data.order()
	o.OutOrderID = outOrderID // the reply may leave it out; it cannot differ (see roundTrip)
	return o, nil
}

// checkID refuses an id SUD would refuse, before it leaves the process.
func checkID(endpoint, name, v string, required bool) error {
	switch {
	case required && v == "":
		return providers.ParamError(Provider, endpoint, "empty "+name)
	case utf8.RuneCountInString(v) > maxOutOrderID:
		return providers.ParamError(Provider, endpoint, fmt.Sprintf("%s longer than %d characters", name, maxOutOrderID))
	}
	return nil
}

// classified is a decoded reply that the call classified as a success.
type classified struct {
	class providers.Class
	data  orderData
}

// call performs one signed request about the order outOrderID and
// classifies the reply, reporting it to the observer.
func (c *Client) call(ctx context.Context, endpoint, outOrderID string, body []byte) (*classified, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	target, err := c.endpointURL(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rep, err := c.roundTrip(ctx, endpoint, target, outOrderID, body)
	class := providers.ClassOf(err)
	if rep != nil {
		class = rep.class
	}
	c.obs.ObserveCall(Provider, endpoint, class, time.Since(start))
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

	raw, perr := c.fetch(endpoint, req)
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
		return &classified{class: class}, nil
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
		return &classified{class: class, data: d}, nil
	}
	return nil, &providers.Error{
		Provider: Provider, Endpoint: endpoint, Class: class, Code: code, Ret: ret,
		Msg: wire.Scrub(env.RetMsg, c.appSecret),
	}
}

// fetch sends req and returns the body of a 200 reply, read up to wire.MaxReply.
func (c *Client) fetch(endpoint string, req *http.Request) ([]byte, *providers.Error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, providers.TransportError(Provider, endpoint, err)
	}
	defer wire.DrainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, providers.StatusError(Provider, endpoint, resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxReply+1))
	if err != nil {
		return nil, providers.TransportError(Provider, endpoint, err)
	}
	if len(raw) > wire.MaxReply {
		return nil, badReply(endpoint, "reply larger than 1 MiB", nil)
	}
	return raw, nil
}

// badReply is an HTTP 200 we could not make sense of. It is Retryable: the
// order may have been created, and create_order is idempotent on
// out_order_id, so asking again is safe and is the only way to know.
func badReply(endpoint, msg string, err error) *providers.Error {
	return &providers.Error{Provider: Provider, Endpoint: endpoint, Class: providers.Retryable, Code: providers.CodeBadReply, Msg: msg, Err: err}
}

// endpointURL returns the URL of endpoint: the configured one, or the
// discovered one.
func (c *Client) endpointURL(ctx context.Context, endpoint string) (string, error) {
	configured := c.createURL
	if endpoint == EndpointQueryOrder {
		configured = c.queryURL
	}
	if configured != "" {
		return configured, nil
	}
	eps, err := c.discover(ctx)
	if err != nil {
		// Nothing was sent to the endpoint itself: asking again later is
		// safe, whatever the discovery failure was.
		pe := &providers.Error{Provider: Provider, Endpoint: endpoint, Class: providers.Retryable, Code: providers.CodeUnavailable, Msg: "endpoint discovery failed", Err: err}
		c.obs.ObserveCall(Provider, endpoint, pe.Class, 0)
		return "", pe
	}
	u := eps.CreateOrder
	if endpoint == EndpointQueryOrder {
		u = eps.QueryOrder
	}
	if u == "" {
		return "", &providers.Error{Provider: Provider, Endpoint: endpoint, Class: providers.Final, Code: providers.CodeBadReply, Msg: "discovery lists no URL for " + endpoint}
	}
	return u, nil
}

// discover returns the cached endpoints, fetching them when there are none
// or they are stale. While a refresh of an existing copy runs, other
// callers use the old copy rather than wait; when a refresh fails, the old
// copy stays in use and the next refresh waits discoveryRetryAfter.
func (c *Client) discover(ctx context.Context) (endpoints, error) {
	for {
		c.mu.Lock()
		have := c.disc != (endpoints{})
		if have && c.now().Before(c.staleAt) {
			eps := c.disc
			c.mu.Unlock()
			return eps, nil
		}
		if ch := c.inflight; ch != nil {
			if have {
				eps := c.disc
				c.mu.Unlock()
				return eps, nil
			}
			c.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return endpoints{}, ctx.Err()
			}
		}
		ch := make(chan struct{})
		c.inflight = ch
		c.mu.Unlock()

		eps, err := c.fetchEndpoints(ctx)

		c.mu.Lock()
		c.inflight = nil
		close(ch)
		now := c.now()
		switch {
		case err == nil:
			c.disc, c.staleAt = eps, now.Add(c.ttl)
		case have:
			eps, err = c.disc, nil
			c.staleAt = now.Add(min(discoveryRetryAfter, c.ttl))
		}
		c.mu.Unlock()
		return eps, err
	}
}

// invalidate marks the discovered copy stale after a transport failure on
// a discovered endpoint, so that the next call looks it up again.
func (c *Client) invalidate(endpoint string) {
	if (endpoint == EndpointCreateOrder && c.createURL != "") || (endpoint == EndpointQueryOrder && c.queryURL != "") {
		return
	}
	c.mu.Lock()
	c.staleAt = time.Time{}
	c.mu.Unlock()
}

// fetchEndpoints performs one discovery request.
func (c *Client) fetchEndpoints(ctx context.Context) (eps endpoints, err error) {
	start := time.Now()
	defer func() {
		c.obs.ObserveCall(Provider, EndpointDiscovery, providers.ClassOf(err), time.Since(start))
	}()
	// The discovery key is derived from the secret: keep it out of errors.
	req, rerr := http.NewRequestWithContext(ctx, http.MethodGet, c.ascURL+"/"+DiscoveryKey(c.appSecret, c.appID), nil)
	if rerr != nil {
		return endpoints{}, providers.ParamError(Provider, EndpointDiscovery, "bad ASC base URL")
	}
	raw, perr := c.fetch(EndpointDiscovery, req)
	if perr != nil {
		perr.Err = redactDiscovery(perr.Err)
		return endpoints{}, perr
	}
	var rep struct {
		API endpoints `json:"api"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		return endpoints{}, badReply(EndpointDiscovery, "undecodable discovery reply", err)
	}
	if rep.API == (endpoints{}) {
		return endpoints{}, badReply(EndpointDiscovery, "discovery reply lists no endpoints", nil)
	}
	for _, u := range []string{rep.API.CreateOrder, rep.API.QueryOrder} {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || p.Scheme == "" || p.Host == "" {
			return endpoints{}, badReply(EndpointDiscovery, "discovery lists a URL that is not absolute: "+strconv.Quote(u), nil)
		}
	}
	return rep.API, nil
}

// redactDiscovery replaces the URL in a transport error of the discovery
// call by its host: the path is derived from the app secret.
func redactDiscovery(err error) error {
	var ue *url.Error
	if err == nil || !errors.As(err, &ue) {
		return err
	}
	u := ue.URL
	if p, perr := url.Parse(u); perr == nil {
		u = p.Scheme + "://" + p.Host + "/…"
	}
	return &url.Error{Op: ue.Op, URL: u, Err: ue.Err}
}
