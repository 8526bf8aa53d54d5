package protect

import (
	"context"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/midas"
	"github.com/coinsaga/coinsaga/providers/mogs"
	"github.com/coinsaga/coinsaga/providers/sud"
)

// OrderService is SUD's order API as the saga uses it (worker.OrderService,
// which *sud.Client implements), declared here so that protect does not
// import worker.
type OrderService interface {
	CreateOrder(ctx context.Context, req sud.CreateOrderRequest) (sud.CreateOrderReply, error)
	QueryOrder(ctx context.Context, outOrderID string) (sud.Order, error)
}

var _ OrderService = (*sud.Client)(nil)

// Wallet returns w behind guards of its four endpoints, configured by cfg.
// It panics when cfg is invalid: validate a Config read from a file with
// Validate or Problems first. Each call makes guards of its own: wrap each
// wallet once and share the result.
func Wallet(w providers.Wallet, cfg Config) providers.Wallet {
	g := newGuards(cfg)
	p := w.Provider()
	eps := walletEndpoints[p]
	if eps == ([4]string{}) {
		eps = [4]string{"balance", "debit", "cancel", "present"}
	}
	return &wallet{w: w,
		balance: g.guard(p, eps[0]), debit: g.guard(p, eps[1]),
		cancel: g.guard(p, eps[2]), present: g.guard(p, eps[3]),
	}
}

// walletEndpoints names, per provider, the endpoints of Balance, Debit,
// Cancel and Present as its client reports them.
var walletEndpoints = map[string][4]string{
	mogs.Provider:  {mogs.EndpointGetBalance, mogs.EndpointPay, mogs.EndpointCancelPay, mogs.EndpointPresent},
	midas.Provider: {midas.EndpointGetBalance, midas.EndpointPay, midas.EndpointCancelPay, midas.EndpointPresent},
}

type wallet struct {
	w                               providers.Wallet
	balance, debit, cancel, present *guard
}

func (x *wallet) Provider() string { return x.w.Provider() }

func (x *wallet) Balance(ctx context.Context, acct providers.Account) (providers.Balance, error) {
	return run(ctx, x.balance, func(ctx context.Context) (providers.Balance, error) { return x.w.Balance(ctx, acct) })
}

func (x *wallet) Debit(ctx context.Context, acct providers.Account, d providers.Debit) (providers.DebitReply, error) {
	return run(ctx, x.debit, func(ctx context.Context) (providers.DebitReply, error) { return x.w.Debit(ctx, acct, d) })
}

func (x *wallet) Cancel(ctx context.Context, acct providers.Account, c providers.Cancel) (providers.CancelReply, error) {
	return run(ctx, x.cancel, func(ctx context.Context) (providers.CancelReply, error) { return x.w.Cancel(ctx, acct, c) })
}

func (x *wallet) Present(ctx context.Context, acct providers.Account, p providers.Present) (providers.PresentReply, error) {
	return run(ctx, x.present, func(ctx context.Context) (providers.PresentReply, error) { return x.w.Present(ctx, acct, p) })
}

// Orders returns o behind guards of SUD's create_order and query_order,
// configured by cfg; it panics when cfg is invalid, like Wallet.
func Orders(o OrderService, cfg Config) OrderService {
	g := newGuards(cfg)
	return &orders{o: o, create: g.guard(sud.Provider, sud.EndpointCreateOrder), query: g.guard(sud.Provider, sud.EndpointQueryOrder)}
}

type orders struct {
	o             OrderService
	create, query *guard
}

func (x *orders) CreateOrder(ctx context.Context, r sud.CreateOrderRequest) (sud.CreateOrderReply, error) {
	return run(ctx, x.create, func(ctx context.Context) (sud.CreateOrderReply, error) { return x.o.CreateOrder(ctx, r) })
}

func (x *orders) QueryOrder(ctx context.Context, outOrderID string) (sud.Order, error) {
	return run(ctx, x.query, func(ctx context.Context) (sud.Order, error) { return x.o.QueryOrder(ctx, outOrderID) })
}
