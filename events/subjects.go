package events

import "strings"

// DefaultPrefix is the first subject token when none is configured.
const DefaultPrefix = "coinsaga"

// ConsumerName is the durable pull consumer every worker shares on the
// intents stream, so more workers mean more throughput.
const ConsumerName = "coinsaga-worker"

// Subjects builds subject and stream names under a prefix. The zero value
// uses DefaultPrefix. The ids passed in must satisfy ValidID (DecodeIntent
// guarantees it); Subjects does not check them again.
type Subjects struct {
	// Prefix is one or more dot-separated subject tokens; empty means
	// DefaultPrefix.
	Prefix string
}

func (s Subjects) prefix() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

// Intent is where intents for one game room are published:
// <prefix>.intents.<mg_id>.<room_id>.
func (s Subjects) Intent(mgID, roomID string) string {
	return s.prefix() + ".intents." + mgID + "." + roomID
}

// Intents matches every intent subject: <prefix>.intents.>.
func (s Subjects) Intents() string { return s.prefix() + ".intents.>" }

// Status is where an order's status events go:
// <prefix>.status.<mg_id>.<room_id>.<out_order_id>.
func (s Subjects) Status(mgID, roomID, outOrderID string) string {
	return s.prefix() + ".status." + mgID + "." + roomID + "." + outOrderID
}

// StatusFilter is Status with every empty part replaced by the * wildcard,
// e.g. StatusFilter(mg, "", "") watches every order of one game.
func (s Subjects) StatusFilter(mgID, roomID, outOrderID string) string {
	return s.Status(wild(mgID), wild(roomID), wild(outOrderID))
}

// Statuses matches every status subject: <prefix>.status.>.
func (s Subjects) Statuses() string { return s.prefix() + ".status.>" }

// DeadLetter is where an order's dead letters go:
// <prefix>.dlq.<mg_id>.<room_id>.<out_order_id>.
func (s Subjects) DeadLetter(mgID, roomID, outOrderID string) string {
	return s.prefix() + ".dlq." + mgID + "." + roomID + "." + outOrderID
}

// DeadLetterFilter is DeadLetter with every empty part replaced by *.
func (s Subjects) DeadLetterFilter(mgID, roomID, outOrderID string) string {
	return s.DeadLetter(wild(mgID), wild(roomID), wild(outOrderID))
}

// DeadLetterInvalid is where intents go that cannot name an order
// (undecodable, oversize, unsafe ids): <prefix>.dlq._invalid.
func (s Subjects) DeadLetterInvalid() string { return s.prefix() + ".dlq." + invalidToken }

// DeadLetters matches every dead letter: <prefix>.dlq.>.
func (s Subjects) DeadLetters() string { return s.prefix() + ".dlq.>" }

// OrderGetAPI is the request/reply subject workers answer `order get` on.
func (s Subjects) OrderGetAPI() string { return s.prefix() + ".api.order.get" }

// IntentsStream names the intents stream, e.g. COINSAGA_INTENTS.
func (s Subjects) IntentsStream() string { return s.streamBase() + "_INTENTS" }

// StatusStream names the status stream, e.g. COINSAGA_STATUS.
func (s Subjects) StatusStream() string { return s.streamBase() + "_STATUS" }

// DLQStream names the dead-letter stream, e.g. COINSAGA_DLQ.
func (s Subjects) DLQStream() string { return s.streamBase() + "_DLQ" }

// streamBase upper-cases the prefix and turns everything but letters and
// digits into _, as stream names may not hold dots or wildcards.
func (s Subjects) streamBase() string {
	p := s.prefix()
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteByte(c - 'a' + 'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

const invalidToken = "_invalid"

func wild(token string) string {
	if token == "" {
		return "*"
	}
	return token
}

// OwnerBucket names the key-value bucket where the worker that owns the
// prefix holds its lease (single-owner stores), e.g. COINSAGA_OWNER.
func (s Subjects) OwnerBucket() string { return s.streamBase() + "_OWNER" }
