// Package cli is the command-line machinery of coinsaga's commands: flags
// anywhere on the line, each also read from COINSAGA_<FLAG>, one-line
// usage errors that say where a value came from, byte sizes, logging
// flags, NATS connection flags and shell completion scripts. It knows no
// command; cmd/coinsaga declares them.
package cli

import (
	"errors"
	"fmt"
)

// ErrUsage marks a command line that could not be parsed. A UsageError
// says why in one line; a bare ErrUsage means the command already did.
var ErrUsage = errors.New("usage")

// UsageError is a command-line mistake: the command exits 2 and prints it.
type UsageError struct{ Msg string }

func (e UsageError) Error() string        { return e.Msg }
func (e UsageError) Is(target error) bool { return target == ErrUsage }

// Usagef is a UsageError saying what is wrong, formatted.
func Usagef(format string, a ...any) error { return UsageError{fmt.Sprintf(format, a...)} }

// Explained is an error told in this CLI's words, still matching the
// error it explains with errors.Is and errors.As.
type Explained struct {
	Msg string
	Err error
}

func (e Explained) Error() string { return e.Msg }
func (e Explained) Unwrap() error { return e.Err }
