package embednats

// ShutdownJetStreamLikeAFullDisk does what nats-server does when a write
// finds the disk full (handleOutOfSpace): JetStream goes off, the server
// stays up.
func (s *Server) ShutdownJetStreamLikeAFullDisk() error { return s.ns.ShutdownJetStream() }
