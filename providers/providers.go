// Package providers holds what the SUD, MOGS and Midas clients share: the
// classified outcome of every provider call and the Wallet abstraction that
// lets the saga debit coins without knowing which provider holds them.
//
// The saga decides from a Class and a Code only. Provider return codes are
// parsed in exactly one place each (the client packages), never above them.
package providers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Class is how a provider call ended, from the caller's point of view.
type Class uint8

const (
	// OK: the call did what was asked, now.
	OK Class = iota
	// AlreadyDone: an earlier call with the same idempotency key did it
	// (duplicate bill_no, bill already cancelled, SUD order already exists).
	AlreadyDone
	// Retryable: nothing is known to have happened; ask again with the same
	// idempotency key (busy, still processing, 5xx, timeout, dropped reply).
	Retryable
	// Final: the provider refused and will refuse again (insufficient
	// balance, login expired, parameter error, risk control, not found).
	Final
)

func (c Class) String() string {
	switch c {
	case OK:
		return "ok"
	case AlreadyDone:
		return "already_done"
	case Retryable:
		return "retryable"
	case Final:
		return "final"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Code is a stable, provider-neutral machine code for a failure. Status
// events and dead letters carry it; metrics and operators filter on it.
type Code string

const (
	CodeInsufficientBalance Code = "insufficient_balance"
	CodeLoginFailed         Code = "login_failed"
	CodeParamError          Code = "param_error"
	CodeRiskControl         Code = "risk_control"
	CodeNotFound            Code = "not_found"      // bill or order unknown to the provider
	CodeAlreadyExists       Code = "already_exists" // SUD 70501, MOGS 90012, Midas 1002215
	CodeAlreadyCancelled    Code = "already_cancelled"
	CodeBusy                Code = "busy"        // provider said busy / still processing
	CodeUnavailable         Code = "unavailable" // 5xx, connection refused or reset, dropped reply
	CodeTimeout             Code = "timeout"
	CodeAuthFailed          Code = "auth_failed"    // bad signature, app key or secret: our configuration
	CodeGameNotFound        Code = "game_not_found" // SUD 10111
	CodeBadReply            Code = "bad_reply"      // a reply we could not decode
	CodeUnknown             Code = "unknown"        // a non-zero code we do not know; treated as final
	// CodeCircuitOpen (Retryable): a circuit breaker (providers/protect)
	// refused the call because the endpoint looks down. The call was never
	// sent, so it had no effect: retrying it later is safe, money calls
	// included.
	CodeCircuitOpen Code = "circuit_open"
)

// Error is the error every provider client returns. Class is Retryable or
// Final; OK and AlreadyDone are never errors.
type Error struct {
	Provider string // "sud", "mogs", "midas"
	Endpoint string // "create_order", "pay", "pay_m", ...
	Class    Class
	Code     Code
	Ret      int    // the provider's own code, 0 when the failure was in transport
	Msg      string // the provider's message; never holds a secret
	Err      error  // the transport cause, if any
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s: %s (%s", e.Provider, e.Endpoint, e.Code, e.Class)
	if e.Ret != 0 {
		s += fmt.Sprintf(", ret %d", e.Ret)
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	s += ")"
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf classifies the error of a provider call: OK for nil, the Error's
// class when err wraps an *Error, and Retryable for anything else, since a
// failure we cannot explain says nothing about whether the call took effect.
func ClassOf(err error) Class {
	if err == nil {
		return OK
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Class
	}
	return Retryable
}

// CodeOf returns the stable code of err, "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return CodeUnknown
}

// TransportError classifies a failure to get a usable HTTP reply. Every such
// failure is Retryable: the request may or may not have reached the provider,
// which is exactly why every call carries an idempotency key.
func TransportError(provider, endpoint string, err error) *Error {
	code := CodeUnavailable
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		code = CodeTimeout
	}
	return &Error{Provider: provider, Endpoint: endpoint, Class: Retryable, Code: code, Err: err}
}

// StatusError classifies a non-200 HTTP status: 5xx and 429 are Retryable,
// anything else is Final with CodeBadReply.
func StatusError(provider, endpoint string, status int) *Error {
	e := &Error{Provider: provider, Endpoint: endpoint, Class: Final, Code: CodeBadReply, Msg: fmt.Sprintf("HTTP %d", status)}
	if status >= 500 || status == http.StatusTooManyRequests {
		e.Class, e.Code = Retryable, CodeUnavailable
	}
	return e
}

// Observer is told about every provider call, for metrics. Implementations
// must be safe for concurrent use and fast.
type Observer interface {
	ObserveCall(provider, endpoint string, class Class, elapsed time.Duration)
}

// NopObserver observes nothing.
type NopObserver struct{}

func (NopObserver) ObserveCall(string, string, Class, time.Duration) {}

var _ Observer = NopObserver{} // checked by the compiler, not by a test that could only call it

// NewHTTPClient returns an HTTP client tuned for many concurrent calls to a
// few hosts: connections are kept and reused, and every request is bounded
// by timeout even when the caller's context is not.
func NewHTTPClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// As many idle connections per host as the worker may have calls in
	// flight (its step limit grows to 2,048 under slow providers, one call
	// per step): with fewer, every reply beyond the idle pool closed its
	// connection and the next call dialled again; at 50 ms per call that
	// churn took 3-5% of the CPU (bench --self --latency-ms 50 profiles).
	t.MaxIdleConns = 4096
	t.MaxIdleConnsPerHost = 2048
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t, Timeout: timeout}
}

// ParamError is a call refused before it left the process: it could only
// have been refused by the provider too.
func ParamError(provider, endpoint, msg string) *Error {
	return &Error{Provider: provider, Endpoint: endpoint, Class: Final, Code: CodeParamError, Msg: msg}
}

// MaxBillNoLen is the longest bill number MOGS and Midas accept.
const MaxBillNoLen = 63

// BillNoProblem says why s cannot be a MOGS or Midas bill number, "" when it
// can. The rule (providers.md, "Learned since": bill numbers) is WeChat
// mini-game midas's, whose field names MOGS shares and which Midas is
// assumed to follow: 1 to 63 characters of [0-9A-Za-z_-], not starting with
// "_". A number that breaks it is refused by the provider, so a saga that
// generated one could never pay.
func BillNoProblem(s string) string {
	switch {
	case s == "":
		return "empty bill number"
	case len(s) > MaxBillNoLen:
		return fmt.Sprintf("bill number of %d characters, at most %d allowed", len(s), MaxBillNoLen)
	case s[0] == '_':
		return fmt.Sprintf("bill number %q starts with _", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || c == '-') {
			return fmt.Sprintf("bill number %q has %q at byte %d, only [0-9A-Za-z_-] allowed", s, c, i)
		}
	}
	return ""
}

// ValidBillNo reports whether s is a bill number MOGS and Midas accept.
func ValidBillNo(s string) bool { return BillNoProblem(s) == "" }

// CheckBillNo refuses, before it leaves the process, a call whose bill
// number the provider would refuse.
func CheckBillNo(provider, endpoint, billNo string) error {
	if p := BillNoProblem(billNo); p != "" {
		return ParamError(provider, endpoint, p)
	}
	return nil
}

// CheckMoneyCall refuses a money-moving call without a valid idempotency
// key or a positive amount before it leaves the process. Without a key a
// provider may invent one (MOGS does), and a retry of that call could
// charge twice; a key outside the bill-number rule is refused by the
// provider anyway.
func CheckMoneyCall(provider, endpoint, key string, amount int64) error {
	if err := CheckBillNo(provider, endpoint, key); err != nil {
		return err
	}
	if amount <= 0 {
		return ParamError(provider, endpoint, fmt.Sprintf("amount must be positive, got %d", amount))
	}
	return nil
}

// CodeRow is what one provider return code means, as data. The clients
// classify every reply by reading their table, and each row says where its
// meaning comes from, so that a doubtful classification can be traced and
// corrected in one place.
type CodeRow struct {
	Ret int
	// Endpoints lists where Ret has this meaning; nil means every endpoint.
	// A row that names the endpoint wins over a row for every endpoint.
	Endpoints []string
	Class     Class
	Code      Code // "" for OK and AlreadyDone
	// Source is the seed document (file name), the providers.md rule, or
	// "assumption: " and what is assumed.
	Source string
}

func (r CodeRow) appliesTo(endpoint string) bool {
	if r.Endpoints == nil {
		return true
	}
	for _, e := range r.Endpoints {
		if e == endpoint {
			return true
		}
	}
	return false
}

// CodeTable is one provider's return codes.
type CodeTable []CodeRow

// Lookup returns the row that gives ret its meaning on endpoint: the row
// naming endpoint, else the row for every endpoint.
func (t CodeTable) Lookup(endpoint string, ret int) (CodeRow, bool) {
	var general *CodeRow
	for i := range t {
		r := &t[i]
		if r.Ret != ret || !r.appliesTo(endpoint) {
			continue
		}
		if r.Endpoints != nil {
			return *r, true
		}
		general = r
	}
	if general != nil {
		return *general, true
	}
	return CodeRow{}, false
}

// Classify maps ret on endpoint to an outcome. A code without a row is
// Final with CodeUnknown: a refusal we cannot read must not be retried into
// a second charge, nor taken for a success.
func (t CodeTable) Classify(endpoint string, ret int) (Class, Code) {
	if r, ok := t.Lookup(endpoint, ret); ok {
		return r.Class, r.Code
	}
	return Final, CodeUnknown
}

// Check reports the first inconsistency of the table: a row without a
// source, a success with a failure code or a failure without one, or two
// rows that give the same code on the same endpoint a meaning.
func (t CodeTable) Check() error {
	type key struct {
		ret      int
		endpoint string // "" for every endpoint
	}
	seen := make(map[key]bool)
	for _, r := range t {
		if r.Source == "" {
			return fmt.Errorf("ret %d has no source", r.Ret)
		}
		success := r.Class == OK || r.Class == AlreadyDone
		if success != (r.Code == "") {
			return fmt.Errorf("ret %d: class %v with code %q", r.Ret, r.Class, r.Code)
		}
		if r.Endpoints != nil && len(r.Endpoints) == 0 {
			return fmt.Errorf("ret %d: an empty endpoint list (nil means every endpoint)", r.Ret)
		}
		eps := r.Endpoints
		if eps == nil {
			eps = []string{""}
		}
		for _, e := range eps {
			if seen[key{r.Ret, e}] {
				return fmt.Errorf("ret %d has two rows for endpoint %q", r.Ret, e)
			}
			seen[key{r.Ret, e}] = true
		}
	}
	return nil
}
