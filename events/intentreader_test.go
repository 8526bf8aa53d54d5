package events_test

import (
	"strings"
	"testing"

	"github.com/coinsaga/coinsaga/events"
)

func TestIntentReaderTellsEachValueWithItsPlace(t *testing.T) {
	t.Parallel()
	type got struct {
		n, line int
		data    string
		err     string
		stop    bool
	}
	cases := []struct {
		name  string
		input string
		want  []got
	}{
		{"one intent per line, each on its line", "{\"a\":1}\n{\"b\":2}\n",
			[]got{{n: 1, line: 1, data: `{"a":1}`}, {n: 2, line: 2, data: `{"b":2}`}}},
		{"a pretty-printed intent is compacted and placed at its first line", "\n{\n  \"a\": 1\n}\n",
			[]got{{n: 1, line: 2, data: `{"a":1}`}}},
		{"an array is refused and the rest read", "[1]\n{\"a\":1}\n",
			[]got{{n: 1, line: 1, err: "a JSON array"}, {n: 2, line: 2, data: `{"a":1}`}}},
		{"a value that is no object is refused", "42\n", []got{{n: 1, line: 1, err: "not a JSON object"}}},
		{"malformed JSON stops the reading at its line", "{\"a\":1}\n{\"a\" 1}\n{\"b\":2}\n",
			[]got{{n: 1, line: 1, data: `{"a":1}`}, {n: 2, err: "malformed JSON at line 2", stop: true}}},
		{"an intent left open is refused", "{\"a\":", []got{{n: 1, err: "the input ends inside this intent"}}},
		{"no input is no intent", "  \n", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := events.NewIntentReader(strings.NewReader(c.input))
			var all []got
			for {
				it, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				if it == nil {
					break
				}
				g := got{n: it.N, line: it.Line, data: string(it.Data), stop: it.Stop}
				if it.Err != nil {
					g.err, g.line = it.Err.Error(), 0
				}
				all = append(all, g)
			}
			if len(all) != len(c.want) {
				t.Fatalf("read %+v, want %+v", all, c.want)
			}
			for i, w := range c.want {
				g := all[i]
				if w.err != "" {
					if !strings.Contains(g.err, w.err) || g.n != w.n || g.stop != w.stop {
						t.Errorf("value %d: %+v, want %+v", i+1, g, w)
					}
					continue
				}
				if g != w {
					t.Errorf("value %d: %+v, want %+v", i+1, g, w)
				}
			}
		})
	}
}
