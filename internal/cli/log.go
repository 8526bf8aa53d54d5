package cli

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// Log formats and levels as the --log-format and --log-level flags take
// them, and their defaults.
const (
	DefaultLogFormat = "text"
	DefaultLogLevel  = "info"
)

// NewLogger is the logger --log-format and --log-level ask for, writing
// to w; a value it does not know is an error naming the flag.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: durationText}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// durationText writes a time.Duration as Go writes it ("1.5s") in the
// JSON logs too, where slog would write nanoseconds.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// RegisterLogFlags adds --log-format and --log-level to fs, with their
// defaults, for NewLogger.
func RegisterLogFlags(fs *flag.FlagSet, format, level *string) {
	fs.StringVar(format, "log-format", DefaultLogFormat, "log format: text or json")
	fs.StringVar(level, "log-level", DefaultLogLevel, "log level: debug, info, warn or error")
}
