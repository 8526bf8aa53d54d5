package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// AccountView is the true state of a coin account (hidden debits included).
type AccountView struct {
	Balance     int64 `json:"balance"`
	GenBalance  int64 `json:"gen_balance"`
	SaveAmt     int64 `json:"save_amt"`
	SaveSum     int64 `json:"save_sum"`
	CostSum     int64 `json:"cost_sum"`
	PresentSums int64 `json:"present_sums"`
}

// Bill is one pay or present the sandbox accepted.
type Bill struct {
	Provider   string    `json:"provider"` // "mogs" or "midas"
	AppID      string    `json:"appid"`
	OpenID     string    `json:"openid"`
	BillNo     string    `json:"bill_no"`
	Kind       string    `json:"kind"` // "pay" or "present"
	Amt        int64     `json:"amt"`
	UsedGenAmt int64     `json:"used_gen_amt"`
	Cancelled  bool      `json:"cancelled"`
	At         time.Time `json:"at"`
}

// SUDOrder is one order SUD create_order accepted.
type SUDOrder struct {
	OutOrderID string `json:"out_order_id"`
	OrderID    string `json:"order_id"`
	Status     string `json:"status"`
}

// ErrNotFound is returned (wrapped) by AdminClient.Account for an account
// that was never touched.
var ErrNotFound = errors.New("sandbox: not found")

func mustProvider(name string) provider {
	p, ok := parseProvider(name)
	if !ok {
		panic(fmt.Sprintf("sandbox: provider %q is not \"mogs\" or \"midas\"", name))
	}
	return p
}

// Account returns the true state of an account, false if it was never
// touched. provider is "mogs" or "midas"; anything else panics.
func (s *Sandbox) Account(provider, appid, openid string) (AccountView, bool) {
	return s.ledger.peek(mustProvider(provider), appid, openid)
}

// SetAccount sets balance and gen_balance, creating the account if needed
// (its save_amt and save_sum then equal balance-genBalance, present_sums
// genBalance; an existing account keeps its counters). It panics on an
// unknown provider or on balances that are negative or gen > balance.
func (s *Sandbox) SetAccount(provider, appid, openid string, balance, genBalance int64) {
	if err := checkBalances(balance, genBalance); err != nil {
		panic("sandbox: SetAccount: " + err.Error())
	}
	p := mustProvider(provider)
	defer s.changing()()
	s.ledger.set(p, appid, openid, balance, genBalance)
}

func checkBalances(balance, gen int64) error {
	if balance < 0 || gen < 0 || gen > balance {
		return fmt.Errorf("need 0 <= gen_balance (%d) <= balance (%d)", gen, balance)
	}
	return nil
}

// Bills lists every bill in the order they were made.
func (s *Sandbox) Bills() []Bill {
	return s.ledger.allBills(func(*Bill) bool { return true })
}

// SUDOrders lists every SUD order in the order they were created.
func (s *Sandbox) SUDOrders() []SUDOrder { return s.sud.list(s.now()) }

func (s *Sandbox) adminRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /_sandbox/accounts/{provider}/{appid}/{openid}", s.admin(s.adminGetAccount))
	m.HandleFunc("PUT /_sandbox/accounts/{provider}/{appid}/{openid}", s.admin(s.adminPutAccount))
	m.HandleFunc("GET /_sandbox/bills", s.admin(s.adminBills))
	m.HandleFunc("GET /_sandbox/sud/orders", s.admin(s.adminSUDOrders))
	m.HandleFunc("PUT /_sandbox/sud/notify", s.admin(s.adminPutSUDNotify))
	m.HandleFunc("GET /_sandbox/faults", s.admin(s.adminGetFaults))
	m.HandleFunc("POST /_sandbox/faults", s.admin(s.adminPostFault))
	m.HandleFunc("DELETE /_sandbox/faults", s.admin(s.adminDeleteFaults))
	m.HandleFunc("POST /_sandbox/clock", s.admin(s.adminPostClock))
}

// admin guards the admin API: it can set any balance, so only local
// processes may use it unless the operator said otherwise.
func (s *Sandbox) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.AllowRemoteAdmin && !isLoopback(r.RemoteAddr) {
			adminError(w, http.StatusForbidden, "admin API is loopback only")
			return
		}
		h(w, r)
	}
}

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeStrictBody decodes an admin request's JSON body, at most 64 KiB,
// into v, refusing unknown fields: a misspelt field (a rate, a URL) must
// not silently mean its zero value.
func decodeStrictBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func adminError(w http.ResponseWriter, status int, msg string) {
	adminJSON(w, status, map[string]string{"error": msg})
}

func (s *Sandbox) adminGetAccount(w http.ResponseWriter, r *http.Request) {
	p, ok := parseProvider(r.PathValue("provider"))
	if !ok {
		adminError(w, http.StatusBadRequest, `provider must be "mogs" or "midas"`)
		return
	}
	v, ok := s.ledger.peek(p, r.PathValue("appid"), r.PathValue("openid"))
	if !ok {
		adminError(w, http.StatusNotFound, "account not found")
		return
	}
	adminJSON(w, http.StatusOK, v)
}

func (s *Sandbox) adminPutAccount(w http.ResponseWriter, r *http.Request) {
	p, ok := parseProvider(r.PathValue("provider"))
	if !ok {
		adminError(w, http.StatusBadRequest, `provider must be "mogs" or "midas"`)
		return
	}
	var body struct {
		Balance    *int64 `json:"balance"`
		GenBalance int64  `json:"gen_balance"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil || body.Balance == nil {
		adminError(w, http.StatusBadRequest, `body must be {"balance":N,"gen_balance":M}`)
		return
	}
	if err := checkBalances(*body.Balance, body.GenBalance); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	appid, openid := r.PathValue("appid"), r.PathValue("openid")
	done := s.changing()
	s.ledger.set(p, appid, openid, *body.Balance, body.GenBalance)
	done()
	v, _ := s.ledger.peek(p, appid, openid)
	adminJSON(w, http.StatusOK, v)
}

func (s *Sandbox) adminBills(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	openid, prov, appid := q.Get("openid"), q.Get("provider"), q.Get("appid")
	bills := s.ledger.allBills(func(b *Bill) bool {
		return (openid == "" || b.OpenID == openid) && (prov == "" || b.Provider == prov) && (appid == "" || b.AppID == appid)
	})
	if bills == nil {
		bills = []Bill{}
	}
	adminJSON(w, http.StatusOK, bills)
}

func (s *Sandbox) adminSUDOrders(w http.ResponseWriter, r *http.Request) {
	adminJSON(w, http.StatusOK, s.sud.list(s.now()))
}

// adminPutSUDNotify sets where SUD's order notifications go:
// {"url":"http://..."}, or {"url":""} to stop them.
func (s *Sandbox) adminPutSUDNotify(w http.ResponseWriter, r *http.Request) {
	var body struct {
		URL *string `json:"url"`
	}
	if err := decodeStrictBody(w, r, &body); err != nil || body.URL == nil {
		adminError(w, http.StatusBadRequest, `body must be {"url":"..."}`)
		return
	}
	if err := checkSUDNotifyURL(*body.URL); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.setSUDNotifyURL(*body.URL)
	adminJSON(w, http.StatusOK, map[string]string{"url": *body.URL})
}

func (s *Sandbox) adminGetFaults(w http.ResponseWriter, r *http.Request) {
	adminJSON(w, http.StatusOK, s.faults.list())
}

func (s *Sandbox) adminPostFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := decodeStrictBody(w, r, &f); err != nil {
		adminError(w, http.StatusBadRequest, "bad fault: "+err.Error())
		return
	}
	if err := f.validate(); err != nil {
		adminError(w, http.StatusBadRequest, "bad fault: "+err.Error())
		return
	}
	s.faults.put(f)
	adminJSON(w, http.StatusOK, f)
}

func (s *Sandbox) adminDeleteFaults(w http.ResponseWriter, r *http.Request) {
	s.faults.clear()
	w.WriteHeader(http.StatusNoContent)
}

// AdminClient drives a sandbox's admin API from another process.
type AdminClient struct {
	BaseURL string // e.g. "http://127.0.0.1:9311"
	HTTP    *http.Client
}

// NewAdminClient returns a client for the sandbox at baseURL.
func NewAdminClient(baseURL string) *AdminClient {
	return &AdminClient{BaseURL: strings.TrimRight(baseURL, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

func (a *AdminClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("sandbox admin %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.BaseURL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("sandbox admin %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := a.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("sandbox admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return fmt.Errorf("sandbox admin %s %s: read reply: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		err := fmt.Errorf("sandbox admin %s %s: HTTP %d: %s", method, path, resp.StatusCode, e.Error)
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("sandbox admin %s %s: decode reply: %w", method, path, err)
		}
	}
	return nil
}

func accountPath(provider, appid, openid string) string {
	return "/_sandbox/accounts/" + url.PathEscape(provider) + "/" + url.PathEscape(appid) + "/" + url.PathEscape(openid)
}

// Account returns an account's true state; an untouched account is an
// error wrapping ErrNotFound.
func (a *AdminClient) Account(ctx context.Context, provider, appid, openid string) (AccountView, error) {
	var v AccountView
	err := a.do(ctx, http.MethodGet, accountPath(provider, appid, openid), nil, &v)
	return v, err
}

// SetAccount sets an account's balance and gen_balance.
func (a *AdminClient) SetAccount(ctx context.Context, provider, appid, openid string, balance, genBalance int64) error {
	in := map[string]int64{"balance": balance, "gen_balance": genBalance}
	return a.do(ctx, http.MethodPut, accountPath(provider, appid, openid), in, nil)
}

// Bills lists every bill.
func (a *AdminClient) Bills(ctx context.Context) ([]Bill, error) {
	var out []Bill
	err := a.do(ctx, http.MethodGet, "/_sandbox/bills", nil, &out)
	return out, err
}

// BillsOf lists the bills of one player at one provider ("" = any).
func (a *AdminClient) BillsOf(ctx context.Context, provider, openid string) ([]Bill, error) {
	q := url.Values{}
	if provider != "" {
		q.Set("provider", provider)
	}
	if openid != "" {
		q.Set("openid", openid)
	}
	var out []Bill
	err := a.do(ctx, http.MethodGet, "/_sandbox/bills?"+q.Encode(), nil, &out)
	return out, err
}

// SUDOrders lists every SUD order.
func (a *AdminClient) SUDOrders(ctx context.Context) ([]SUDOrder, error) {
	var out []SUDOrder
	err := a.do(ctx, http.MethodGet, "/_sandbox/sud/orders", nil, &out)
	return out, err
}

// SetFault sets or replaces the fault of f.Endpoint.
func (a *AdminClient) SetFault(ctx context.Context, f Fault) error {
	return a.do(ctx, http.MethodPost, "/_sandbox/faults", f, nil)
}

// Faults lists the faults in force.
func (a *AdminClient) Faults(ctx context.Context) ([]Fault, error) {
	var out []Fault
	err := a.do(ctx, http.MethodGet, "/_sandbox/faults", nil, &out)
	return out, err
}

// ClearFaults removes every fault.
func (a *AdminClient) ClearFaults(ctx context.Context) error {
	return a.do(ctx, http.MethodDelete, "/_sandbox/faults", nil, nil)
}
