package worker

import (
	"context"
	"fmt"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
)

// OrderCalls makes the provider calls of one order that succeeds at every
// step, in the saga's order: the baseline balance, SUD create_order
// (query_order when SUD has the order already), the pay with the order's
// first bill, and the balance read that confirms it. It builds every
// request with the saga's own helpers, so a load generator measuring the
// cost of the calls (the bench's provider ceiling) measures the calls the
// worker makes, not a copy that drifts from them. It commits nothing and
// decides nothing: the first error stops it.
func OrderCalls(ctx context.Context, orders OrderService, wallets map[string]providers.Wallet, in *events.Intent) error {
	w, ok := wallets[in.Payment.Provider]
	if !ok {
		return fmt.Errorf("order %s: no %s wallet is configured", in.OutOrderID, in.Payment.Provider)
	}
	acct := account(in)
	if _, err := w.Balance(ctx, acct); err != nil {
		return fmt.Errorf("baseline balance %s: %w", in.OutOrderID, err)
	}
	s := &saga{sud: orders, wallets: wallets}
	if _, err := s.createOrder(ctx, in); err != nil {
		return err // createOrder names the call and the order
	}
	bill := billNo(in.OutOrderID, 0)
	if _, err := w.Debit(ctx, acct, providers.Debit{BillNo: bill, Amount: in.Payment.Amount, PayItem: payItem(in)}); err != nil {
		return fmt.Errorf("pay %s: %w", bill, err)
	}
	if _, err := w.Balance(ctx, acct); err != nil {
		return fmt.Errorf("confirm balance %s: %w", in.OutOrderID, err)
	}
	return nil
}
