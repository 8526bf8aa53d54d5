package midas

import (
	"net/url"
	"testing"
)

func BenchmarkSign(b *testing.B) {
	params := url.Values{
		"openid": {"00000000000000000000000014BDF6E4"}, "openkey": {"AB43BF3DC5C3C79D358CC5318E41CF59"},
		"appid": {"1450000000"}, "ts": {"1700000000"}, "pf": {"myapp_m_qq-00000000-android-00000000-ysdk"},
		"pfkey": {"pfkey"}, "zoneid": {"1"}, "format": {"json"}, "amt": {"100"}, "billno": {"order-1-pay"},
	}
	b.ReportAllocs()
	for b.Loop() {
		Sign("GET", "/v3/r/mpay/pay_m", params, "sandbox-midas-appkey")
	}
}
