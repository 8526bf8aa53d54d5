// Package wire is what the provider clients share about reading replies:
// tolerant number decoding, connection-friendly body handling, and keeping
// secrets out of errors. It is internal: only the clients under providers
// use it, and it is no part of the providers API.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// MaxReply bounds a provider reply; anything longer is not a reply we know.
const MaxReply = 1 << 20

// Providers of this family are known to quote numbers in some replies and
// not in others (the MOGS seed types bill_no as a string in requests and an
// int in replies). These types accept either form so that a harmless change
// of JSON type never fails a payment.

// FlexInt is an integer sent as a JSON number or a quoted number.
type FlexInt int64

func (n *FlexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*n = 0
			return nil
		}
		b = []byte(s)
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		// 1.0 is a number too; refuse fractions rather than truncate a sum.
		f, ferr := strconv.ParseFloat(string(b), 64)
		if ferr != nil || f != float64(int64(f)) {
			return fmt.Errorf("not an integer: %.32q", b)
		}
		v = int64(f)
	}
	*n = FlexInt(v)
	return nil
}

// FlexBool is a boolean sent as true/false, 0/1 or a quoted form of either.
type FlexBool bool

func (f *FlexBool) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(bytes.TrimSpace(b), `"`)
	switch string(b) {
	case "true", "1":
		*f = true
	case "false", "0", "", "null":
		*f = false
	default:
		return fmt.Errorf("not a boolean: %.32q", b)
	}
	return nil
}

// FlexString is an identifier sent as a JSON string or number, kept as text
// exactly as written (a long numeric bill_no must not pass through float64).
type FlexString string

func (v *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = FlexString(s)
		return nil
	}
	var num json.Number
	if err := json.Unmarshal(b, &num); err != nil {
		return fmt.Errorf("not a string or number: %.32q", b)
	}
	*v = FlexString(num)
	return nil
}

// DrainClose reads what is left of a body (up to MaxReply) so that the
// connection can be reused, then closes it.
func DrainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, MaxReply))
	_ = body.Close()
}

// RedactURL strips the query from the URL inside a transport error: it
// holds login tokens and signatures, which must never reach a log.
func RedactURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u := ue.URL
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	return &url.Error{Op: ue.Op, URL: u, Err: ue.Err}
}

// Scrub keeps a provider message safe to log: any echo of a secret is
// masked, and the length is bounded.
func Scrub(msg string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	const max = 256
	if len(msg) > max {
		msg = strings.ToValidUTF8(msg[:max], "") + "…"
	}
	return msg
}
