package console

import (
	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
)

// NATSDeadLetters is the dead-letter service on the stream of subjects.
// Until internal/deadletter lands it is nil: the /dlq pages say so.
func NATSDeadLetters(nc *nats.Conn, subjects events.Subjects) DeadLetters {
	return nil
}
