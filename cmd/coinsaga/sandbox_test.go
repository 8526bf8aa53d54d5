package main

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/kit"
)

// rfc3986 is an encoder written for this test alone, from the text of the
// OpenAPI V3.0 rule (not from the client's or the sandbox's code): only
// A-Z a-z 0-9 - _ . stay; every other byte becomes %XX in upper case.
func rfc3986(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// signMidas signs a GET of path with params the way the seed describes.
func signMidas(appKey, path string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = k + "=" + params[k]
	}
	source := "GET&" + rfc3986("/v3/r"+path) + "&" + rfc3986(strings.Join(pairs, "&"))
	mac := hmac.New(sha1.New, []byte(appKey+"&"))
	mac.Write([]byte(source))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestSandboxCommandAcceptsIndependentlySignedMidasRequests(t *testing.T) {
	t.Parallel()
	addr := kit.ReserveAddr(t)
	sb := startChild(t, "sandbox", "--listen", addr)
	sb.WaitLog(regexp.MustCompile(`sandbox listening`), 60*time.Second)

	path := "/mpay/get_balance_m"
	params := map[string]string{
		"openid": "player one", "openkey": "key~with*odd=chars", "appid": "1450000000",
		"ts": strconv.FormatInt(time.Now().Unix(), 10), "pf": "qq_m_qq-2001-android~x*y", "pfkey": "pf key=1",
		"zoneid": "1", "format": "json",
	}
	call := func(sig string) map[string]any {
		t.Helper()
		q := make([]string, 0, len(params)+1)
		for k, v := range params {
			q = append(q, rfc3986(k)+"="+rfc3986(v))
		}
		q = append(q, "sig="+rfc3986(sig))
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path+"?"+strings.Join(q, "&"), nil)
		req.Header.Set("Cookie", "session_id=openid; session_type=kp_actoken; org_loc="+rfc3986(path))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("reply is not JSON: %v", err)
		}
		return body
	}
	sig := signMidas("sandbox-midas-appkey", path, params)
	t.Run("a request signed by an independent implementation is accepted", func(t *testing.T) {
		if got := call(sig); got["ret"] != float64(0) {
			t.Fatalf("reply %v, want ret 0", got)
		}
	})
	t.Run("the same request with one character of sig changed is refused", func(t *testing.T) {
		bad := []byte(sig)
		if bad[0] == 'A' {
			bad[0] = 'B'
		} else {
			bad[0] = 'A'
		}
		if got := call(string(bad)); got["ret"] == float64(0) || got["ret"] == nil {
			t.Fatalf("reply %v, want a non-zero ret", got)
		}
	})
	sb.Stop(10 * time.Second)
}
