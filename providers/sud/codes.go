package sud

import "github.com/coinsaga/coinsaga/providers"

// Return codes, from the seed and SUD's public docs (see CodeTable for the
// source of each).
const (
	RetOK               = 0
	RetServiceException = 10001
	RetParamError       = 10002
	RetInvalidAppKey    = 10003
	RetInvalidAppSecret = 10004
	RetGameNotFound     = 10111
	RetOrderExists      = 70501
	RetOrderNotFound    = 70503
)

// Where a row of the code table comes from.
const (
	SourceSeed       = "seed"        // ../seeds/sud-create-order-api.md
	SourcePublicDocs = "public docs" // SUD's public docs, as providers.md quotes them
	SourceAssumption = "assumption"  // not documented: our choice, written down
)

// CodeRow is one line of the SUD code table: what ret_code Ret means on
// Endpoint ("" = every endpoint), and where that knowledge comes from.
type CodeRow struct {
	Ret      int
	Endpoint string
	Class    providers.Class
	Code     providers.Code // "" for OK and AlreadyDone
	Meaning  string
	Source   string // SourceSeed, SourcePublicDocs or SourceAssumption
	Why      string // the reasoning behind the class, where it is ours
}

// codeTable is the single place that knows SUD's return codes. A row for a
// specific endpoint wins over a row for every endpoint ("").
var codeTable = []CodeRow{
	{RetOK, "", providers.OK, "", "ok", SourceSeed, "the seed's reply example"},
	{RetOrderExists, EndpointCreateOrder, providers.AlreadyDone, "", "out_order_id already exists", SourceSeed,
		"create_order is keyed by out_order_id: an earlier call made this order; query_order tells which"},
	{RetOrderExists, "", providers.Final, providers.CodeAlreadyExists, "out_order_id already exists", SourceAssumption,
		"documented for create_order only; anywhere else it cannot mean our call succeeded"},
	{RetParamError, "", providers.Final, providers.CodeParamError, "parameter error", SourceSeed,
		"the seed says fix the request before sending it again"},
	{RetServiceException, "", providers.Retryable, providers.CodeBusy, "service exception", SourcePublicDocs,
		"providers.md: retryable; create_order is idempotent on out_order_id"},
	{RetInvalidAppKey, "", providers.Final, providers.CodeAuthFailed, "invalid app key", SourcePublicDocs,
		"our configuration (or clock): asking again fails the same way"},
	{RetInvalidAppSecret, "", providers.Final, providers.CodeAuthFailed, "invalid app secret", SourcePublicDocs,
		"our configuration (or clock): asking again fails the same way"},
	{RetGameNotFound, "", providers.Final, providers.CodeGameNotFound, "game not found", SourcePublicDocs,
		"the mg_id is unknown to SUD: no order was made"},
	{RetOrderNotFound, "", providers.Final, providers.CodeNotFound, "order not found", SourcePublicDocs,
		"query_order's answer that the order does not exist"},
}

// unknownRow classifies a code the table does not know. It is Final: an
// unexplained refusal is not a reason to send the same order again, and a
// worker that needs to know whether the order exists asks query_order.
var unknownRow = CodeRow{Class: providers.Final, Code: providers.CodeUnknown, Meaning: "unknown code", Source: SourceAssumption,
	Why: "an unexplained code is treated as a refusal; query_order settles whether the order exists"}

// CodeTable returns a copy of the SUD code table, for documentation and
// tests.
func CodeTable() []CodeRow { return append([]CodeRow(nil), codeTable...) }

// Lookup returns the row that classifies ret on endpoint: the endpoint's
// own row, else the row for every endpoint, else the unknown-code row.
func Lookup(endpoint string, ret int) CodeRow {
	var general *CodeRow
	for i := range codeTable {
		r := &codeTable[i]
		if r.Ret != ret {
			continue
		}
		if r.Endpoint == endpoint {
			return *r
		}
		if r.Endpoint == "" && general == nil {
			general = r
		}
	}
	if general != nil {
		return *general
	}
	u := unknownRow
	u.Ret = ret
	return u
}

// Classify maps a SUD ret_code on endpoint to an outcome. Success and
// already-done classes carry an empty Code.
func Classify(endpoint string, ret int) (providers.Class, providers.Code) {
	r := Lookup(endpoint, ret)
	return r.Class, r.Code
}
