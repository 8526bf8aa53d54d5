package providertest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// Stub is a provider stand-in over HTTP that records the last request and
// answers every one with a fixed reply, for checks of a client's wire
// format and of how it reads odd replies.
type Stub struct {
	URL string // the stub's base URL

	mu          sync.Mutex
	req         *http.Request
	body        []byte
	status      int
	reply       string
	contentType string
	hits        atomic.Int32
}

// NewStub serves a stub answering reply with HTTP 200 until the test ends.
func NewStub(t testing.TB, reply string) *Stub {
	t.Helper()
	s := &Stub{reply: reply}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// ServeHTTP implements http.Handler.
func (s *Stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	raw, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.req = r.Clone(context.Background())
	s.req.Body = io.NopCloser(bytes.NewReader(raw))
	s.body = raw
	status, reply, ctype := s.status, s.reply, s.contentType
	s.mu.Unlock()
	if status == 0 {
		status = http.StatusOK
	}
	if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, reply)
}

// Answer sets the HTTP status and the reply for the requests to come.
func (s *Stub) Answer(status int, reply string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.reply = status, reply
}

// ContentType sets the Content-Type of the replies to come.
func (s *Stub) ContentType(ctype string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.contentType = ctype
}

// Hits is how many requests reached the stub.
func (s *Stub) Hits() int32 { return s.hits.Load() }

// Request returns the last request, nil before the first.
func (s *Stub) Request() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.req
}

// Body returns the last request's body.
func (s *Stub) Body() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.body
}
