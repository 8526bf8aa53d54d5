package midas

import (
	"net/url"
	"testing"
)

func TestSignMatchesThePublicOpenAPIV3Vector(t *testing.T) {
	params := url.Values{
		"openid":  {"11111111111111111"},
		"openkey": {"2222222222222222"},
		"appid":   {"123456"},
		"pf":      {"qzone"},
		"format":  {"json"},
		"userip":  {"112.90.139.30"},
	}
	const want = "FdJkiDYwMj5Aj1UG2RUPc83iokk="
	if got := Sign("GET", "/v3/user/get_info", params, "228bf094169a40a3bd188ba37ebe8723"); got != want {
		t.Fatalf("Sign = %q, want %q\nsource: %s", got, want, SignSource("GET", "/v3/user/get_info", params))
	}

	t.Run("a sig parameter already present is left out of the source", func(t *testing.T) {
		withSig := url.Values{"sig": {"whatever"}}
		for k, v := range params {
			withSig[k] = v
		}
		if got := Sign("GET", "/v3/user/get_info", withSig, "228bf094169a40a3bd188ba37ebe8723"); got != want {
			t.Errorf("Sign with sig = %q, want %q", got, want)
		}
	})
}

func TestSignSourceIsTheDocumentedString(t *testing.T) {
	params := url.Values{"openid": {"o1"}, "appid": {"15499"}, "format": {"json"}, "pf": {"a b"}}
	const want = "GET&%2Fv3%2Fr%2Fmpay%2Fget_balance_m&appid%3D15499%26format%3Djson%26openid%3Do1%26pf%3Da%20b"
	if got := SignSource("GET", SignPathPrefix+"/mpay/get_balance_m", params); got != want {
		t.Errorf("SignSource =\n %s\nwant\n %s", got, want)
	}
}

func TestEncodeIsStrictRFC3986(t *testing.T) {
	tests := []struct{ in, want string }{
		{"AZaz09-_.", "AZaz09-_."},
		{"~", "%7E"},
		{" ", "%20"},
		{"*", "%2A"},
		{"+", "%2B"},
		{"/v3/r/mpay/pay_m", "%2Fv3%2Fr%2Fmpay%2Fpay_m"},
		{"a=b&c=d", "a%3Db%26c%3Dd"},
		{"!'()", "%21%27%28%29"},
		{"中", "%E4%B8%AD"},
		{"\x00\xff", "%00%FF"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in+" becomes "+tt.want, func(t *testing.T) {
			if got := Encode(tt.in); got != tt.want {
				t.Errorf("Encode(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEncodedQueryDecodesToTheSameValues(t *testing.T) {
	in := url.Values{"pf": {"myapp_m_qq-00000000-android-00000000-ysdk"}, "openkey": {"a+b/c=d~e f*g"}, "sig": {"ab+/=="}}
	got, err := url.ParseQuery(encodeQuery(in))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range in {
		if got.Get(k) != v[0] {
			t.Errorf("%s: decoded %q, want %q", k, got.Get(k), v[0])
		}
	}
}
