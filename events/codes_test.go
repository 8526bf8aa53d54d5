package events

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// everyCode lists the exported Code constants; the test below keeps it,
// and them, equal to the contract.
var everyCode = []string{
	CodeInsufficientBalance, CodeLoginFailed, CodeRiskControl, CodeParamError, CodeNotFound,
	CodeAlreadyExists, CodeAlreadyCancelled, CodeBusy, CodeUnavailable, CodeTimeout,
	CodeAuthFailed, CodeGameNotFound, CodeBadReply, CodeUnknown,
	CodeInvalidIntent, CodeRetriesExhausted, CodeConfirmTimeout, CodeSUDExecuteFailed,
	CodeSUDExecuteTimeout, CodeSUDOrderConflict, CodeBillExpired, CodeProviderNotConfigured,
}

func TestEveryErrorCodeOfTheContractHasAConstant(t *testing.T) {
	doc, err := os.ReadFile("../docs/contract.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## 5. Error codes")
	if !ok {
		t.Fatal("docs/contract.md has no section 5, Error codes")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	// The first cell of each table row holds one or more `code`s.
	row := regexp.MustCompile("(?m)^\\| (`[^|]+)\\|")
	code := regexp.MustCompile("`([a-z_]+)`")
	var documented []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		for _, c := range code.FindAllStringSubmatch(m[1], -1) {
			documented = append(documented, c[1])
		}
	}
	if len(documented) < 10 {
		t.Fatalf("found only %d codes in section 5; has its table changed shape?", len(documented))
	}
	t.Run("every documented code has a constant", func(t *testing.T) {
		for _, c := range documented {
			if !slices.Contains(everyCode, c) {
				t.Errorf("docs/contract.md documents %q, which has no events.Code constant", c)
			}
		}
	})
	t.Run("every constant is documented", func(t *testing.T) {
		for _, c := range everyCode {
			if !slices.Contains(documented, c) {
				t.Errorf("events has the code %q, which docs/contract.md section 5 does not document", c)
			}
		}
	})
	t.Run("no two constants share a code", func(t *testing.T) {
		seen := map[string]bool{}
		for _, c := range everyCode {
			if seen[c] {
				t.Errorf("%q twice", c)
			}
			seen[c] = true
		}
	})
}
