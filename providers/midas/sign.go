package midas

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
)

// SignPathPrefix is what OpenAPI V3.0 puts before an mpay path in the
// signature source: pay_m is signed as "/v3/r/mpay/pay_m".
const SignPathPrefix = "/v3/r"

// Sign computes the OpenAPI V3.0 sig of a request:
// Base64(HMAC-SHA1(key = appKey + "&", source)) with
// source = method & Encode(path) & Encode(k1=v1&k2=v2...), the parameters
// sorted by key, raw values, "sig" itself left out. path is signed as given.
func Sign(method, path string, params url.Values, appKey string) string {
	mac := hmac.New(sha1.New, []byte(appKey+"&"))
	mac.Write([]byte(SignSource(method, path, params)))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SignSource is the string Sign signs, exported so that a signature mismatch
// can be investigated without the key.
func SignSource(method, path string, params url.Values) string {
	return strings.ToUpper(method) + "&" + Encode(path) + "&" + Encode(joinSorted(params, "sig", asIs))
}

func asIs(s string) string { return s }

// Encode is the strict RFC 3986 encoding OpenAPI V3.0 signs with: only
// A-Z a-z 0-9 - _ . stay as they are; every other byte becomes %XX in
// upper-case hex (space %20, * %2A, ~ %7E). url.QueryEscape differs on
// space, * and ~, which is why it is not used here.
func Encode(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}

// encodeQuery renders params sorted by key with Encode, so that the URL a
// request carries is byte-for-byte predictable.
func encodeQuery(params url.Values) string { return joinSorted(params, "", Encode) }

// joinSorted renders params as key=value pairs sorted by key and joined by
// "&", each key and value through enc, leaving out the key skip ("" skips
// none): the one layout of both the signed source and the URL's query.
func joinSorted(params url.Values, skip string, enc func(string) string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if skip == "" || k != skip {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range params[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(enc(k))
			b.WriteByte('=')
			b.WriteString(enc(v))
		}
	}
	return b.String()
}
