package events

import (
	"strings"
	"testing"
)

func TestMaskSecrets(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		want      []string
		forbidden []string
	}{
		{
			name:      "the MOGS login fields are masked",
			body:      `{"out_order_id":"o1","payment":{"provider":"mogs","amount":100,"mogs":{"js_code":"JS-SECRET","session_key":"SK-SECRET","pay_item":"dice"}}}`,
			want:      []string{`"js_code": "***"`, `"session_key": "***"`, `"pay_item": "dice"`, `"amount": 100`, `"out_order_id": "o1"`},
			forbidden: []string{"JS-SECRET", "SK-SECRET"},
		},
		{
			name:      "the Midas login fields are masked and the rest kept",
			body:      `{"payment":{"midas":{"openkey":"OK-SECRET","pf":"qq_m_qq","pfkey":"PFK-SECRET","zoneid":"1"}}}`,
			want:      []string{`"openkey": "***"`, `"pfkey": "***"`, `"pf": "qq_m_qq"`},
			forbidden: []string{"OK-SECRET", "PFK-SECRET"},
		},
		{
			name: "an empty secret stays empty, so the operator sees it was missing",
			body: `{"payment":{"mogs":{"js_code":"x","session_key":""}}}`,
			want: []string{`"session_key": ""`, `"js_code": "***"`},
		},
		{
			name: "large numbers keep every digit",
			body: `{"mg_id":1468180338417074177,"value":100}`,
			want: []string{`1468180338417074177`},
		},
		{
			name:      "an undecodable body is masked by pattern",
			body:      `{"payment":{"mogs":{"js_code" : "JS-SECRET","x":1`,
			want:      []string{`"js_code" : "***"`, `"x":1`},
			forbidden: []string{"JS-SECRET"},
		},
		{
			name:      "escaped quotes inside a secret do not end the mask early",
			body:      `{"openkey":"a\"b-SECRET"`,
			want:      []string{`"openkey":"***"`},
			forbidden: []string{"SECRET"},
		},
		{
			name: "bytes that are not JSON at all come back as they are",
			body: "not json",
			want: []string{"not json"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(MaskSecrets([]byte(tc.body)))
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("masked body lacks %q:\n%s", w, got)
				}
			}
			for _, f := range tc.forbidden {
				if strings.Contains(got, f) {
					t.Errorf("masked body still holds %q:\n%s", f, got)
				}
			}
		})
	}
}
