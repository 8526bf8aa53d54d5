package sud

// Endpoint discovery: the URLs of create_order and query_order, fetched
// from the ASC service and cached for the discovery TTL.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/coinsaga/coinsaga/providers"
)

type endpoints struct {
	CreateOrder string `json:"create_order"`
	QueryOrder  string `json:"query_order"`
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
		c.caller.Observer.ObserveCall(Provider, endpoint, pe.Class, 0)
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
		c.caller.Observer.ObserveCall(Provider, EndpointDiscovery, providers.ClassOf(err), time.Since(start))
	}()
	// The discovery key is derived from the secret: keep it out of errors.
	req, rerr := http.NewRequestWithContext(ctx, http.MethodGet, c.ascURL+"/"+DiscoveryKey(c.appSecret, c.appID), nil)
	if rerr != nil {
		return endpoints{}, providers.ParamError(Provider, EndpointDiscovery, "bad ASC base URL")
	}
	raw, perr := c.caller.Fetch(EndpointDiscovery, req)
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
