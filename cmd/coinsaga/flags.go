package main

import (
	"flag"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/cli"
)

// The flag machinery is internal/cli's; these short names are the ones
// the commands use.
var (
	errUsage     = cli.ErrUsage
	usageErrorf  = cli.Usagef
	newFlags     = cli.NewFlags
	parse        = cli.Parse
	parseSources = cli.ParseSources
	interspersed = cli.Interspersed
	newLogger    = cli.NewLogger
	isTerminal   = cli.IsTerminal
)

// sources says where each flag that was set got its value.
type sources = cli.Sources

// natsFlags are the connection flags of every command that talks to NATS.
type natsFlags struct {
	url, user, password, token, creds, tlsCA, prefix string
}

func (n *natsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&n.url, "nats-url", cli.DefaultNATSURL, "NATS server URL(s), comma-separated for a cluster")
	fs.StringVar(&n.user, "nats-user", "", "NATS user name")
	fs.StringVar(&n.password, "nats-password", "", "NATS password (prefer COINSAGA_NATS_PASSWORD)")
	fs.StringVar(&n.token, "nats-token", "", "NATS token (prefer COINSAGA_NATS_TOKEN)")
	fs.StringVar(&n.creds, "nats-creds", "", "NATS credentials file (JWT + nkey)")
	fs.StringVar(&n.tlsCA, "nats-tls-ca", "", "CA certificate file to verify the NATS server")
	fs.StringVar(&n.prefix, "prefix", events.DefaultPrefix, "subject prefix of the coinsaga subjects and streams")
}

// connect dials NATS with the flags' credentials.
func (n *natsFlags) connect(name string) (*nats.Conn, error) {
	return cli.NATS{URL: n.url, User: n.user, Password: n.password, Token: n.token, Creds: n.creds, TLSCA: n.tlsCA}.Connect(name)
}
