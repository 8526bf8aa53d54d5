package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
)

// errUsage marks a command line that could not be parsed; the flag package
// has already said why.
var errUsage = errors.New("usage")

// newFlags returns a flag set whose usage text starts with synopsis.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("coinsaga "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: coinsaga %s\n\n", synopsis)
		fmt.Fprintln(fs.Output(), "Flags (each also read from COINSAGA_<FLAG>, e.g. --nats-url from COINSAGA_NATS_URL):")
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, then fills every flag not given on the command line
// from its COINSAGA_* environment variable. It returns the names of the
// flags that were set either way.
func parse(fs *flag.FlagSet, args []string) (map[string]bool, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var bad []string
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := envName(f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				bad = append(bad, fmt.Sprintf("%s=%q: %v", env, v, err))
				return
			}
			set[f.Name] = true
		}
	})
	if len(bad) > 0 {
		return nil, fmt.Errorf("bad environment: %s", strings.Join(bad, "; "))
	}
	return set, nil
}

func envName(flagName string) string {
	return "COINSAGA_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// natsFlags are the connection flags of every command that talks to NATS.
type natsFlags struct {
	url, user, password, token, creds, tlsCA, prefix string
}

const defaultNATSURL = "nats://127.0.0.1:4222"

func (n *natsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&n.url, "nats-url", defaultNATSURL, "NATS server URL(s), comma-separated for a cluster")
	fs.StringVar(&n.user, "nats-user", "", "NATS user name")
	fs.StringVar(&n.password, "nats-password", "", "NATS password (prefer COINSAGA_NATS_PASSWORD)")
	fs.StringVar(&n.token, "nats-token", "", "NATS token (prefer COINSAGA_NATS_TOKEN)")
	fs.StringVar(&n.creds, "nats-creds", "", "NATS credentials file (JWT + nkey)")
	fs.StringVar(&n.tlsCA, "nats-tls-ca", "", "CA certificate file to verify the NATS server")
	fs.StringVar(&n.prefix, "prefix", "coinsaga", "subject prefix of the coinsaga subjects and streams")
}

// connect dials NATS with the flags' credentials.
func (n *natsFlags) connect(name string) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("coinsaga " + name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
	}
	if n.user != "" {
		opts = append(opts, nats.UserInfo(n.user, n.password))
	}
	if n.token != "" {
		opts = append(opts, nats.Token(n.token))
	}
	if n.creds != "" {
		opts = append(opts, nats.UserCredentials(n.creds))
	}
	if n.tlsCA != "" {
		opts = append(opts, nats.RootCAs(n.tlsCA))
	}
	nc, err := nats.Connect(n.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", n.url, err)
	}
	return nc, nil
}

// byteSize is a flag holding a number of bytes, written as 1073741824,
// 1GiB, 512MiB, 64KiB or 1GB (decimal units too).
type byteSize int64

func (b *byteSize) String() string {
	if *b == 0 {
		return "0"
	}
	return strings.ReplaceAll(events.FormatBytes(int64(*b)), " ", "")
}

func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

var byteUnits = []struct {
	suffix string
	size   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

func parseBytes(s string) (int64, error) {
	text := strings.TrimSpace(s)
	unit := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(strings.ToUpper(text), strings.ToUpper(u.suffix)) {
			text, unit = strings.TrimSpace(text[:len(text)-len(u.suffix)]), u.size
			break
		}
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || v*float64(unit) > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a size: write bytes, or a number with KiB, MiB, GiB (or KB, MB, GB)", s)
	}
	return int64(v * float64(unit)), nil
}
