package console

import (
	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
)

// natsDeadLetters is the dead-letter service on the stream of subjects.
// Until internal/deadletter lands it is nil: the /dlq pages say so.
func natsDeadLetters(nc *nats.Conn, subjects events.Subjects) DeadLetters {
	return nil
}
