package providertest

import (
	"context"

	"github.com/coinsaga/coinsaga/providers"
)

// Op is one of the four calls of a wallet, for tables of tests that make
// each of them in turn.
type Op int

const (
	OpBalance Op = iota
	OpPay
	OpCancel
	OpPresent
)

// Ops are the four calls, in the order of WalletEndpoints.
var Ops = []Op{OpBalance, OpPay, OpCancel, OpPresent}

// Endpoint is the endpoint of op among ep.
func (ep WalletEndpoints) Endpoint(op Op) string {
	return [...]string{ep.Balance, ep.Pay, ep.Cancel, ep.Present}[op]
}

// Do makes the call op on c for a, moving 1 coin under billNo (a balance
// read takes none), and returns the class of its reply: OK for a balance
// read that succeeded.
func (op Op) Do(ctx context.Context, c providers.Wallet, a providers.Account, billNo string) (providers.Class, error) {
	var (
		class providers.Class
		err   error
	)
	switch op {
	case OpBalance:
		_, err = c.Balance(ctx, a)
	case OpPay:
		var r providers.DebitReply
		r, err = c.Debit(ctx, a, providers.Debit{BillNo: billNo, Amount: 1})
		class = r.Class
	case OpCancel:
		var r providers.CancelReply
		r, err = c.Cancel(ctx, a, providers.Cancel{BillNo: billNo, Amount: 1})
		class = r.Class
	case OpPresent:
		var r providers.PresentReply
		r, err = c.Present(ctx, a, providers.Present{BillNo: billNo, Amount: 1})
		class = r.Class
	}
	return class, err
}
