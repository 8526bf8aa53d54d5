package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/coinsaga/coinsaga/events"
)

// NewFlags returns a flag set whose usage text starts with synopsis.
func NewFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("coinsaga "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: coinsaga %s\n", synopsis)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n == 0 {
			return
		}
		fmt.Fprintln(fs.Output(), "\nFlags may come before or after the arguments, and each is also read from")
		fmt.Fprintln(fs.Output(), "COINSAGA_<FLAG>, e.g. --nats-url from COINSAGA_NATS_URL:")
		PrintDefaults(fs)
	}
	if c, ok := stderr.(*FlagCollector); ok {
		c.Sets = append(c.Sets, fs)
	}
	return fs
}

// PrintDefaults is flag.PrintDefaults with the flags written as this
// CLI's messages write them: --name, not -name.
func PrintDefaults(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		var b strings.Builder
		fmt.Fprintf(&b, "  --%s", f.Name)
		typ, usage := flag.UnquoteUsage(f)
		if typ != "" {
			b.WriteString(" " + typ)
		}
		b.WriteString("\n    \t")
		b.WriteString(strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			if typ == "string" {
				fmt.Fprintf(&b, " (default %q)", f.DefValue)
			} else {
				fmt.Fprintf(&b, " (default %v)", f.DefValue)
			}
		}
		fmt.Fprintln(fs.Output(), b.String())
	})
}

// Sources says where each flag that was set got its value: "" for the
// command line, else the environment variable's name.
type Sources map[string]string

// From is " (from COINSAGA_X)" for a flag set from the environment, so
// that an error about its value says where to look; else "".
func (s Sources) From(name string) string {
	if env := s[name]; env != "" {
		return " (from " + env + ")"
	}
	return ""
}

// Parse parses args, then fills every flag not given on the command line
// from its COINSAGA_* environment variable. It returns the names of the
// flags that were set either way.
func Parse(fs *flag.FlagSet, args []string) (map[string]bool, error) {
	src, err := ParseSources(fs, args)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(src))
	for name := range src {
		set[name] = true
	}
	return set, nil
}

// ParseSources is Parse, saying where each set flag came from. Flags may
// come anywhere on the command line (order get ID --json); "--" ends
// them. A mistake is one line naming it, never the usage dump.
func ParseSources(fs *flag.FlagSet, args []string) (Sources, error) {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(Interspersed(fs, args))
	fs.SetOutput(out)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return nil, err
		}
		return nil, UsageError{flagError(fs, err)}
	}
	src := Sources{}
	fs.Visit(func(f *flag.Flag) { src[f.Name] = "" })
	var bad []string
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := src[f.Name]; ok {
			return
		}
		env := EnvName(f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				bad = append(bad, fmt.Sprintf("%s=%q: %s", env, v, valueProblem(f, err)))
				return
			}
			src[f.Name] = env
		}
	})
	if len(bad) > 0 {
		return nil, UsageError{strings.Join(bad, "\n")}
	}
	return src, nil
}

// Interspersed moves the flags in args before the positional arguments,
// which the flag package stops at, keeping each flag's value with it. A
// "--" ends the flags; what follows it stays positional.
func Interspersed(fs *flag.FlagSet, args []string) []string {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && !IsBoolFlag(f) {
			if i+1 == len(args) {
				// The value is missing: let the flag package say so,
				// rather than take the "--" below for the value.
				return flags
			}
			i++
			flags = append(flags, args[i])
		}
	}
	if len(positional) == 0 {
		return flags
	}
	return append(append(flags, "--"), positional...)
}

func IsBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// invalidValue is how the flag package reports a value its flag refused.
var invalidValue = regexp.MustCompile(`^invalid (?:boolean value ("(?:[^"\\]|\\.)*") for|value ("(?:[^"\\]|\\.)*") for flag) -([^:]+): (.*)$`)

// flagError rewrites the flag package's parse error into the words of
// this CLI: --name, and what the value should look like.
func flagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := invalidValue.FindStringSubmatch(msg); m != nil {
		value, name := m[1]+m[2], m[3]
		if f := fs.Lookup(name); f != nil {
			return fmt.Sprintf("--%s %s: %s", name, value, valueProblem(f, errors.New(m[4])))
		}
	}
	for _, p := range []struct{ prefix, say string }{
		{"flag provided but not defined: -", "unknown flag --"},
		{"bad flag syntax: ", "bad flag syntax: "},
		{"flag needs an argument: -", "a value is missing after --"},
	} {
		if rest, ok := strings.CutPrefix(msg, p.prefix); ok {
			msg = p.say + strings.TrimLeft(rest, "-")
			if strings.HasPrefix(p.say, "unknown") {
				msg += " (" + fs.Name() + " --help lists the flags)"
			}
			return msg
		}
	}
	return msg
}

// valueProblem says what f's values look like, for a value it refused
// with err; the flag package's own words ("parse error") say too little.
func valueProblem(f *flag.Flag, err error) string {
	if _, ok := f.Value.(*ByteSize); ok {
		return "want bytes, or a number with KiB, MiB, GiB (or KB, MB, GB)"
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return err.Error()
	}
	switch g.Get().(type) {
	case bool:
		return "want true or false"
	case int, int64, uint, uint64:
		if strings.Contains(err.Error(), "range") {
			return "out of range"
		}
		return "want a whole number"
	case float64:
		return "want a number"
	case time.Duration:
		return "want a duration like 500ms, 15s, 2m or 1h"
	}
	return err.Error()
}

func EnvName(flagName string) string {
	return "COINSAGA_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ByteSize is a flag holding a number of bytes, written as 1073741824,
// 1GiB, 512MiB, 64KiB or 1GB (decimal units too).
type ByteSize int64

func (b *ByteSize) String() string {
	if *b == 0 {
		return "0"
	}
	return strings.ReplaceAll(events.FormatBytes(int64(*b)), " ", "")
}

func (b *ByteSize) Set(s string) error {
	n, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = ByteSize(n)
	return nil
}

var byteUnits = []struct {
	suffix string
	size   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

func ParseBytes(s string) (int64, error) {
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

// FlagCollector is the stderr of a command run only to learn its flags:
// NewFlags hands it every flag set it makes, and what is written is lost.
type FlagCollector struct{ Sets []*flag.FlagSet }

func (*FlagCollector) Write(p []byte) (int, error) { return len(p), nil }
