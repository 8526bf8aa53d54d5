package service

import (
	"fmt"
	"log/slog"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/config"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/midas"
	"github.com/coinsaga/coinsaga/providers/mogs"
	"github.com/coinsaga/coinsaga/providers/protect"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/worker"
)

// NewProviders builds the SUD client and the wallets from cfg; every call
// is observed by obs (nil: not observed).
func NewProviders(cfg *config.Config, obs providers.Observer) (*sud.Client, map[string]providers.Wallet, error) {
	httpClient := providers.NewHTTPClient(cfg.Timeout)
	sc, err := sud.New(sud.Config{
		AppID: cfg.SUD.AppID, AppSecret: cfg.SUD.AppSecret,
		CreateOrderURL: cfg.SUD.CreateOrderURL, QueryOrderURL: cfg.SUD.QueryOrderURL, ASCBaseURL: cfg.SUD.ASCBaseURL,
		HTTP: httpClient, Timeout: cfg.Timeout, Observer: obs, Now: cfg.Now,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sud client: %w", err)
	}
	wallets := map[string]providers.Wallet{}
	if cfg.MOGS.BaseURL != "" {
		wallets[events.ProviderMOGS] = mogs.New(mogs.Config{BaseURL: cfg.MOGS.BaseURL, AppID: cfg.MOGS.AppID,
			HTTP: httpClient, Timeout: cfg.Timeout, Observer: obs})
	}
	if cfg.Midas.BaseURL != "" {
		wallets[events.ProviderMidas] = midas.New(midas.Config{BaseURL: cfg.Midas.BaseURL, AppID: cfg.Midas.AppID,
			AppKey: cfg.Midas.AppKey, HTTP: httpClient, Timeout: cfg.Timeout, Observer: obs, Now: cfg.Now})
	}
	return sc, wallets, nil
}

// Protect puts the guards of cfg (bulkheads, rate limits, circuit
// breakers, per endpoint) around the SUD client and every wallet.
func Protect(sc *sud.Client, wallets map[string]providers.Wallet, cfg protect.Config, m *worker.Metrics, log *slog.Logger) (worker.OrderService, map[string]providers.Wallet) {
	cfg.Observer, cfg.Logger = m, log.With("component", "protect")
	guarded := make(map[string]providers.Wallet, len(wallets))
	for name, w := range wallets {
		guarded[name] = protect.Wallet(w, cfg)
	}
	return protect.Orders(sc, cfg), guarded
}
