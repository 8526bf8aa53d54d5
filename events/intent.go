package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxIntentSize is the largest intent accepted, in bytes. An intent is a
// few hundred bytes; anything near this is a bug or an attack.
const MaxIntentSize = 64 << 10

// maxFieldLen is SUD's limit on its string fields (64 characters).
const maxFieldLen = 64

// maxPaymentFieldLen bounds provider strings (openid, tokens) that have no
// documented limit, generously, so a runaway value is refused early.
const maxPaymentFieldLen = 1024

// InvalidError says an intent cannot become an order at all: it is
// oversize, not a JSON object of the right shape, or one of its ids is not
// a safe subject token. Its dead-letter reason is ReasonInvalid, on the
// _invalid subject. Reason never quotes secrets.
type InvalidError struct {
	Reason string
}

func (e *InvalidError) Error() string { return "invalid intent: " + e.Reason }

// DeadLetterReason is the Reason a dead letter for this error carries.
func (e *InvalidError) DeadLetterReason() Reason { return ReasonInvalid }

// ValidationError says a well-formed intent was refused: Field is the JSON
// path of the first offending field (e.g. "payment.mogs.js_code",
// "payload.role_id") and Problem says what is wrong with it, without ever
// quoting a secret. Its dead-letter reason is ReasonRejected.
type ValidationError struct {
	Field   string
	Problem string
}

func (e *ValidationError) Error() string { return "rejected intent: " + e.Field + " " + e.Problem }

// DeadLetterReason is the Reason a dead letter for this error carries.
func (e *ValidationError) DeadLetterReason() Reason { return ReasonRejected }

func reject(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// ValidID reports whether s may be used as mg_id, room_id or out_order_id:
// ^[A-Za-z0-9_-]{1,64}$, which makes it a single safe NATS subject token.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > maxFieldLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// DecodeIntent parses one intent message. Every error is an
// *InvalidError: the bytes are too large, not a JSON object of the
// Intent shape, or carry ids that are not safe subject tokens. Unknown
// keys are ignored so publishers can add fields ahead of the workers. A
// payload of JSON null counts as absent; any other payload is kept,
// compacted, for Validate to judge.
func DecodeIntent(data []byte) (Intent, error) {
	var in Intent
	if len(data) > MaxIntentSize {
		return in, &InvalidError{Reason: fmt.Sprintf("%d bytes exceeds the %d-byte limit", len(data), MaxIntentSize)}
	}
	if !isJSONObject(data) {
		return in, &InvalidError{Reason: "not a JSON object"}
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return Intent{}, &InvalidError{Reason: describeJSONError(err)}
	}
	if payloadAbsent(in.Payload) {
		in.Payload = nil
	} else {
		var buf bytes.Buffer
		if err := json.Compact(&buf, in.Payload); err != nil {
			return Intent{}, &InvalidError{Reason: "payload is not valid JSON"}
		}
		in.Payload = buf.Bytes()
	}
	for _, id := range [...]struct{ name, v string }{
		{"out_order_id", in.OutOrderID}, {"mg_id", in.MgID}, {"room_id", in.RoomID},
	} {
		if id.v == "" {
			return Intent{}, &InvalidError{Reason: id.name + " is missing"}
		}
		if !ValidID(id.v) {
			return Intent{}, &InvalidError{Reason: fmt.Sprintf("%s %.64q must match ^[A-Za-z0-9_-]{1,64}$", id.name, id.v)}
		}
	}
	return in, nil
}

// describeJSONError keeps the position and the field but drops what
// encoding/json quotes from the input, which may be part of a secret.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		// Value may be "number 123...": keep only the kind.
		kind, _, _ := strings.Cut(typ.Value, " ")
		if typ.Field == "" {
			return fmt.Sprintf("wrong JSON type at byte %d: %s where %s is expected", typ.Offset, kind, typ.Type)
		}
		return fmt.Sprintf("field %s: %s where %s is expected", typ.Field, kind, typ.Type)
	default:
		return "malformed JSON"
	}
}

// Validate checks a decoded intent against the contract and, for known
// games, the catalog (c may be nil: generic checks only). It returns a
// *ValidationError for the first problem found, nil if there is none.
func (in *Intent) Validate(c *Catalog) error {
	for _, id := range [...]struct{ name, v string }{
		{"out_order_id", in.OutOrderID}, {"mg_id", in.MgID}, {"room_id", in.RoomID},
	} {
		if !ValidID(id.v) {
			return reject(id.name, "must match ^[A-Za-z0-9_-]{1,64}$")
		}
	}
	for _, f := range [...]struct{ name, v string }{
		{"cmd", in.Cmd}, {"from_uid", in.FromUID}, {"to_uid", in.ToUID},
	} {
		if err := checkText(f.name, f.v, true, maxFieldLen); err != nil {
			return err
		}
	}
	if err := checkText("out_group_id", in.OutGroupID, false, maxFieldLen); err != nil {
		return err
	}
	if !payloadAbsent(in.Payload) && !isJSONObject(in.Payload) {
		return reject("payload", "must be a JSON object")
	}
	if _, known := c.game(in.MgID); known {
		if err := c.CheckCommand(in.MgID, in.Cmd, in.Value, in.Payload); err != nil {
			return err
		}
	} else if in.Value < 0 {
		return reject("value", "must not be negative, got %d", in.Value)
	}
	return in.Payment.validate()
}

// game is Game that tolerates a nil catalog.
func (c *Catalog) game(mgID string) (Game, bool) {
	if c == nil {
		return Game{}, false
	}
	return c.Game(mgID)
}

func (p *Payment) validate() error {
	if *p == (Payment{}) {
		// Absent, null or {}: say so rather than which provider it lacks.
		return reject("payment", "is missing: give provider, amount, openid and the provider's block")
	}
	if p.Provider != ProviderMOGS && p.Provider != ProviderMidas {
		return reject("payment.provider", "must be %q or %q", ProviderMOGS, ProviderMidas)
	}
	if p.Amount < 1 || p.Amount > maxInt32 {
		return reject("payment.amount", "must be between 1 and %d, got %d", maxInt32, p.Amount)
	}
	if err := checkText("payment.openid", p.OpenID, true, maxPaymentFieldLen); err != nil {
		return err
	}
	if p.Provider == ProviderMOGS {
		return p.MOGS.validate()
	}
	return p.Midas.validate()
}

func (m *MOGSPayment) validate() error {
	if m == nil {
		return reject("payment.mogs", "is required when the provider is mogs")
	}
	if err := checkText("payment.mogs.js_code", m.JSCode, true, maxPaymentFieldLen); err != nil {
		return err
	}
	// MOGS supports only WeChat (app_plat 1) on Android (os_plat_id 1);
	// 0 means "not given", and the client sends 1.
	if m.AppPlat != 0 && m.AppPlat != 1 {
		return reject("payment.mogs.app_plat", "must be 1 (WeChat, the only platform MOGS supports) or absent, got %d", m.AppPlat)
	}
	if m.OSPlatID != 0 && m.OSPlatID != 1 {
		return reject("payment.mogs.os_plat_id", "must be 1 (Android, the only one MOGS supports) or absent, got %d", m.OSPlatID)
	}
	if err := checkText("payment.mogs.session_key", m.SessionKey, false, maxPaymentFieldLen); err != nil {
		return err
	}
	return checkText("payment.mogs.pay_item", m.PayItem, false, maxPaymentFieldLen)
}

func (m *MidasPayment) validate() error {
	if m == nil {
		return reject("payment.midas", "is required when the provider is midas")
	}
	for _, f := range [...]struct {
		name, v  string
		required bool
	}{
		{"payment.midas.openkey", m.OpenKey, true},
		{"payment.midas.pf", m.PF, true},
		{"payment.midas.pfkey", m.PFKey, true},
		{"payment.midas.zoneid", m.ZoneID, false},
		{"payment.midas.payitem", m.PayItem, false},
	} {
		if err := checkText(f.name, f.v, f.required, maxPaymentFieldLen); err != nil {
			return err
		}
	}
	switch m.SessionType {
	case "", "kp_actoken", "wc_actoken", "st_dummy", "openkey":
	default:
		return reject("payment.midas.session_type", "must be kp_actoken, wc_actoken, st_dummy, openkey or empty")
	}
	switch m.AccountType {
	case "", "common", "security":
	default:
		return reject("payment.midas.accounttype", "must be common, security or empty")
	}
	if m.UserIP != "" {
		if _, err := netip.ParseAddr(m.UserIP); err != nil {
			return reject("payment.midas.userip", "must be an IP address or empty")
		}
	}
	return nil
}

// checkText never quotes v: it may be a login token.
func checkText(field, v string, required bool, maxLen int) error {
	if v == "" {
		if required {
			return reject(field, "is required")
		}
		return nil
	}
	if n := utf8.RuneCountInString(v); n > maxLen {
		return reject(field, "must be at most %d characters, got %d", maxLen, n)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return reject(field, "must not contain control characters")
		}
	}
	return nil
}

// Hash identifies an intent's content: the same out_order_id with a
// different Hash is a conflict, not a redelivery. It is the hex SHA-256 of
// the intent re-encoded by encoding/json (fixed key order, one spelling
// per value) with the payload canonicalised (keys sorted, no whitespace),
// so whitespace and key order in the original bytes do not matter. Login
// secrets are part of the content; the hash does not reveal them.
func (in Intent) Hash() string {
	payload := in.Payload
	in.Payload = nil
	h := sha256.New()
	body, err := json.Marshal(in)
	if err != nil {
		// Intent has no field json.Marshal can fail on once Payload is nil.
		panic(fmt.Sprintf("events: encode intent for hashing: %v", err))
	}
	h.Write(body)
	if !payloadAbsent(payload) {
		// A separate, delimited section keeps "no payload" and any payload,
		// even an unparsable one, from ever hashing alike.
		h.Write([]byte("\x00payload\x00"))
		h.Write(canonicalJSON(payload))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// canonicalJSON re-encodes a JSON value with object keys sorted and
// numbers kept as written; bytes that do not parse are returned as is.
func canonicalJSON(raw json.RawMessage) []byte {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return out
}
