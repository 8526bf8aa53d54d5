package wire

// One call of a client over HTTP: what the three clients (SUD, MOGS, Midas)
// do alike between building a request and reading their own reply.

import (
	"io"
	"net/http"
	"time"

	"github.com/coinsaga/coinsaga/providers"
)

// DefaultTimeout bounds every call of a client configured without one.
const DefaultTimeout = 5 * time.Second

// Caller is what a client needs to send calls: its name, the HTTP client,
// the per-call timeout and the observer of every call.
type Caller struct {
	Provider string
	HTTP     *http.Client
	Timeout  time.Duration
	Observer providers.Observer
}

// NewCaller returns a Caller for provider, filling in the defaults of what
// the client's configuration left out: DefaultTimeout, an HTTP client with
// that timeout, an observer that records nothing.
func NewCaller(provider string, hc *http.Client, timeout time.Duration, obs providers.Observer) Caller {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if hc == nil {
		hc = providers.NewHTTPClient(timeout)
	}
	if obs == nil {
		obs = providers.NopObserver{}
	}
	return Caller{Provider: provider, HTTP: hc, Timeout: timeout, Observer: obs}
}

// Classified is a decoded reply that a client classified as a success (OK
// or AlreadyDone); every other outcome is a *providers.Error instead.
type Classified[R any] struct {
	Reply R
	Class providers.Class
}

// Observe runs one call on endpoint and reports to the observer how it
// ended and how long it took. call returns a success or an error, never
// both.
func Observe[R any](c Caller, endpoint string, call func() (*Classified[R], error)) (*Classified[R], error) {
	start := time.Now()
	rep, err := call()
	class := providers.ClassOf(err)
	if rep != nil {
		class = rep.Class
	}
	c.Observer.ObserveCall(c.Provider, endpoint, class, time.Since(start))
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// Fetch sends req and returns the body of a 200 reply, read up to
// MaxReply. A transport error loses the query of its URL (RedactURL).
func (c Caller) Fetch(endpoint string, req *http.Request) ([]byte, *providers.Error) {
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, providers.TransportError(c.Provider, endpoint, RedactURL(err))
	}
	defer DrainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, providers.StatusError(c.Provider, endpoint, resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxReply+1))
	if err != nil {
		return nil, providers.TransportError(c.Provider, endpoint, RedactURL(err))
	}
	if len(raw) > MaxReply {
		return nil, BadReply(c.Provider, endpoint, "reply larger than 1 MiB", nil)
	}
	return raw, nil
}

// BadReply is an HTTP 200 a client could not make sense of. It is
// Retryable: the call may have taken effect, and only asking again with the
// same idempotency key (bill number, out_order_id) can tell; a reply that
// stays broken exhausts the caller's retries, which for a pay leads to
// compensation, the safe end.
func BadReply(provider, endpoint, msg string, err error) *providers.Error {
	return &providers.Error{Provider: provider, Endpoint: endpoint, Class: providers.Retryable, Code: providers.CodeBadReply, Msg: msg, Err: err}
}

// WalletReply is what the replies of both wallets (MOGS, Midas) carry under
// the same names: what classifies a reply, and the figures of a pay or a
// present. Pointers tell an absent field from a zero one: an AlreadyDone
// pay may omit the balance.
type WalletReply struct {
	Ret        *FlexInt `json:"ret"`
	Balance    *FlexInt `json:"balance"`
	GenBalance FlexInt  `json:"gen_balance"`
	SaveAmt    FlexInt  `json:"save_amt"`
	UsedGenAmt FlexInt  `json:"used_gen_amt"`
}

// AccountBalance is the balance read as the reply reported it; firstSave
// is the wallet's own field for it. A balance read that succeeded always
// carries the balance (ClassifyWallet with needBalance).
func (r WalletReply) AccountBalance(firstSave FlexBool) providers.Balance {
	return providers.Balance{
		Balance:    int64(*r.Balance),
		GenBalance: int64(r.GenBalance),
		SaveAmt:    int64(r.SaveAmt),
		FirstSave:  bool(firstSave),
	}
}

// DebitReply is the pay with billNo as the reply reported it, class
// already known; the balance is known only when the reply carried it.
func (r WalletReply) DebitReply(class providers.Class, billNo string) providers.DebitReply {
	out := providers.DebitReply{Class: class, BillNo: billNo, UsedGenAmt: int64(r.UsedGenAmt)}
	if r.Balance != nil {
		out.Balance, out.BalanceKnown = int64(*r.Balance), true
	}
	return out
}

// PresentReply is the present with billNo as the reply reported it.
func (r WalletReply) PresentReply(class providers.Class, billNo string) providers.PresentReply {
	out := providers.PresentReply{Class: class, BillNo: billNo}
	if r.Balance != nil {
		out.Balance = int64(*r.Balance)
	}
	return out
}

// ClassifyWallet classifies a decoded wallet reply by codes: the class of a
// success, or the error of any other outcome, its message scrubbed of the
// secrets. needBalance says the endpoint's success must carry the balance:
// the saga confirms a debit against it, so a success without it is a reply
// we cannot use.
func (c Caller) ClassifyWallet(endpoint string, codes providers.CodeTable, h WalletReply, needBalance bool, msg string, secrets ...string) (providers.Class, *providers.Error) {
	if h.Ret == nil {
		return 0, BadReply(c.Provider, endpoint, "reply has no ret", nil)
	}
	ret := int(*h.Ret)
	class, code := codes.Classify(endpoint, ret)
	switch class {
	case providers.OK:
		if h.Balance == nil && needBalance {
			return 0, BadReply(c.Provider, endpoint, "reply has no balance", nil)
		}
		return class, nil
	case providers.AlreadyDone:
		return class, nil
	}
	return 0, &providers.Error{
		Provider: c.Provider, Endpoint: endpoint, Class: class, Code: code, Ret: ret,
		Msg: Scrub(msg, secrets...),
	}
}
