package events

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// secretNames are the intent fields that log a player in (MOGSPayment's
// js_code and session_key, MidasPayment's openkey and pfkey): showing
// them would let whoever reads the terminal spend the player's coins.
var secretNames = [...]string{"js_code", "session_key", "openkey", "pfkey"}

// maxSecretKeyLen bounds the bytes of a quoted key worth decoding: the
// longest name with every character written as \uXXXX.
const maxSecretKeyLen = 6 * len("session_key")

// masked replaces a secret value.
const masked = `"***"`

// MaskSecrets returns body with the value of every secret field replaced
// by "***", at any depth and of any JSON type, then indented if what is
// left is valid JSON; an empty string stays empty, as it hides nothing.
//
// A key is a secret field whenever encoding/json would decode it into
// one: its name matched without regard to case (Unicode folding, as
// encoding/json does: "JS_CODE", "ſession_key"), escapes decoded
// ("js\u005fcode"). The masking reads the bytes as text rather than
// parsing them, so a body that is not valid JSON (an invalid intent,
// duplicate keys, a stray quote) is masked the same way, and a value cut
// off before its end is masked to the end of the body. Keys keep their
// order and spelling, and duplicates all show.
func MaskSecrets(body []byte) []byte {
	out := maskText(body)
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "  "); err != nil {
		return out
	}
	return bytes.TrimRight(buf.Bytes(), " \t\r\n")
}

// maskText masks every value that follows a secret key. It looks for a
// key at every quote, not only where a parser would expect one, so a
// stray quote cannot make it skip a key; in valid JSON only real keys
// are a quoted name followed by a colon.
func maskText(body []byte) []byte {
	out := make([]byte, 0, len(body))
	copied := 0 // body[:copied] is in out
	for i := 0; i < len(body); i++ {
		if body[i] != '"' {
			continue
		}
		start, ok := secretKeyAt(body, i)
		if !ok {
			continue
		}
		end := valueEnd(body, start)
		if v := body[start:end]; len(v) == 0 || string(v) == `""` {
			i = end - 1
			continue
		}
		out = append(out, body[copied:start]...)
		out = append(out, masked...)
		copied = end
		i = end - 1
	}
	return append(out, body[copied:]...)
}

// secretKeyAt reports whether a secret key starts at the quote body[i],
// and if so where its value starts: past the closing quote, the colon
// and the whitespace around it.
func secretKeyAt(body []byte, i int) (int, bool) {
	var name []byte
	j := i + 1
	for ; ; j++ {
		if j >= len(body) || j-i > maxSecretKeyLen+1 {
			return 0, false
		}
		c := body[j]
		if c == '"' {
			break
		}
		if c != '\\' {
			name = append(name, c)
			continue
		}
		// An escape. encoding/json allows \uXXXX and eight one-letter
		// ones; any other \x is read as x, so a key the decoder would
		// refuse is masked all the same.
		j++
		if j >= len(body) {
			return 0, false
		}
		switch c = body[j]; c {
		case 'u':
			r, n := unicodeEscape(body[j-1:])
			name = utf8.AppendRune(name, r)
			j += n - 2
		case 'b':
			name = append(name, '\b')
		case 'f':
			name = append(name, '\f')
		case 'n':
			name = append(name, '\n')
		case 'r':
			name = append(name, '\r')
		case 't':
			name = append(name, '\t')
		default:
			name = append(name, c)
		}
	}
	if !isSecretName(string(name)) {
		return 0, false
	}
	j = skipSpace(body, j+1)
	if j >= len(body) || body[j] != ':' {
		return 0, false
	}
	return skipSpace(body, j+1), true
}

// unicodeEscape decodes the \uXXXX (or surrogate pair) at the start of s
// and says how many bytes it took; a malformed one reads as U+FFFD.
func unicodeEscape(s []byte) (rune, int) {
	r, ok := hex4(s)
	if !ok {
		return utf8.RuneError, 2
	}
	if utf16.IsSurrogate(r) {
		if r2, ok := hex4(s[6:]); ok {
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				return d, 12
			}
		}
		return utf8.RuneError, 6
	}
	return r, 6
}

// hex4 reads \uXXXX at the start of s.
func hex4(s []byte) (rune, bool) {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// isSecretName matches the way encoding/json matches a key to a field
// name: exactly, or else under Unicode case folding.
func isSecretName(name string) bool {
	for _, s := range secretNames {
		if strings.EqualFold(name, s) {
			return true
		}
	}
	return false
}

func skipSpace(body []byte, i int) int {
	for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns where the value starting at body[i] ends: past the
// closing quote of a string, past the bracket that closes an object or
// array, or at the delimiter after anything else (a number, true, a bare
// word of an invalid body), trailing whitespace left out. A value that
// is cut off ends with the body.
func valueEnd(body []byte, i int) int {
	if i >= len(body) {
		return i
	}
	switch body[i] {
	case '"':
		return stringEnd(body, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(body); j++ {
			switch body[j] {
			case '"':
				j = stringEnd(body, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(body)
	}
	j := i
	for j < len(body) && strings.IndexByte(",}]\r\n", body[j]) < 0 {
		j++
	}
	for j > i && (body[j-1] == ' ' || body[j-1] == '\t') {
		j--
	}
	return j
}

// stringEnd returns the index past the quote that closes the string
// whose opening quote is body[i], or len(body) if none does.
func stringEnd(body []byte, i int) int {
	for j := i + 1; j < len(body); j++ {
		switch body[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(body)
}
