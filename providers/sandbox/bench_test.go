package sandbox_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers/providertest"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// The benchmarks call ServeHTTP directly: they measure the sandbox, not the
// loopback network stack.

func benchSandbox() *sandbox.Sandbox {
	cfg := sandbox.DefaultConfig()
	cfg.InitialBalance = 1 << 60 // never run out
	cfg.Seed = 1
	return sandbox.New(cfg)
}

func serve(b *testing.B, sb *sandbox.Sandbox, req *http.Request) {
	rec := httptest.NewRecorder()
	sb.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"ret":0`) {
		b.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
}

func BenchmarkMOGSPay(b *testing.B) {
	sb := benchSandbox()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		q := "/mogs/pay?appid=10000&app_plat=1&js_code=x&openid=p" + strconv.Itoa(i%1000)
		body := `{"os_plat_id":1,"amt":10,"bill_no":"bill-` + strconv.Itoa(i) + `"}`
		serve(b, sb, httptest.NewRequest(http.MethodPost, q, strings.NewReader(body)))
	}
}

func BenchmarkMOGSGetBalance(b *testing.B) {
	sb := benchSandbox()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		q := "/mogs/getbalance?appid=10000&app_plat=1&js_code=x&openid=p" + strconv.Itoa(i%1000)
		serve(b, sb, httptest.NewRequest(http.MethodPost, q, strings.NewReader(`{"os_plat_id":1}`)))
	}
}

func midasBenchRequest(path, openid string, extra map[string]string) *http.Request {
	p := map[string]string{"openid": openid, "openkey": "k", "appid": "1450000000", "ts": strconv.FormatInt(time.Now().Unix(), 10),
		"pf": "pf", "pfkey": "pfkey", "zoneid": "1", "format": "json"}
	for k, v := range extra {
		p[k] = v
	}
	p["sig"] = providertest.MidasSig("sandbox-midas-appkey", "/v3/r"+path, p)
	req := httptest.NewRequest(http.MethodGet, path+"?"+encodeParams(p), nil)
	req.Header.Set("Cookie", midasCookie(path))
	return req
}

func BenchmarkMidasPay(b *testing.B) {
	sb := benchSandbox()
	// Signing is the client's cost: sign outside the timer.
	reqs := make([]*http.Request, 0, 1<<16)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if len(reqs) == 0 {
			b.StopTimer()
			for range cap(reqs) {
				i++
				reqs = append(reqs, midasBenchRequest("/mpay/pay_m", "o"+strconv.Itoa(i%1000),
					map[string]string{"amt": "10", "billno": "bill-" + strconv.Itoa(i)}))
			}
			b.StartTimer()
		}
		serve(b, sb, reqs[len(reqs)-1])
		reqs = reqs[:len(reqs)-1]
	}
}

func BenchmarkMidasGetBalance(b *testing.B) {
	sb := benchSandbox()
	req := midasBenchRequest("/mpay/get_balance_m", "o1", nil)
	b.ReportAllocs()
	for b.Loop() {
		serve(b, sb, req.Clone(req.Context()))
	}
}
