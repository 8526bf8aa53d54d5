package events_test

// The JSON Schemas of docs/schema/ are the contract's machine-readable
// half. These tests keep them, the Go types, the decoder and the docs in
// step: every example in the docs validates, a corpus of intents gets the
// same verdict from the schema and from DecodeIntent + Validate (or an
// explained difference), the schemas list exactly the Go types' fields, and
// the events and dead-letter headers the worker writes validate.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/schematest"
)

const docsDir = "../docs"

var schemaDir = filepath.Join(docsDir, "schema")

var schemaFiles = []string{"intent.json", "status-event.json", "dead-letter-headers.json"}

// schemaVerdict is nil when data is a JSON document the schema accepts.
func schemaVerdict(sch *jsonschema.Schema, data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return sch.Validate(inst)
}

// decoderVerdict is nil when the worker would accept the intent, leaving
// out the per-game catalog checks (Validate(nil)).
func decoderVerdict(data []byte) error {
	in, err := events.DecodeIntent(data)
	if err != nil {
		return err
	}
	return in.Validate(nil)
}

func TestSchemasAreWellFormed(t *testing.T) {
	for _, file := range schemaFiles {
		t.Run(file, func(t *testing.T) {
			schematest.Load(t, schemaDir, file) // validates against the 2020-12 meta-schema
			doc := schematest.Doc(t, schemaDir, file).(map[string]any)
			if got := doc["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("$schema = %v, want draft 2020-12", got)
			}
			if got := doc["$id"]; got != schematest.Base+file {
				t.Errorf("$id = %v, want %s", got, schematest.Base+file)
			}
			for _, k := range []string{"title", "description"} {
				if s, _ := doc[k].(string); s == "" {
					t.Errorf("no %s", k)
				}
			}
			// Every property says what it is, in the schema's own words.
			walkProperties(doc, "", func(path string, prop map[string]any) {
				if _, ok := prop["description"]; !ok {
					if _, ref := prop["$ref"]; !ref && !strings.Contains(path, "Shape.") {
						t.Errorf("property %s has no description", path)
					}
				}
			})
		})
	}
}

// walkProperties calls f for every property of every object schema in
// doc's root and $defs (not inside if/then, which only tighten them).
func walkProperties(doc map[string]any, path string, f func(string, map[string]any)) {
	props, _ := doc["properties"].(map[string]any)
	for name, p := range props {
		pm, ok := p.(map[string]any)
		if !ok {
			continue
		}
		f(path+name, pm)
		walkProperties(pm, path+name+".", f)
	}
	defs, _ := doc["$defs"].(map[string]any)
	for name, d := range defs {
		if dm, ok := d.(map[string]any); ok {
			walkProperties(dm, "$defs."+name+".", f)
		}
	}
}

// --- 1. Every example in the docs validates ---

type fencedBlock struct {
	file, section string
	line          int
	lang, body    string
}

// fencedBlocks returns the ``` blocks of a markdown file with the "## "
// section they are in.
func fencedBlocks(t *testing.T, path string) []fencedBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []fencedBlock
	var cur *fencedBlock
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &fencedBlock{file: filepath.Base(path), section: section, line: n, lang: strings.TrimPrefix(line, "```")}
		case cur != nil && line == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.body += line + "\n"
		case strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		}
	}
	if cur != nil {
		t.Fatalf("%s: unclosed ``` block at line %d", path, cur.line)
	}
	return out
}

func TestDocExamplesValidate(t *testing.T) {
	intent := schematest.Load(t, schemaDir, "intent.json")
	status := schematest.Load(t, schemaDir, "status-event.json")

	checkIntent := func(t *testing.T, where string, data []byte) {
		t.Helper()
		if err := schemaVerdict(intent, data); err != nil {
			t.Errorf("%s: the intent schema refuses the example: %v", where, err)
		}
		// The examples are real intents: the worker, catalog included,
		// takes them.
		in, err := events.DecodeIntent(data)
		if err == nil {
			err = in.Validate(events.DefaultCatalog())
		}
		if err != nil {
			t.Errorf("%s: the worker refuses the example: %v", where, err)
		}
	}
	checkStatus := func(t *testing.T, where string, data []byte) {
		t.Helper()
		if err := schemaVerdict(status, data); err != nil {
			t.Errorf("%s: the status-event schema refuses the example: %v", where, err)
		}
		var ev events.StatusEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Errorf("%s: not a StatusEvent: %v", where, err)
		}
	}

	t.Run("contract.md", func(t *testing.T) {
		seen := map[string]int{}
		for _, b := range fencedBlocks(t, filepath.Join(docsDir, "contract.md")) {
			if b.lang != "json" {
				continue
			}
			where := fmt.Sprintf("contract.md:%d (%s)", b.line, b.section)
			switch {
			case strings.HasSuffix(b.section, "The intent"):
				checkIntent(t, where, []byte(b.body))
				seen["intent"]++
			case strings.HasSuffix(b.section, "The status event"):
				checkStatus(t, where, []byte(b.body))
				seen["status"]++
			default:
				t.Errorf("%s: a JSON example this test does not know how to check; add its section here", where)
			}
		}
		if seen["intent"] == 0 || seen["status"] == 0 {
			t.Errorf("found %v examples in contract.md, want at least one intent and one status event", seen)
		}
	})

	t.Run("example-intent.json", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(docsDir, "example-intent.json"))
		if err != nil {
			t.Fatal(err)
		}
		checkIntent(t, "docs/example-intent.json", data)
	})

	t.Run("README.md", func(t *testing.T) {
		n := 0
		for _, b := range fencedBlocks(t, filepath.Join(docsDir, "..", "README.md")) {
			if b.lang != "json" {
				continue
			}
			if b.section != "A worked example" {
				t.Errorf("README.md:%d (%s): a JSON example this test does not know how to check", b.line, b.section)
				continue
			}
			// watch --json prints one event per line.
			for i, line := range strings.Split(strings.TrimSpace(b.body), "\n") {
				checkStatus(t, fmt.Sprintf("README.md:%d", b.line+1+i), []byte(line))
				n++
			}
		}
		if n == 0 {
			t.Error("no status events found in README.md's worked example")
		}
	})
}

// --- 2. Schema and decoder agree on a corpus of intents ---

// baseIntent is docs/example-intent.json as a generic value, to mutate.
func baseIntent() map[string]any {
	return map[string]any{
		"out_order_id": "1659497694000", "out_group_id": "1659497694",
		"mg_id": "1468180338417074177", "room_id": "9009",
		"cmd": "specify_dice_roll", "from_uid": "001", "to_uid": "002", "value": 100,
		"payload": map[string]any{"point": 6, "seq": 1},
		"payment": map[string]any{
			"provider": "mogs", "amount": 100, "openid": "opvxI4y_cVJx2pxsFCQrJ4FZB5gk",
			"mogs": map[string]any{"js_code": "xxx", "app_plat": 1, "os_plat_id": 1, "pay_item": "dice"},
		},
	}
}

func midasIntent() map[string]any {
	m := baseIntent()
	p := m["payment"].(map[string]any)
	p["provider"] = "midas"
	delete(p, "mogs")
	p["midas"] = map[string]any{
		"openkey": "ok", "pf": "desktop_m_qq-73213123-android-73213123-qq-1105000000-ABC",
		"pfkey": "pk", "zoneid": "1", "session_type": "kp_actoken", "userip": "203.0.113.7",
		"accounttype": "common", "payitem": "dice*100*1",
	}
	return m
}

// with returns the JSON of m after edit changes it.
func with(m map[string]any, edit func(m, payment, block map[string]any)) []byte {
	p := m["payment"].(map[string]any)
	var block map[string]any
	if b, ok := p[p["provider"].(string)].(map[string]any); ok {
		block = b
	}
	edit(m, p, block)
	data, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return data
}

func viaMOGS(edit func(m, payment, block map[string]any)) []byte {
	return with(baseIntent(), edit)
}

func viaMidas(edit func(m, payment, block map[string]any)) []byte {
	return with(midasIntent(), edit)
}

// appendKey adds a member, written as is, at the end of a JSON object.
func appendKey(obj []byte, member string) []byte {
	obj = bytes.TrimSuffix(bytes.TrimSpace(obj), []byte("}"))
	return append(append(obj, ","+member...), '}')
}

// raw splices JSON text verbatim (e.g. "1.0", which encoding/json would
// never write for a number).
func raw(s string) json.RawMessage { return json.RawMessage(s) }

type intentCase struct {
	name string
	data []byte
	ok   bool // the decoder's verdict: DecodeIntent + Validate(nil) accept it
	// differs, when set, says why the schema's verdict is the opposite of
	// the decoder's: a rule a JSON Schema cannot state. Each one is listed
	// in docs/contract.md ("The JSON Schemas").
	differs string
}

// Why schema and decoder part on some intents. The same texts are in
// docs/contract.md.
const (
	differsNumberSpelling = "Go's integer fields refuse a number written with a fraction or exponent; JSON Schema's integer is the mathematical kind, so 1.0 and 1e2 are integers"
	differsKeyCase        = "encoding/json matches keys case-insensitively; JSON Schema keys are exact"
	differsSize           = "the 64 KiB limit is on the message's bytes, which a JSON Schema does not see"
	differsIPv6Zone       = "net/netip takes an IPv6 address with a zone (fe80::1%eth0); the ipv6 format (RFC 4291) does not"
)

func intentCorpus() []intentCase {
	id65 := strings.Repeat("a", 65)
	long := func(n int) string { return strings.Repeat("x", n) }
	big := viaMOGS(func(m, _, _ map[string]any) { m["padding"] = long(events.MaxIntentSize) })
	return []intentCase{
		// Accepted.
		{name: "docs example (mogs)", data: viaMOGS(func(_, _, _ map[string]any) {}), ok: true},
		{name: "midas with every field", data: viaMidas(func(_, _, _ map[string]any) {}), ok: true},
		{name: "only the required fields", ok: true, data: viaMOGS(func(m, p, b map[string]any) {
			delete(m, "out_group_id")
			delete(m, "value")
			delete(m, "payload")
			p["mogs"] = map[string]any{"js_code": "xxx"}
		})},
		{name: "unknown top-level field is ignored", ok: true, data: viaMOGS(func(m, _, _ map[string]any) { m["trace_id"] = "abc" })},
		{name: "unknown fields in payment and its block are ignored", ok: true, data: viaMOGS(func(_, p, b map[string]any) {
			p["currency"] = "coin"
			b["device"] = map[string]any{"os": "android"}
		})},
		{name: "null optional fields count as absent", ok: true, data: viaMOGS(func(m, _, b map[string]any) {
			m["out_group_id"], m["value"], m["payload"] = nil, nil, nil
			b["app_plat"], b["os_plat_id"], b["session_key"], b["pay_item"] = nil, nil, nil, nil
		})},
		{name: "null optional midas fields", ok: true, data: viaMidas(func(_, _, b map[string]any) {
			for _, k := range []string{"zoneid", "session_type", "userip", "accounttype", "payitem"} {
				b[k] = nil
			}
		})},
		{name: "empty optional midas fields", ok: true, data: viaMidas(func(_, _, b map[string]any) {
			for _, k := range []string{"zoneid", "session_type", "userip", "accounttype", "payitem"} {
				b[k] = ""
			}
		})},
		{name: "64-character ids of every allowed character", ok: true, data: viaMOGS(func(m, _, _ map[string]any) {
			m["out_order_id"] = strings.Repeat("Az09_-", 10) + "abcd"
			m["mg_id"], m["room_id"] = strings.Repeat("9", 64), "-_"
		})},
		{name: "64 two-byte characters in cmd", ok: true, data: viaMOGS(func(m, _, _ map[string]any) { m["cmd"] = strings.Repeat("é", 64) })},
		{name: "value 0 and the int32 maximum amount", ok: true, data: viaMOGS(func(m, p, _ map[string]any) { m["value"], p["amount"] = 0, 2147483647 })},
		{name: "value int32 maximum", ok: true, data: viaMOGS(func(m, _, _ map[string]any) { m["value"] = 2147483647 })},
		{name: "app_plat and os_plat_id 0 mean not given", ok: true, data: viaMOGS(func(_, _, b map[string]any) { b["app_plat"], b["os_plat_id"] = 0, 0 })},
		{name: "the other provider's block may break its rules", ok: true, data: viaMOGS(func(_, p, _ map[string]any) {
			p["midas"] = map[string]any{"openkey": "", "session_type": "nonsense", "userip": "not an ip"}
		})},
		{name: "userip IPv6", ok: true, data: viaMidas(func(_, _, b map[string]any) { b["userip"] = "2001:db8::7" })},
		{name: "session_type openkey, accounttype security", ok: true, data: viaMidas(func(_, _, b map[string]any) {
			b["session_type"], b["accounttype"] = "openkey", "security"
		})},
		{name: "empty payload object", ok: true, data: viaMOGS(func(m, _, _ map[string]any) { m["payload"] = map[string]any{} })},

		// Refused: ids (invalid dead letters).
		{name: "out_order_id missing", data: viaMOGS(func(m, _, _ map[string]any) { delete(m, "out_order_id") })},
		{name: "mg_id missing", data: viaMOGS(func(m, _, _ map[string]any) { delete(m, "mg_id") })},
		{name: "room_id missing", data: viaMOGS(func(m, _, _ map[string]any) { delete(m, "room_id") })},
		{name: "out_order_id empty", data: viaMOGS(func(m, _, _ map[string]any) { m["out_order_id"] = "" })},
		{name: "out_order_id null", data: viaMOGS(func(m, _, _ map[string]any) { m["out_order_id"] = nil })},
		{name: "out_order_id with a dot", data: viaMOGS(func(m, _, _ map[string]any) { m["out_order_id"] = "a.b" })},
		{name: "mg_id with a space", data: viaMOGS(func(m, _, _ map[string]any) { m["mg_id"] = "14 68" })},
		{name: "room_id with a wildcard", data: viaMOGS(func(m, _, _ map[string]any) { m["room_id"] = "*" })},
		{name: "out_order_id non-ASCII", data: viaMOGS(func(m, _, _ map[string]any) { m["out_order_id"] = "订单1" })},
		{name: "out_order_id 65 characters", data: viaMOGS(func(m, _, _ map[string]any) { m["out_order_id"] = id65 })},
		{name: "mg_id 65 characters", data: viaMOGS(func(m, _, _ map[string]any) { m["mg_id"] = id65 })},
		{name: "out_order_id a number", data: viaMOGS(func(m, _, _ map[string]any) { m["out_order_id"] = 1659497694000 })},

		// Refused: not an object, not JSON, wrong types.
		{name: "an array", data: []byte(`[{"out_order_id":"1"}]`)},
		{name: "a string", data: []byte(`"intent"`)},
		{name: "null", data: []byte(`null`)},
		{name: "a number", data: []byte(`42`)},
		{name: "empty", data: []byte(``)},
		{name: "malformed JSON", data: []byte(`{"out_order_id":"1659497694000",`)},
		{name: "trailing data after the object", data: append(viaMOGS(func(_, _, _ map[string]any) {}), []byte(` {}`)...)},
		{name: "value a string", data: viaMOGS(func(m, _, _ map[string]any) { m["value"] = "100" })},
		{name: "value a boolean", data: viaMOGS(func(m, _, _ map[string]any) { m["value"] = true })},
		{name: "amount a string", data: viaMOGS(func(_, p, _ map[string]any) { p["amount"] = "100" })},
		{name: "amount with a fraction", data: viaMOGS(func(_, p, _ map[string]any) { p["amount"] = 100.5 })},
		{name: "cmd a number", data: viaMOGS(func(m, _, _ map[string]any) { m["cmd"] = 7 })},
		{name: "payment a string", data: viaMOGS(func(m, _, _ map[string]any) { m["payment"] = "mogs" })},
		{name: "mogs block a string", data: viaMOGS(func(_, p, _ map[string]any) { p["mogs"] = "xxx" })},
		{name: "js_code a number", data: viaMOGS(func(_, _, b map[string]any) { b["js_code"] = 123 })},
		{name: "app_plat a string", data: viaMOGS(func(_, _, b map[string]any) { b["app_plat"] = "1" })},
		{name: "the other provider's block with a wrong type", data: viaMOGS(func(_, p, _ map[string]any) {
			p["midas"] = map[string]any{"openkey": 5}
		})},
		{name: "value beyond int32", data: viaMOGS(func(m, _, _ map[string]any) { m["value"] = 2147483648 })},
		{name: "amount beyond int64", data: viaMOGS(func(_, p, _ map[string]any) { p["amount"] = raw("9223372036854775808") })},

		// Refused: field rules (rejected orders).
		{name: "cmd missing", data: viaMOGS(func(m, _, _ map[string]any) { delete(m, "cmd") })},
		{name: "from_uid empty", data: viaMOGS(func(m, _, _ map[string]any) { m["from_uid"] = "" })},
		{name: "to_uid missing", data: viaMOGS(func(m, _, _ map[string]any) { delete(m, "to_uid") })},
		{name: "to_uid null", data: viaMOGS(func(m, _, _ map[string]any) { m["to_uid"] = nil })},
		{name: "cmd 65 characters", data: viaMOGS(func(m, _, _ map[string]any) { m["cmd"] = long(65) })},
		{name: "cmd 65 two-byte characters", data: viaMOGS(func(m, _, _ map[string]any) { m["cmd"] = strings.Repeat("é", 65) })},
		{name: "from_uid with a newline", data: viaMOGS(func(m, _, _ map[string]any) { m["from_uid"] = "00\n1" })},
		{name: "to_uid with DEL", data: viaMOGS(func(m, _, _ map[string]any) { m["to_uid"] = "00\x7f2" })},
		{name: "cmd with a C1 control (U+0085)", data: viaMOGS(func(m, _, _ map[string]any) { m["cmd"] = "roll\u0085" })},
		{name: "cmd with NUL", data: viaMOGS(func(m, _, _ map[string]any) { m["cmd"] = "roll\x00" })},
		{name: "out_group_id 65 characters", data: viaMOGS(func(m, _, _ map[string]any) { m["out_group_id"] = long(65) })},
		{name: "value negative", data: viaMOGS(func(m, _, _ map[string]any) { m["value"] = -1 })},
		{name: "payload a string", data: viaMOGS(func(m, _, _ map[string]any) { m["payload"] = "point=6" })},
		{name: "payload an array", data: viaMOGS(func(m, _, _ map[string]any) { m["payload"] = []int{6, 1} })},
		{name: "payload a number", data: viaMOGS(func(m, _, _ map[string]any) { m["payload"] = 6 })},
		{name: "payment missing", data: viaMOGS(func(m, _, _ map[string]any) { delete(m, "payment") })},
		{name: "payment null", data: viaMOGS(func(m, _, _ map[string]any) { m["payment"] = nil })},
		{name: "payment empty", data: viaMOGS(func(m, _, _ map[string]any) { m["payment"] = map[string]any{} })},
		{name: "provider unknown", data: viaMOGS(func(_, p, _ map[string]any) { p["provider"] = "paypal" })},
		{name: "provider upper-case", data: viaMOGS(func(_, p, _ map[string]any) { p["provider"] = "MOGS" })},
		{name: "provider missing", data: viaMOGS(func(_, p, _ map[string]any) { delete(p, "provider") })},
		{name: "amount 0", data: viaMOGS(func(_, p, _ map[string]any) { p["amount"] = 0 })},
		{name: "amount negative", data: viaMOGS(func(_, p, _ map[string]any) { p["amount"] = -100 })},
		{name: "amount 2^31", data: viaMOGS(func(_, p, _ map[string]any) { p["amount"] = 2147483648 })},
		{name: "amount missing", data: viaMOGS(func(_, p, _ map[string]any) { delete(p, "amount") })},
		{name: "openid missing", data: viaMOGS(func(_, p, _ map[string]any) { delete(p, "openid") })},
		{name: "openid 1025 characters", data: viaMOGS(func(_, p, _ map[string]any) { p["openid"] = long(1025) })},
		{name: "mogs block missing", data: viaMOGS(func(_, p, _ map[string]any) { delete(p, "mogs") })},
		{name: "mogs block null", data: viaMOGS(func(_, p, _ map[string]any) { p["mogs"] = nil })},
		{name: "mogs block missing, midas block present", data: viaMOGS(func(_, p, _ map[string]any) {
			delete(p, "mogs")
			p["midas"] = midasIntent()["payment"].(map[string]any)["midas"]
		})},
		{name: "js_code missing", data: viaMOGS(func(_, _, b map[string]any) { delete(b, "js_code") })},
		{name: "js_code empty", data: viaMOGS(func(_, _, b map[string]any) { b["js_code"] = "" })},
		{name: "js_code 1025 characters", data: viaMOGS(func(_, _, b map[string]any) { b["js_code"] = long(1025) })},
		{name: "session_key with a tab", data: viaMOGS(func(_, _, b map[string]any) { b["session_key"] = "a\tb" })},
		{name: "pay_item 1025 characters", data: viaMOGS(func(_, _, b map[string]any) { b["pay_item"] = long(1025) })},
		{name: "app_plat 2", data: viaMOGS(func(_, _, b map[string]any) { b["app_plat"] = 2 })},
		{name: "os_plat_id -1", data: viaMOGS(func(_, _, b map[string]any) { b["os_plat_id"] = -1 })},
		{name: "midas block missing", data: viaMidas(func(_, p, _ map[string]any) { delete(p, "midas") })},
		{name: "openkey missing", data: viaMidas(func(_, _, b map[string]any) { delete(b, "openkey") })},
		{name: "pf empty", data: viaMidas(func(_, _, b map[string]any) { b["pf"] = "" })},
		{name: "pfkey null", data: viaMidas(func(_, _, b map[string]any) { b["pfkey"] = nil })},
		{name: "zoneid 1025 characters", data: viaMidas(func(_, _, b map[string]any) { b["zoneid"] = long(1025) })},
		{name: "session_type unknown", data: viaMidas(func(_, _, b map[string]any) { b["session_type"] = "kp_accesstoken" })},
		{name: "accounttype unknown", data: viaMidas(func(_, _, b map[string]any) { b["accounttype"] = "savings" })},
		{name: "userip not an address", data: viaMidas(func(_, _, b map[string]any) { b["userip"] = "localhost" })},
		{name: "userip IPv4 with three parts", data: viaMidas(func(_, _, b map[string]any) { b["userip"] = "10.0.1" })},
		{name: "userip IPv4 with a leading zero", data: viaMidas(func(_, _, b map[string]any) { b["userip"] = "10.0.0.01" })},
		{name: "duplicate key: the last one counts", data: []byte(strings.Replace(string(viaMOGS(func(_, _, _ map[string]any) {})),
			`"amount":100`, `"amount":100,"amount":0`, 1))},

		// Where schema and decoder must part.
		{name: "value 100.0", ok: false, differs: differsNumberSpelling, data: viaMOGS(func(m, _, _ map[string]any) { m["value"] = raw("100.0") })},
		{name: "amount 1e2", ok: false, differs: differsNumberSpelling, data: viaMOGS(func(_, p, _ map[string]any) { p["amount"] = raw("1e2") })},
		{name: "app_plat 1.0", ok: false, differs: differsNumberSpelling, data: viaMOGS(func(_, _, b map[string]any) { b["app_plat"] = raw("1.0") })},
		{name: "upper-case key for a required field", ok: true, differs: differsKeyCase, data: viaMOGS(func(m, _, _ map[string]any) {
			m["OUT_ORDER_ID"] = m["out_order_id"]
			delete(m, "out_order_id")
		})},
		{name: "a later key differing only in case overrides", ok: false, differs: differsKeyCase,
			data: appendKey(viaMOGS(func(_, _, _ map[string]any) {}), `"Payment":{"provider":"paypal"}`)},
		{name: "more than 64 KiB", ok: false, differs: differsSize, data: big},
		{name: "userip IPv6 with a zone", ok: true, differs: differsIPv6Zone, data: viaMidas(func(_, _, b map[string]any) { b["userip"] = "fe80::1%eth0" })},
	}
}

func TestIntentSchemaAgreesWithDecoder(t *testing.T) {
	sch := schematest.Load(t, schemaDir, "intent.json")
	corpus := intentCorpus()
	if len(corpus) < 30 {
		t.Fatalf("only %d cases", len(corpus))
	}
	names := map[string]bool{}
	for _, c := range corpus {
		if names[c.name] {
			t.Fatalf("case %q twice", c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			decErr := decoderVerdict(c.data)
			schErr := schemaVerdict(sch, c.data)
			if (decErr == nil) != c.ok {
				t.Fatalf("decoder: got %v, want ok=%v\n%.300s", decErr, c.ok, c.data)
			}
			schemaOK := c.ok != (c.differs != "")
			if (schErr == nil) != schemaOK {
				if c.differs != "" {
					t.Fatalf("schema: listed as differing from the decoder (%s), but it agrees: %v", c.differs, schErr)
				}
				t.Fatalf("schema: got %v, want ok=%v (decoder: %v)\n%.300s", schErr, schemaOK, decErr, c.data)
			}
		})
	}
}

// The differences the test lists are the ones the contract documents, and
// the contract links the schemas.
func TestContractListsSchemaDifferences(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(docsDir, "contract.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(data)), " ")
	for _, why := range []string{differsNumberSpelling, differsKeyCase, differsSize, differsIPv6Zone} {
		if !strings.Contains(doc, why) {
			t.Errorf("docs/contract.md does not say %q", why)
		}
	}
	for _, f := range schemaFiles {
		if !strings.Contains(doc, "(schema/"+f+")") {
			t.Errorf("docs/contract.md does not link schema/%s", f)
		}
	}
	// Section 6's table has a row per header of the schema.
	letters := schematest.Doc(t, schemaDir, "dead-letter-headers.json").(map[string]any)
	for h := range letters["properties"].(map[string]any) {
		if !strings.Contains(string(data), "\n| `"+h+"` |") {
			t.Errorf("docs/contract.md section 6 has no row for the header %s", h)
		}
	}
}

// --- 3. The schemas and the Go types list the same fields ---

// jsonFields returns the JSON names of t's fields.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// resolve follows a local "#/$defs/x" $ref.
func resolve(t *testing.T, root, node map[string]any) map[string]any {
	t.Helper()
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		t.Fatalf("$ref %s is not local", ref)
	}
	def, ok := root["$defs"].(map[string]any)[name].(map[string]any)
	if !ok {
		t.Fatalf("$ref %s resolves to nothing", ref)
	}
	return resolve(t, root, def)
}

var leafStructs = []reflect.Type{reflect.TypeFor[time.Time](), reflect.TypeFor[json.RawMessage]()}

// sameFields compares an object schema's properties with typ's fields,
// recursing into struct-typed fields through their property's $ref.
func sameFields(t *testing.T, root, node map[string]any, typ reflect.Type, path string) {
	t.Helper()
	node = resolve(t, root, node)
	props, _ := node["properties"].(map[string]any)
	fields := jsonFields(typ)
	var inSchema, inGo []string
	for k := range props {
		inSchema = append(inSchema, k)
	}
	for k := range fields {
		inGo = append(inGo, k)
	}
	slices.Sort(inSchema)
	slices.Sort(inGo)
	if !slices.Equal(inSchema, inGo) {
		t.Errorf("%s: schema properties %v, Go %s fields %v", path, inSchema, typ, inGo)
	}
	if req, ok := node["required"].([]any); ok {
		for _, r := range req {
			if _, ok := fields[r.(string)]; !ok {
				t.Errorf("%s: requires %v, which %s has no field for", path, r, typ)
			}
		}
	}
	for name, ft := range fields {
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() != reflect.Struct || slices.Contains(leafStructs, ft) {
			continue
		}
		if p, ok := props[name].(map[string]any); ok {
			sameFields(t, root, p, ft, path+"."+name)
		}
	}
}

func TestSchemaFieldsMatchGoTypes(t *testing.T) {
	t.Run("intent", func(t *testing.T) {
		root := schematest.Doc(t, schemaDir, "intent.json").(map[string]any)
		sameFields(t, root, root, reflect.TypeFor[events.Intent](), "intent")
		// The provider blocks' rules, applied to the chosen one, list the
		// same fields as their shapes (which the walk above reached).
		defs := root["$defs"].(map[string]any)
		sameFields(t, root, defs["mogs"].(map[string]any), reflect.TypeFor[events.MOGSPayment](), "$defs.mogs")
		sameFields(t, root, defs["midas"].(map[string]any), reflect.TypeFor[events.MidasPayment](), "$defs.midas")
		// And the rules are what the chosen provider gets.
		var chosen []string
		for _, branch := range defs["payment"].(map[string]any)["allOf"].([]any) {
			then := branch.(map[string]any)["then"].(map[string]any)
			for k, v := range then["properties"].(map[string]any) {
				chosen = append(chosen, k+"="+v.(map[string]any)["$ref"].(string))
			}
		}
		slices.Sort(chosen)
		if want := []string{"midas=#/$defs/midas", "mogs=#/$defs/mogs"}; !slices.Equal(chosen, want) {
			t.Errorf("payment.allOf applies %v, want %v", chosen, want)
		}
	})
	t.Run("status event", func(t *testing.T) {
		root := schematest.Doc(t, schemaDir, "status-event.json").(map[string]any)
		sameFields(t, root, root, reflect.TypeFor[events.StatusEvent](), "status event")
	})
	t.Run("dead-letter headers", func(t *testing.T) {
		root := schematest.Doc(t, schemaDir, "dead-letter-headers.json").(map[string]any)
		var inSchema []string
		for k := range root["properties"].(map[string]any) {
			inSchema = append(inSchema, k)
		}
		// Every header constant but HeaderReplay, which marks a republished
		// intent, not a dead letter.
		inGo := []string{events.HeaderMsgID, events.HeaderReason, events.HeaderError, events.HeaderState,
			events.HeaderAttempts, events.HeaderFailedAt, events.HeaderOriginalSubject, events.HeaderTruncated}
		consts := goConstants(t, "string", "Header")
		if want := append(slices.Clone(inGo), events.HeaderReplay); !sameSet(consts, want) {
			t.Errorf("events.go declares headers %v; this test knows %v: place the new one", consts, want)
		}
		if !sameSet(inSchema, inGo) {
			t.Errorf("schema headers %v, Go %v", inSchema, inGo)
		}
	})
}

// stateNames is events.States, the one list of states, as strings.
func stateNames() []string {
	var names []string
	for _, s := range events.States() {
		names = append(names, string(s))
	}
	return names
}

// The state and reason enums are Go's list and constants and the
// contract's tables.
func TestSchemaEnumsMatchGoAndContract(t *testing.T) {
	states := stateNames()
	reasons := goConstants(t, "Reason", "Reason")
	if len(states) != 9 || len(reasons) != 5 {
		t.Fatalf("found states %v and reasons %v in events.go", states, reasons)
	}
	status := schematest.Doc(t, schemaDir, "status-event.json").(map[string]any)
	letters := schematest.Doc(t, schemaDir, "dead-letter-headers.json").(map[string]any)
	enum := func(doc map[string]any, prop string) []string {
		var out []string
		for _, v := range doc["properties"].(map[string]any)[prop].(map[string]any)["enum"].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if got := enum(status, "state"); !sameSet(got, states) {
		t.Errorf("status-event.json state enum %v, Go %v", got, states)
	}
	if got := enum(letters, "Coinsaga-State"); !sameSet(got, states) {
		t.Errorf("dead-letter-headers.json Coinsaga-State enum %v, Go %v", got, states)
	}
	if got := enum(letters, "Coinsaga-Reason"); !sameSet(got, reasons) {
		t.Errorf("dead-letter-headers.json Coinsaga-Reason enum %v, Go %v", got, reasons)
	}
	// The failure states, which carry error, are the terminal ones but
	// completed.
	var failure []string
	for _, s := range states {
		if events.State(s).Terminal() && s != string(events.StateCompleted) {
			failure = append(failure, s)
		}
	}
	cond := status["allOf"].([]any)[0].(map[string]any)["if"].(map[string]any)["properties"].(map[string]any)["state"].(map[string]any)["enum"].([]any)
	var errorStates []string
	for _, v := range cond {
		errorStates = append(errorStates, v.(string))
	}
	if !sameSet(errorStates, failure) {
		t.Errorf("status-event.json requires error on %v, want the terminal states but completed %v", errorStates, failure)
	}

	// The contract's state table (section 3) and reasons (section 6).
	contract, err := os.ReadFile(filepath.Join(docsDir, "contract.md"))
	if err != nil {
		t.Fatal(err)
	}
	var docStates []string
	section := ""
	for _, line := range strings.Split(string(contract), "\n") {
		if strings.HasPrefix(line, "## ") {
			section = line
		}
		if strings.HasPrefix(section, "## 3.") && strings.HasPrefix(line, "| `") {
			cell := strings.Trim(strings.TrimSpace(strings.Split(line, "|")[1]), "`")
			docStates = append(docStates, cell)
		}
		if strings.HasPrefix(line, "| `Coinsaga-Reason` |") {
			for _, r := range reasons {
				if !strings.Contains(line, "`"+r+"`") {
					t.Errorf("contract.md's Coinsaga-Reason row does not name %s", r)
				}
			}
		}
	}
	if !sameSet(docStates, states) {
		t.Errorf("contract.md section 3 lists states %v, Go %v", docStates, states)
	}
}

// goConstants parses events.go for the constants of type typ (or, for
// "string", untyped string constants) whose name starts with prefix, and
// returns their values.
func goConstants(t *testing.T, typ, prefix string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "events.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			tname := "string"
			if id, ok := vs.Type.(*ast.Ident); ok {
				tname = id.Name
			}
			if tname != typ {
				continue
			}
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, prefix) || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, v)
			}
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// --- 4. What the worker writes validates ---

// workerEvent fills a StatusEvent for state s the way the worker's
// statusMessage does: balance on debited and completed once the pay
// reported it, error on the failure states.
func workerEvent(s events.State, seq int) events.StatusEvent {
	ev := events.StatusEvent{
		OutOrderID: "1659497694000", MgID: "1468180338417074177", RoomID: "9009", FromUID: "001",
		State: s, Seq: seq, At: time.Date(2026, 12, 2, 6, 19, 13, 922444722, time.UTC),
		Provider: events.ProviderMOGS, Amount: 100,
	}
	if s != events.StateAccepted {
		ev.OrderID, ev.BillNo = "1796192349948000001", "1659497694000"
	}
	switch s {
	case events.StateDebited, events.StateCompleted:
		b := int64(999900)
		ev.Balance = &b
	case events.StateRejected, events.StateFailed, events.StateCompensated, events.StateNeedsAttention:
		ev.Error = &events.EventError{Code: "insufficient_balance", Message: "pay 1659497694000: MOGS 90013"}
	}
	return ev
}

func TestWorkerStatusEventsValidate(t *testing.T) {
	sch := schematest.Load(t, schemaDir, "status-event.json")
	mustValidate := func(t *testing.T, ev events.StatusEvent) {
		t.Helper()
		data, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := schemaVerdict(sch, data); err != nil {
			t.Errorf("%s: %v\n%s", ev.State, err, data)
		}
	}
	for i, s := range events.States() {
		mustValidate(t, workerEvent(s, i+1))
	}

	// What a rejected intent's event echoes may break every rule.
	rej := events.StatusEvent{OutOrderID: "x", MgID: "y", RoomID: "z", State: events.StateRejected, Seq: 1,
		At: time.Now().UTC(), Provider: "paypal", Amount: -5,
		Error: &events.EventError{Code: "invalid_intent", Message: "rejected intent: payment.provider must be \"mogs\" or \"midas\""}}
	mustValidate(t, rej)
	rej.Provider, rej.Amount = "", 0 // omitted
	mustValidate(t, rej)
	// The balance is optional where allowed: a pay that did not report it.
	deb := workerEvent(events.StateDebited, 3)
	deb.Balance = nil
	mustValidate(t, deb)
	// A zero balance is still a balance.
	zero := int64(0)
	deb.Balance = &zero
	mustValidate(t, deb)
	// Non-UTC offsets and whole seconds are RFC 3339 too.
	acc := workerEvent(events.StateAccepted, 1)
	acc.At = time.Date(2026, 12, 2, 14, 19, 13, 0, time.FixedZone("CST", 8*3600))
	mustValidate(t, acc)

	// And the schema's conditions bite: what the worker never writes,
	// each a change to a valid debited event.
	for _, c := range []struct {
		name string
		edit func(map[string]any)
	}{
		{"error on a state that is no failure", func(m map[string]any) {
			m["error"] = map[string]any{"code": "timeout", "message": "x"}
		}},
		{"failure without error", func(m map[string]any) {
			delete(m, "balance")
			m["state"] = "failed"
		}},
		{"balance on a state that has none", func(m map[string]any) { m["state"] = "ordered" }},
		{"unknown provider outside rejected", func(m map[string]any) { m["provider"] = "paypal" }},
		{"no provider outside rejected", func(m map[string]any) { delete(m, "provider") }},
		{"no amount outside rejected", func(m map[string]any) { delete(m, "amount") }},
		{"amount beyond int32 outside rejected", func(m map[string]any) { m["amount"] = 2147483648 }},
		{"no from_uid", func(m map[string]any) { delete(m, "from_uid") }},
		{"seq 0", func(m map[string]any) { m["seq"] = 0 }},
		{"at not RFC 3339", func(m map[string]any) { m["at"] = "2026-12-02 06:19:13" }},
		{"unknown state", func(m map[string]any) { m["state"] = "paid" }},
		{"bad out_order_id", func(m map[string]any) { m["out_order_id"] = "a.b" }},
		{"bill_no starting with _", func(m map[string]any) { m["bill_no"] = "_1659497694000" }},
		{"bill_no of 64 characters", func(m map[string]any) { m["bill_no"] = strings.Repeat("b", 64) }},
		{"error without code", func(m map[string]any) {
			delete(m, "balance")
			m["state"], m["error"] = "failed", map[string]any{"message": "x"}
		}},
	} {
		data, err := json.Marshal(workerEvent(events.StateDebited, 3))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		c.edit(m)
		data, _ = json.Marshal(m)
		if schemaVerdict(sch, data) == nil {
			t.Errorf("%s: the schema accepts %s", c.name, data)
		}
	}
}

func TestDeadLetterHeadersValidate(t *testing.T) {
	sch := schematest.Load(t, schemaDir, "dead-letter-headers.json")
	at := time.Date(2026, 12, 2, 6, 19, 13, 922444722, time.UTC)
	good := []events.DeadLetter{
		{Reason: events.ReasonInvalid, Error: "invalid intent: not a JSON object", Attempts: 1, FailedAt: at,
			OriginalSubject: "coinsaga.intents.1468180338417074177.9009"},
		{Reason: events.ReasonInvalid, Error: "invalid intent: 70000 bytes exceeds the 65536-byte limit", Attempts: 2, FailedAt: at,
			OriginalSubject: "coinsaga.intents.1468180338417074177.9009", TruncatedFrom: 70000},
		{Reason: events.ReasonRejected, Error: "invalid_intent: rejected intent: payment.provider must be \"mogs\" or \"midas\"",
			State: string(events.StateRejected), Attempts: 1, FailedAt: at, OriginalSubject: "coinsaga.intents.1.2"},
		{Reason: events.ReasonConflict, Error: "out_order_id 1 already names a different intent (order state completed)",
			Attempts: 1, FailedAt: at, OriginalSubject: "coinsaga.intents.1.2"},
		{Reason: events.ReasonConflict, Error: "sud_order_conflict: SUD holds another order", State: string(events.StateFailed),
			Attempts: 1, FailedAt: at, OriginalSubject: "coinsaga.intents.1.2"},
		{Reason: events.ReasonFailed, Error: "confirm_timeout: the debit did not show\nwithin 2m", State: string(events.StateCompensated),
			Attempts: 3, FailedAt: at, OriginalSubject: "coinsaga.intents.1.2"},
		{Reason: events.ReasonNeedsAttention, Error: "bill_expired: ...", State: string(events.StateNeedsAttention),
			Attempts: 10, FailedAt: at.In(time.FixedZone("CST", 8*3600)), OriginalSubject: "game.intents.1.2"},
	}
	for _, d := range good {
		h := events.DeadLetterHeaders(d)
		h.Set(events.HeaderMsgID, "1659497694000:dlq:3")
		if err := schemaVerdict(sch, schematest.HeaderObject(t, h)); err != nil {
			t.Errorf("%s: %v\n%v", d.Reason, err, h)
		}
	}
	bad := []struct {
		name string
		edit func(nats.Header)
	}{
		{"invalid with a state", func(h nats.Header) { h.Set(events.HeaderState, "rejected") }},
		{"rejected without a state", func(h nats.Header) {
			h.Set(events.HeaderReason, "rejected")
			h.Del(events.HeaderState)
		}},
		{"unknown reason", func(h nats.Header) { h.Set(events.HeaderReason, "expired") }},
		{"error on two lines", func(h nats.Header) { h.Set(events.HeaderError, "a\nb") }},
		{"attempts not a number", func(h nats.Header) { h.Set(events.HeaderAttempts, "three") }},
		{"failed-at not RFC 3339", func(h nats.Header) { h.Set(events.HeaderFailedAt, "Wed Dec 2 06:19:13 UTC 2026") }},
		{"truncated 0", func(h nats.Header) { h.Set(events.HeaderTruncated, "0") }},
		{"no original subject", func(h nats.Header) { h.Del(events.HeaderOriginalSubject) }},
		{"no failed-at", func(h nats.Header) { h.Del(events.HeaderFailedAt) }},
	}
	for _, c := range bad {
		h := events.DeadLetterHeaders(good[0])
		c.edit(h)
		if schemaVerdict(sch, schematest.HeaderObject(t, h)) == nil {
			t.Errorf("%s: the schema accepts %v", c.name, h)
		}
	}
}
