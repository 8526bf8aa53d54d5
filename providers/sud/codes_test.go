package sud_test

import (
	"fmt"
	"testing"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sud"
)

func TestCodeTable(t *testing.T) {
	t.Parallel()
	rows := sud.CodeTable()

	t.Run("every row names its source and the reason for its class", func(t *testing.T) {
		for _, r := range rows {
			switch r.Source {
			case sud.SourceSeed, sud.SourcePublicDocs, sud.SourceAssumption:
			default:
				t.Errorf("ret %d on %q: source %q", r.Ret, r.Endpoint, r.Source)
			}
			if r.Meaning == "" || r.Why == "" {
				t.Errorf("ret %d on %q has no meaning or reason", r.Ret, r.Endpoint)
			}
		}
	})

	t.Run("a code is empty exactly on success and already-done rows", func(t *testing.T) {
		for _, r := range rows {
			done := r.Class == providers.OK || r.Class == providers.AlreadyDone
			if done != (r.Code == "") {
				t.Errorf("ret %d on %q: class %v with code %q", r.Ret, r.Endpoint, r.Class, r.Code)
			}
		}
	})

	t.Run("no code is listed twice for the same endpoint", func(t *testing.T) {
		seen := map[string]bool{}
		for _, r := range rows {
			k := fmt.Sprintf("%d/%s", r.Ret, r.Endpoint)
			if seen[k] {
				t.Errorf("ret %d on %q listed twice", r.Ret, r.Endpoint)
			}
			seen[k] = true
		}
	})

	t.Run("the seed's codes are sourced to the seed", func(t *testing.T) {
		for _, ret := range []int{0, 10002} {
			if r := sud.Lookup(sud.EndpointCreateOrder, ret); r.Source != sud.SourceSeed {
				t.Errorf("ret %d: source %q", ret, r.Source)
			}
		}
		if r := sud.Lookup(sud.EndpointCreateOrder, 70501); r.Source != sud.SourceSeed {
			t.Errorf("70501 on create_order: source %q", r.Source)
		}
	})

	t.Run("Classify answers what the table says", func(t *testing.T) {
		for _, r := range rows {
			ep := r.Endpoint
			if ep == "" {
				// No row names this endpoint, so the general row answers.
				ep = "some_endpoint"
			}
			if c, code := sud.Classify(ep, r.Ret); c != r.Class || code != r.Code {
				t.Errorf("Classify(%s, %d) = %v/%q, the row says %v/%q", ep, r.Ret, c, code, r.Class, r.Code)
			}
		}
	})

	t.Run("an unknown code is a final unknown, labelled an assumption", func(t *testing.T) {
		r := sud.Lookup(sud.EndpointCreateOrder, 42)
		if r.Ret != 42 || r.Class != providers.Final || r.Code != providers.CodeUnknown || r.Source != sud.SourceAssumption {
			t.Errorf("row = %+v", r)
		}
	})

	t.Run("the table is a copy", func(t *testing.T) {
		rows[0].Class = providers.Final
		if c, _ := sud.Classify(sud.EndpointCreateOrder, 0); c != providers.OK {
			t.Error("changing the returned table changed the classification")
		}
	})
}
