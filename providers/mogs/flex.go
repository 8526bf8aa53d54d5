package mogs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Providers of this family are known to quote numbers in some replies and
// not in others. These types accept either form so that a harmless change of
// JSON type never fails a payment.

// flexInt is an integer sent as a JSON number or a quoted number.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
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
	*n = flexInt(v)
	return nil
}

// flexBool is a boolean sent as true/false, 0/1 or a quoted form of either.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
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
