package events

// Error codes, as status events carry them in error.code and dead letters
// in Coinsaga-Error (docs/contract.md, section 5). They are stable: a game
// server may switch on them. The constants are untyped so that they serve
// as providers.Code and as plain strings alike.

// Provider outcomes, the same for every provider.
const (
	CodeInsufficientBalance = "insufficient_balance" // the player has too few coins (baseline or pay)
	CodeLoginFailed         = "login_failed"         // the player's login (js_code, openkey) was refused
	CodeRiskControl         = "risk_control"         // the wallet's risk control refused the pay
	CodeParamError          = "param_error"          // the provider refused the request's fields (SUD 10002)
	CodeNotFound            = "not_found"            // the provider has no such bill or order
	CodeAlreadyExists       = "already_exists"       // a repeated call the provider had done already (success)
	CodeAlreadyCancelled    = "already_cancelled"    // a repeated cancel the provider had done already (success)
	CodeBusy                = "busy"                 // transient: retried with the same key
	CodeUnavailable         = "unavailable"          // transient: retried with the same key
	CodeTimeout             = "timeout"              // transient: retried with the same key
	CodeAuthFailed          = "auth_failed"          // bad signature, app key or secret: coinsaga's configuration
	CodeGameNotFound        = "game_not_found"       // SUD does not know the mg_id
	CodeBadReply            = "bad_reply"            // a reply coinsaga could not read (never taken as "not charged")
	CodeUnknown             = "unknown"              // a code coinsaga does not know (never taken as "not charged")
)

// Codes the saga assigns.
const (
	CodeInvalidIntent         = "invalid_intent"          // validation refused the intent (rejected)
	CodeRetriesExhausted      = "retries_exhausted"       // a transient cause outlasted the step's retries
	CodeConfirmTimeout        = "confirm_timeout"         // the debit did not show in the balance in time (compensated)
	CodeSUDExecuteFailed      = "sud_execute_failed"      // SUD reported EXECUTE_FAIL: not paid (failed) or refunded (compensated)
	CodeSUDExecuteTimeout     = "sud_execute_timeout"     // SUD left the action undecided too long (needs_attention)
	CodeSUDOrderConflict      = "sud_order_conflict"      // SUD holds another order under this out_order_id (failed)
	CodeBillExpired           = "bill_expired"            // the bill is too old to be sent or trusted again (needs_attention)
	CodeProviderNotConfigured = "provider_not_configured" // the intent names a wallet the worker has no configuration for
)
