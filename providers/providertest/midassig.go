package providertest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
)

// RFC3986 is an encoder written for the tests alone, from the text of the
// OpenAPI V3.0 rule (not from the client's or the sandbox's code), so
// that it checks both: only A-Z a-z 0-9 - _ . stay; every other byte
// becomes %XX in upper case.
func RFC3986(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// MidasSig signs a GET of path (exactly as given: "/v3/r/mpay/pay_m")
// with params, sig excluded, the way the seed describes, written apart
// from the client's and the sandbox's signers.
func MidasSig(appKey, path string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "sig" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = k + "=" + params[k]
	}
	src := "GET&" + RFC3986(path) + "&" + RFC3986(strings.Join(pairs, "&"))
	mac := hmac.New(sha1.New, []byte(appKey+"&"))
	mac.Write([]byte(src))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
