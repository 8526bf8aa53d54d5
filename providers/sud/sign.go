package sud

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Timestamp renders t as the Sud-Auth timestamp. SUD's docs are ambiguous
// about the unit; their header example uses seconds, so seconds it is, and
// this is the one place that decides it.
func Timestamp(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10)
}

// Nonce returns a fresh random nonce for the Sud-Auth header.
func Nonce() string {
	return rand.Text()
}

// Sign computes the Sud-Auth signature of a request, which is also the
// Sud-Signature of a notification:
// lowercase hex(HMAC-SHA1(key = appSecret,
// appID + "\n" + timestamp + "\n" + nonce + "\n" + body + "\n")), body being
// the exact bytes sent.
func Sign(appSecret, appID, timestamp, nonce string, body []byte) string {
	return hex.EncodeToString(signature(appSecret, appID, timestamp, nonce, body))
}

// signature is Sign before the hex encoding.
func signature(appSecret, appID, timestamp, nonce string, body []byte) []byte {
	mac := hmac.New(sha1.New, []byte(appSecret))
	mac.Write([]byte(appID))
	mac.Write([]byte{'\n'})
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'\n'})
	mac.Write([]byte(nonce))
	mac.Write([]byte{'\n'})
	mac.Write(body)
	mac.Write([]byte{'\n'})
	return mac.Sum(nil)
}

// AuthorizationHeader returns the Authorization header value for a request
// with this body: Sud-Auth app_id="…",timestamp="…",nonce="…",signature="…".
func AuthorizationHeader(appSecret, appID, timestamp, nonce string, body []byte) string {
	var b strings.Builder
	b.Grow(len(appID) + len(timestamp) + len(nonce) + 100)
	b.WriteString(`Sud-Auth app_id="`)
	b.WriteString(appID)
	b.WriteString(`",timestamp="`)
	b.WriteString(timestamp)
	b.WriteString(`",nonce="`)
	b.WriteString(nonce)
	b.WriteString(`",signature="`)
	b.WriteString(Sign(appSecret, appID, timestamp, nonce, body))
	b.WriteString(`"`)
	return b.String()
}

// DiscoveryKey is the last path segment of the endpoint discovery URL:
// lowercase hex(HMAC-MD5(key = appSecret, data = appID)).
func DiscoveryKey(appSecret, appID string) string {
	mac := hmac.New(md5.New, []byte(appSecret))
	mac.Write([]byte(appID))
	return hex.EncodeToString(mac.Sum(nil))
}
