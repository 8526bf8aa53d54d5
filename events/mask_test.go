package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
)

func TestMaskSecrets(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		want      []string
		forbidden []string
		times     map[string]int // how often a want must appear, when more than once
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
			name:      "upper-case keys are masked, as encoding/json decodes them into the login fields",
			body:      `{"payment":{"mogs":{"JS_CODE":"JS-SECRET","SESSION_KEY":"SK-SECRET"},"midas":{"OPENKEY":"OK-SECRET","PFKEY":"PFK-SECRET"}}}`,
			want:      []string{`"JS_CODE": "***"`, `"SESSION_KEY": "***"`, `"OPENKEY": "***"`, `"PFKEY": "***"`},
			forbidden: []string{"JS-SECRET", "SK-SECRET", "OK-SECRET", "PFK-SECRET"},
		},
		{
			name:      "mixed-case keys are masked",
			body:      `{"payment":{"mogs":{"Js_Code":"JS-SECRET","session_KEY":"SK-SECRET"},"midas":{"OpenKey":"OK-SECRET","pfKey":"PFK-SECRET"}}}`,
			want:      []string{`"Js_Code": "***"`, `"session_KEY": "***"`, `"OpenKey": "***"`, `"pfKey": "***"`},
			forbidden: []string{"JS-SECRET", "SK-SECRET", "OK-SECRET", "PFK-SECRET"},
		},
		{
			name:      "keys that fold to a secret name under Unicode rules are masked, as encoding/json folds them too",
			body:      "{\"\u017fession_key\":\"SK-SECRET\",\"pf\u212aey\":\"PFK-SECRET\",\"open\\u212aey\":\"OK-SECRET\"}",
			want:      []string{"\"\u017fession_key\": \"***\"", "\"pf\u212aey\": \"***\"", `"open\u212aey": "***"`},
			forbidden: []string{"SK-SECRET", "PFK-SECRET", "OK-SECRET"},
		},
		{
			name:      "secret keys are masked at any depth, in objects and arrays",
			body:      `{"payload":{"a":[{"b":{"js_code":"JS-SECRET"}},[{"PFKEY":"PFK-SECRET"}]]},"list":[[[{"OpenKey":"OK-SECRET"}]]]}`,
			want:      []string{`"js_code": "***"`, `"PFKEY": "***"`, `"OpenKey": "***"`},
			forbidden: []string{"JS-SECRET", "PFK-SECRET", "OK-SECRET"},
		},
		{
			name:      "unicode-escaped key names are masked",
			body:      `{"js\u005fcode":"JS-SECRET","\u0073ession_\u004BEY":"SK-SECRET","\u006f\u0070\u0065\u006e\u006b\u0065\u0079":"OK-SECRET","pf\u006Bey":"PFK-SECRET"}`,
			want:      []string{`"js\u005fcode": "***"`, `"\u0073ession_\u004BEY": "***"`, `"pf\u006Bey": "***"`},
			forbidden: []string{"JS-SECRET", "SK-SECRET", "OK-SECRET", "PFK-SECRET"},
		},
		{
			name:      "a value cut off before its closing quote is masked to the end",
			body:      `{"payment":{"mogs":{"js_code":"abcdef`,
			want:      []string{`{"payment":{"mogs":{"js_code":"***"`},
			forbidden: []string{"abcdef", "abc"},
		},
		{
			name:      "an upper-case key whose value is cut off is masked to the end",
			body:      `{"payment":{"midas":{"pf":"qq","OPENKEY":  "OK-SECRET-abc\"de`,
			want:      []string{`"pf":"qq"`, `"OPENKEY":  "***"`},
			forbidden: []string{"OK-SECRET", "abc", "de"},
		},
		{
			name:      "a value cut off inside an escape is masked to the end",
			body:      `{"pfkey":"PFK-SECRET\`,
			want:      []string{`{"pfkey":"***"`},
			forbidden: []string{"PFK-SECRET"},
		},
		{
			name:      "an object value cut off is masked to the end",
			body:      `{"session_key":{"token":"SK-SECRET","more":[1,`,
			want:      []string{`{"session_key":"***"`},
			forbidden: []string{"SK-SECRET", "token", "more"},
		},
		{
			name:      "invalid JSON is masked whatever the key case",
			body:      `{"payment":{"mogs":{"JS_CODE":"JS-SECRET","Session_Key" :"SK-SECRET",},}`,
			want:      []string{`"JS_CODE":"***"`, `"Session_Key" :"***"`},
			forbidden: []string{"JS-SECRET", "SK-SECRET"},
		},
		{
			name:      "a stray quote earlier in an invalid body does not hide the keys after it",
			body:      `{"pay_item":"di"ce","js_code":"JS-SECRET","x":"a"b","pfkey":"PFK-SECRET"}`,
			want:      []string{`"js_code":"***"`, `"pfkey":"***"`},
			forbidden: []string{"JS-SECRET", "PFK-SECRET"},
		},
		{
			name:      "a key with an escape JSON does not allow is still masked",
			body:      `{"js\_code":"JS-SECRET"}`,
			want:      []string{`"js\_code":"***"`},
			forbidden: []string{"JS-SECRET"},
		},
		{
			name:      "duplicate keys in valid JSON are all masked and all shown",
			body:      `{"payment":{"mogs":{"js_code":"FIRST-SECRET","JS_CODE":"SECOND-SECRET","js_code":"THIRD-SECRET"}}}`,
			want:      []string{`"js_code": "***"`, `"JS_CODE": "***"`},
			times:     map[string]int{`"js_code": "***"`: 2},
			forbidden: []string{"FIRST-SECRET", "SECOND-SECRET", "THIRD-SECRET"},
		},
		{
			name:      "numbers, booleans, objects and arrays as secret values are masked",
			body:      `{"openkey":12345678901234567,"pfkey":-9.87e+65,"js_code":true,"session_key":{"v":"SK-SECRET"},"JS_CODE":["JS-SECRET",false]}`,
			want:      []string{`"openkey": "***"`, `"pfkey": "***"`, `"js_code": "***"`, `"session_key": "***"`, `"JS_CODE": "***"`},
			forbidden: []string{"12345678901234567", "9.87", "true", "SK-SECRET", "JS-SECRET", "false"},
		},
		{
			name:      "a bare word in an invalid body is masked up to the next delimiter",
			body:      `{"js_code": JS SECRET WORDS, "x":1}`,
			want:      []string{`"js_code": "***"`, `"x": 1`},
			forbidden: []string{"JS", "SECRET", "WORDS"},
		},
		{
			name: "a string value that spells a secret name is not a key, and similar keys are kept",
			body: `{"note":"js_code","js_code_hint":"visible","openkeys":"shown","pf":"pfkey"}`,
			want: []string{`"note": "js_code"`, `"js_code_hint": "visible"`, `"openkeys": "shown"`, `"pf": "pfkey"`},
		},
		{
			name: "keys keep the order they were written in",
			body: `{"z":1,"a":2}`,
			want: []string{"{\n  \"z\": 1,\n  \"a\": 2\n}"},
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
			for w, n := range tc.times {
				if c := strings.Count(got, w); c != n {
					t.Errorf("masked body holds %q %d times, want %d:\n%s", w, c, n, got)
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

// TestMaskSecretsHidesEveryValueOfARandomCorpus writes intents the way a
// careless or hostile publisher could, each with maskCorpusSecrets
// distinct secret values under keys of random case and escapes, nested at
// random and of every JSON type, and checks that masking shows none of
// them: in the valid body, cut off inside a secret, and made invalid.
// COINSAGA_MASK_SEED=n replays a logged run.
func TestMaskSecretsHidesEveryValueOfARandomCorpus(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("COINSAGA_MASK_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("COINSAGA_MASK_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("seed %d (COINSAGA_MASK_SEED=%d replays this run)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 0x6d61736b))
	seen := map[string]bool{}
	const intents = 30
	for i := 0; i < intents; i++ {
		g := &corpusIntent{r: r, seen: seen, id: fmt.Sprintf("mask-%d", i)}
		g.write()
		if len(g.secrets) != maskCorpusSecrets {
			t.Fatalf("intent %d holds %d secrets, want %d", i, len(g.secrets), maskCorpusSecrets)
		}
		body := g.body.String()
		g.checkRealistic(t, body)

		t.Run(fmt.Sprintf("intent %d shows none of its secrets when valid", i), func(t *testing.T) {
			got := string(MaskSecrets([]byte(body)))
			g.checkHidden(t, body, got, -1)
			if n := strings.Count(got, `"***"`); n != maskCorpusSecrets {
				t.Errorf("%d values masked, want %d:\n%s", n, maskCorpusSecrets, got)
			}
			if !json.Valid([]byte(got)) || !strings.Contains(got, `"out_order_id": "`+g.id+`"`) {
				t.Errorf("the masked body is not the intent, indented:\n%s", got)
			}
		})
		t.Run(fmt.Sprintf("intent %d shows none of its secrets when cut off inside one", i), func(t *testing.T) {
			s := g.secrets[r.IntN(len(g.secrets))]
			cut := s.valueAt + 1 + r.IntN(s.valueEnd-s.valueAt-1)
			got := string(MaskSecrets([]byte(body[:cut])))
			g.checkHidden(t, body[:cut], got, cut)
		})
		t.Run(fmt.Sprintf("intent %d shows none of its secrets when a stray quote breaks it", i), func(t *testing.T) {
			broken := strings.Replace(body, `"pay_item":"dice"`, `"pay_item":"di"ce"`, 1)
			got := string(MaskSecrets([]byte(broken)))
			g.checkHidden(t, broken, got, -1)
			if !strings.Contains(got, `"di"ce"`) {
				t.Errorf("the rest of the invalid body is not shown as it is:\n%s", got)
			}
		})
		t.Run(fmt.Sprintf("intent %d shows none of its secrets with a trailing comma", i), func(t *testing.T) {
			broken := body[:len(body)-1] + ",}"
			got := string(MaskSecrets([]byte(broken)))
			g.checkHidden(t, broken, got, -1)
		})
	}
}

// maskCorpusSecrets is how many distinct secret values each corpus intent
// holds: as many as the reviewers of issue 12 searched for.
const maskCorpusSecrets = 66

// secretNames lists the masked keys in their canonical spelling.
var corpusSecretNames = []string{"js_code", "session_key", "openkey", "pfkey"}

// corpusIntent writes one intent of the corpus and remembers where each
// secret value went.
type corpusIntent struct {
	r       *rand.Rand
	seen    map[string]bool
	id      string
	body    strings.Builder
	secrets []corpusSecret
	// the last string written under each login field of the payment
	// blocks: what encoding/json decodes into Payment
	login map[string]string
}

// corpusSecret is one secret value: text is how it is written in the
// body (without the quotes of a string), found at textAt; the whole
// JSON value spans valueAt to valueEnd. A string's other spellings,
// decoded and as encoding/json would write it, are in also.
type corpusSecret struct {
	text              string
	also              []string
	textAt            int
	valueAt, valueEnd int
}

func (g *corpusIntent) w(s string) { g.body.WriteString(s) }

// space is JSON whitespace, often none.
func (g *corpusIntent) space() string {
	return []string{"", "", "", " ", "\n  ", "\t", " \r\n "}[g.r.IntN(7)]
}

// key spells name the ways encoding/json still matches it: each letter
// in either case, sometimes as \uXXXX, s and k sometimes as the Unicode
// letters that fold to them (ſ U+017F, K U+212A), raw or escaped.
func (g *corpusIntent) key(name string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range name {
		if g.r.IntN(2) == 0 {
			c = unicode.ToUpper(c)
		}
		switch {
		case c == 's' || c == 'S' || c == 'k' || c == 'K':
			if g.r.IntN(5) == 0 {
				fold := map[rune]rune{'s': 'ſ', 'S': 'ſ', 'k': 'K', 'K': 'K'}[c]
				if g.r.IntN(2) == 0 {
					b.WriteRune(fold)
				} else {
					fmt.Fprintf(&b, `\u%04x`, fold)
				}
				continue
			}
		}
		switch g.r.IntN(6) {
		case 0:
			fmt.Fprintf(&b, `\u%04x`, c)
		case 1:
			fmt.Fprintf(&b, `\u%04X`, c)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// token returns a fresh random string of the corpus.
func (g *corpusIntent) token(n int, alphabet string) string {
	for {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[g.r.IntN(len(alphabet))]
		}
		if s := string(b); !g.seen[s] {
			g.seen[s] = true
			return s
		}
	}
}

const corpusLetters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// secretString writes a fresh secret string value, sometimes with JSON
// escapes inside, and records it.
func (g *corpusIntent) secretString() string {
	text := g.token(14, corpusLetters)
	if g.r.IntN(4) == 0 {
		at := 2 + g.r.IntN(10)
		esc := []string{`\"`, `\\`, `\/`, `\u00e9`, `\n`}[g.r.IntN(5)]
		text = text[:at] + esc + text[at:]
	}
	var decoded string
	if err := json.Unmarshal([]byte(`"`+text+`"`), &decoded); err != nil {
		panic(err)
	}
	encoded, _ := json.Marshal(decoded)
	g.w(`"`)
	g.secrets = append(g.secrets, corpusSecret{text: text, textAt: g.body.Len(),
		also: []string{decoded, string(encoded[1 : len(encoded)-1])}})
	g.w(text + `"`)
	return decoded
}

// secretValue writes a fresh secret of any JSON type.
func (g *corpusIntent) secretValue() {
	switch g.r.IntN(6) {
	case 0: // a number
		text := "9" + g.token(17, "0123456789")
		if g.r.IntN(2) == 0 {
			text = "-" + text[:6] + "." + text[6:] + "e+12"
		}
		g.secrets = append(g.secrets, corpusSecret{text: text, textAt: g.body.Len()})
		g.w(text)
	case 1: // an object holding it
		g.w(`{"v":` + g.space())
		g.secretString()
		g.w(`,"n":[1,2]}`)
	case 2: // an array holding it
		g.w(`[` + g.space())
		g.secretString()
		g.w(`,true]`)
	default:
		g.secretString()
	}
}

// secretMember writes "key": value for a secret of any type, or only of
// string type when login is set (a field encoding/json decodes).
func (g *corpusIntent) secretMember(name string, login bool) {
	g.w(g.key(name) + g.space() + ":" + g.space())
	at := g.body.Len()
	if login {
		g.login[name] = g.secretString()
	} else {
		g.secretValue()
	}
	last := &g.secrets[len(g.secrets)-1]
	last.valueAt, last.valueEnd = at, g.body.Len()
}

func (g *corpusIntent) left() int { return maskCorpusSecrets - len(g.secrets) }

// extra writes an object of the payload with a few secrets, decoys and,
// below depth 3, more such objects nested in objects and arrays.
func (g *corpusIntent) extra(depth int) {
	g.w("{" + g.space())
	g.w(`"note":"js_code and pfkey are secrets","n":` + strconv.Itoa(g.r.IntN(1000)))
	for n := 1 + g.r.IntN(4); n > 0 && g.left() > 0; n-- {
		g.w("," + g.space())
		g.secretMember(corpusSecretNames[g.r.IntN(len(corpusSecretNames))], false)
	}
	if depth < 3 && g.left() > 0 && g.r.IntN(2) == 0 {
		g.w(`,"inner":`)
		if g.r.IntN(2) == 0 {
			g.extra(depth + 1)
		} else {
			g.w("[")
			g.extra(depth + 1)
			g.w("]")
		}
	}
	g.w(g.space() + "}")
}

func (g *corpusIntent) write() {
	g.login = map[string]string{}
	g.w(`{"out_order_id":"` + g.id + `","mg_id":"1468180338417074177","room_id":"9009",` +
		`"cmd":"specify_dice_roll","from_uid":"001","to_uid":"002","value":100,`)
	g.w(`"payment":{"provider":"mogs","amount":100,"openid":"player-` + g.id + `",` + g.space())
	g.w(`"mogs":{`)
	g.secretMember("js_code", true)
	g.w(`,"app_plat":1,"pay_item":"dice",`)
	g.secretMember("session_key", true)
	if g.r.IntN(2) == 0 { // a duplicate: the last one is what decodes
		g.w("," + g.space())
		g.secretMember("js_code", true)
	}
	g.w(`},` + g.space() + `"midas":{`)
	g.secretMember("openkey", true)
	g.w(`,"pf":"qq_m_qq",` + g.space())
	g.secretMember("pfkey", true)
	g.w(`}},"payload":{"point":6,"extra":[`)
	for first := true; g.left() > 0; first = false {
		if !first {
			g.w("," + g.space())
		}
		g.extra(0)
	}
	g.w("]}}")
}

// checkRealistic makes sure the corpus is what the issue is about: valid
// intents whose login fields hold the secrets under the random keys.
func (g *corpusIntent) checkRealistic(t *testing.T, body string) {
	t.Helper()
	in, err := DecodeIntent([]byte(body))
	if err != nil {
		t.Fatalf("corpus intent %s does not decode: %v\n%s", g.id, err, body)
	}
	m, p := in.Payment.MOGS, in.Payment.Midas
	if m == nil || p == nil || m.JSCode != g.login["js_code"] || m.SessionKey != g.login["session_key"] ||
		p.OpenKey != g.login["openkey"] || p.PFKey != g.login["pfkey"] {
		t.Fatalf("corpus intent %s decodes to %+v %+v, want the login secrets %v\n%s", g.id, m, p, g.login, body)
	}
}

// checkHidden fails if got shows a secret of body; with cut >= 0 the body
// was cut there, and what is left of the secret it cut must not show
// either.
func (g *corpusIntent) checkHidden(t *testing.T, body, got string, cut int) {
	t.Helper()
	shown := 0
	for _, s := range g.secrets {
		forms := append([]string{s.text}, s.also...)
		if cut >= 0 && s.textAt+len(s.text) > cut {
			if s.textAt >= cut {
				continue
			}
			forms = []string{body[s.textAt:cut]} // what the cut left of it
			if len(forms[0]) < 4 {
				continue // too short to tell apart from other bytes
			}
		}
		for _, f := range forms {
			if strings.Contains(got, f) {
				if shown++; shown <= 3 {
					t.Errorf("secret %q is shown: %s", f, excerptAround(got, f))
				}
				break
			}
		}
	}
	if shown > 0 {
		t.Errorf("%d of the secrets are shown", shown)
	}
}

func excerptAround(s, sub string) string {
	i := strings.Index(s, sub)
	lo, hi := max(0, i-60), min(len(s), i+len(sub)+20)
	return "…" + s[lo:hi] + "…"
}

// FuzzMaskSecrets: masking never panics, keeps valid JSON valid, and
// leaves no secret key with an unmasked value behind for a second pass.
func FuzzMaskSecrets(f *testing.F) {
	for _, s := range []string{`{"js_code":"x"}`, `{"JS\u005fCODE":1}`, `{"pfkey":{"a":["b"`, `"\ud800\udc00":`, `{"openkey":"\`, `{"session_key" : tru`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got := MaskSecrets(body)
		if json.Valid(body) && !json.Valid(got) {
			t.Fatalf("valid %q masked into invalid %q", body, got)
		}
		if again := MaskSecrets(got); json.Valid(got) && !bytes.Equal(again, got) {
			t.Fatalf("masking %q twice gives %q, then %q", body, got, again)
		}
	})
}
