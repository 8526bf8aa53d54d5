package providers

import "context"

// Account identifies a player's coin account at one provider and carries
// the login material that provider needs. Only the block of the provider in
// use is read. Every field except OpenID is a secret or close to one: never
// log an Account.
type Account struct {
	OpenID string
	MOGS   MOGSLogin
	Midas  MidasLogin
}

// MOGSLogin is what MOGS needs besides the openid (query and body fields).
type MOGSLogin struct {
	JSCode     string // js_code: MOGS's own login token (secret)
	AppPlat    int    // app_plat: 1 WeChat (the only one supported today)
	OSPlatID   int    // os_plat_id: 1 android (the only one supported today)
	SessionKey string // session_key, QQ only (secret)
	PayItem    string // pay_item, free text for the provider's records
}

// MidasLogin is what YSDK/Midas mpay needs besides the openid.
type MidasLogin struct {
	OpenKey     string // openkey: QQ paytoken or WeChat access_token (secret)
	PF          string
	PFKey       string // secret
	ZoneID      string // default "1"
	SessionType string // kp_actoken, wc_actoken, st_dummy, openkey
	UserIP      string
	AccountType string // common (default) or security
	PayItem     string
}

// Balance is a coin account as the provider reports it. Fields a provider
// does not report are zero.
type Balance struct {
	Balance     int64 // coins, gifted included
	GenBalance  int64 // gifted coins
	SaveAmt     int64 // coins ever bought
	SaveSum     int64 // MOGS only
	CostSum     int64 // MOGS only: coins ever spent
	PresentSums int64 // MOGS only: coins ever received as gifts
	FirstSave   bool
}

// Debit asks for Amount coins under the idempotency key BillNo.
type Debit struct {
	BillNo  string
	Amount  int64
	PayItem string
}

// DebitReply is a successful debit. Class is OK or AlreadyDone; on
// AlreadyDone the provider may not repeat the balance, and BalanceKnown says
// whether Balance is the balance after this debit.
type DebitReply struct {
	Class        Class
	BillNo       string
	Balance      int64
	BalanceKnown bool
	UsedGenAmt   int64 // the gifted part of the debit
}

// Cancel reverses the debit with BillNo; Amount is the debited amount.
type Cancel struct {
	BillNo string
	Amount int64
}

// CancelReply is a successful cancel: OK, or AlreadyDone when the bill was
// already cancelled. "Bill not found" is an error with CodeNotFound.
type CancelReply struct {
	Class  Class
	BillNo string
}

// Present gives Amount coins under the idempotency key BillNo.
type Present struct {
	BillNo string
	Amount int64
}

// PresentReply is a successful present.
type PresentReply struct {
	Class   Class
	BillNo  string
	Balance int64
}

// Wallet is one provider's coin API, classified. Every method returns nil
// or an error for which ClassOf is Retryable or Final.
type Wallet interface {
	// Provider names the wallet: "mogs" or "midas".
	Provider() string
	Balance(ctx context.Context, acct Account) (Balance, error)
	Debit(ctx context.Context, acct Account, d Debit) (DebitReply, error)
	Cancel(ctx context.Context, acct Account, c Cancel) (CancelReply, error)
	Present(ctx context.Context, acct Account, p Present) (PresentReply, error)
}
