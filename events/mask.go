package events

import (
	"bytes"
	"encoding/json"
	"regexp"
)

// secretKeys are the intent fields that log a player in: showing them
// would let whoever reads the terminal spend the player's coins.
var secretKeys = map[string]bool{"js_code": true, "session_key": true, "openkey": true, "pfkey": true}

// secretPattern finds the same fields in a body that is not valid JSON.
var secretPattern = regexp.MustCompile(`"(js_code|session_key|openkey|pfkey)"(\s*:\s*)"(?:[^"\\]|\\.)*"`)

// MaskSecrets returns body indented, with every secret field's value
// replaced by "***" at any depth. A body that does not parse (an invalid
// intent) is masked by pattern instead and otherwise left as it is.
func MaskSecrets(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return secretPattern.ReplaceAll(body, []byte(`"$1"$2"***"`))
	}
	maskValue(v)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return secretPattern.ReplaceAll(body, []byte(`"$1"$2"***"`))
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

func maskValue(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if secretKeys[k] {
				if s, ok := child.(string); ok && s == "" {
					continue // an empty field hides nothing; "***" would mislead
				}
				t[k] = "***"
				continue
			}
			maskValue(child)
		}
	case []any:
		for _, child := range t {
			maskValue(child)
		}
	}
}
