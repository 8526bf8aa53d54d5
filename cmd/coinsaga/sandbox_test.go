package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/providers/providertest"
)

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
			q = append(q, providertest.RFC3986(k)+"="+providertest.RFC3986(v))
		}
		q = append(q, "sig="+providertest.RFC3986(sig))
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path+"?"+strings.Join(q, "&"), nil)
		req.Header.Set("Cookie", "session_id=openid; session_type=kp_actoken; org_loc="+providertest.RFC3986(path))
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
	sig := providertest.MidasSig("sandbox-midas-appkey", "/v3/r"+path, params)
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
