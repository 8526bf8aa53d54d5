package providertest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/coinsaga/coinsaga/providers"
)

// CodeTableHolds holds a provider's code table to its own word: it is
// consistent, every row names one of sources (by prefix), and every row
// classifies as it states on each endpoint it applies to (all, for rows
// that name none).
func CodeTableHolds(t *testing.T, table providers.CodeTable, all []string, classify func(endpoint string, ret int) (providers.Class, providers.Code), sources ...string) {
	t.Helper()
	if err := table.Check(); err != nil {
		t.Fatalf("the table is inconsistent: %v", err)
	}
	for i, row := range table {
		t.Run(fmt.Sprintf("row %d (ret %d) names its source", i, row.Ret), func(t *testing.T) {
			t.Parallel()
			for _, s := range sources {
				if strings.HasPrefix(row.Source, s) {
					return
				}
			}
			t.Errorf("source %q is neither the seed, a providers.md rule, nor an assumption", row.Source)
		})
		eps := row.Endpoints
		if eps == nil {
			eps = all
		}
		for _, ep := range eps {
			if got, _ := table.Lookup(ep, row.Ret); row.Endpoints == nil && got.Endpoints != nil {
				continue // a row naming ep says what ret means there
			}
			t.Run(fmt.Sprintf("ret %d on %s is %v %s as its row states", row.Ret, ep, row.Class, row.Code), func(t *testing.T) {
				t.Parallel()
				class, code := classify(ep, row.Ret)
				if class != row.Class || code != row.Code {
					t.Errorf("Classify(%s, %d) = %v/%q, want %v/%q", ep, row.Ret, class, code, row.Class, row.Code)
				}
			})
		}
	}
}

// ClassifyCases are return codes on endpoints and the outcomes they must
// classify as. The element type has no name so that a table may list its
// rows without field names.
type ClassifyCases []struct {
	Name     string
	Endpoint string
	Ret      int
	Class    providers.Class
	Code     providers.Code
}

// Classifies checks classify against every case.
func Classifies(t *testing.T, classify func(endpoint string, ret int) (providers.Class, providers.Code), cases ClassifyCases) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			t.Parallel()
			class, code := classify(tt.Endpoint, tt.Ret)
			if class != tt.Class || code != tt.Code {
				t.Errorf("Classify(%s, %d) = %v/%q, want %v/%q", tt.Endpoint, tt.Ret, class, code, tt.Class, tt.Code)
			}
		})
	}
}

// WantErr checks that err is a *providers.Error of provider with the given
// class and code, and that its text holds none of secrets.
func WantErr(t *testing.T, err error, provider string, class providers.Class, code providers.Code, secrets ...string) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *providers.Error %v/%s", err, class, code)
	}
	if pe.Class != class || pe.Code != code {
		t.Fatalf("err = %v, want %v/%s", err, class, code)
	}
	if pe.Provider != provider {
		t.Errorf("Provider = %q, want %s", pe.Provider, provider)
	}
	for _, secret := range secrets {
		if strings.Contains(pe.Error(), secret) {
			t.Errorf("the error leaks a secret: %v", pe)
		}
	}
	return pe
}
