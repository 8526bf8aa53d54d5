package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Token is one operator credential for the console's changing actions
// (replay, purge). Name is what the log line says did it; it never holds
// the secret.
type Token struct {
	Name   string
	Secret string
}

// defaultTokenName names a token given without "name:".
const defaultTokenName = "operator"

var tokenName = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)

// ParseToken reads "name:secret" or a bare "secret" (named "operator").
// The first colon splits, so a secret may hold colons but then needs a
// name in front.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	name, secret, named := strings.Cut(s, ":")
	if !named {
		name, secret = defaultTokenName, s
	}
	switch {
	case secret == "":
		return Token{}, errors.New("console token: the secret is empty")
	case !tokenName.MatchString(name):
		return Token{}, fmt.Errorf("console token: name %.64q: want letters, digits and _ . @ - (at most 64)", name)
	}
	return Token{Name: name, Secret: secret}, nil
}

// Flags are serve's console flags, registered by one call so that the
// command's wiring stays one block.
type Flags struct {
	Off       bool // --console=false: no console at all
	Token     string
	TokenFile string

	access Access // as Check found it
}

// Register adds --console-token and --console-token-file to fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.BoolFunc("console", "serve the operator console at / on --http-listen (false: only /metrics, /healthz, /readyz and SUD's notify path)", func(s string) error {
		on, err := strconv.ParseBool(s)
		f.Off = !on
		return err
	})
	fs.Lookup("console").DefValue = "true"
	fs.StringVar(&f.Token, "console-token", "", "token for the console's replay and purge, `name:secret` or a bare secret (named operator); without one they are disabled. Prefer COINSAGA_CONSOLE_TOKEN or --console-token-file: a flag shows in ps")
	fs.StringVar(&f.TokenFile, "console-token-file", "", "file of console tokens, one name:secret per line (# comments), e.g. a mounted secret")
}

// Tokens returns the tokens the flags give, from both the flag and the
// file; none when neither is set.
func (f *Flags) Tokens() ([]Token, error) {
	var out []Token
	if f.Token != "" {
		t, err := ParseToken(f.Token)
		if err != nil {
			return nil, fmt.Errorf("--console-token: %w", err)
		}
		out = append(out, t)
	}
	if f.TokenFile != "" {
		data, err := os.ReadFile(f.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("--console-token-file: %w", err)
		}
		n := 0
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			t, err := ParseToken(line)
			if err != nil {
				return nil, fmt.Errorf("--console-token-file %s line %d: %w", f.TokenFile, i+1, err)
			}
			out = append(out, t)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("--console-token-file %s holds no token", f.TokenFile)
		}
	}
	return out, nil
}

// Check refuses to serve the console beyond loopback without a token:
// there, anyone who reaches the port would read every order. It keeps
// the access the console then has (read pages open on loopback only) for
// Handler; serve calls it before it starts anything.
func (f *Flags) Check(httpListen string) error {
	if f.Off {
		return nil
	}
	tokens, err := f.Tokens()
	if err != nil {
		return err
	}
	loop := IsLoopback(httpListen)
	if !loop && len(tokens) == 0 {
		return fmt.Errorf("--http-listen %s reaches beyond loopback and the console has no token: give --console-token NAME:SECRET or --console-token-file FILE, listen on 127.0.0.1, or turn the console off with --console=false", httpListen)
	}
	f.access = Access{Tokens: tokens, OpenReads: loop}
	return nil
}

// Access is what Check found.
func (f *Flags) Access() Access { return f.access }

// IsLoopback reports whether a listen address accepts loopback
// connections only. An empty or unspecified host (":8080", "0.0.0.0")
// and any host name but localhost count as beyond loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Access says who may do what in the console.
type Access struct {
	// Tokens may log in; replay and purge need a login. None: those
	// actions are disabled.
	Tokens []Token
	// OpenReads lets anyone read the pages without logging in (serve sets
	// it when it listens on loopback only).
	OpenReads bool
}

const (
	sessionCookie = "coinsaga_console"
	csrfCookie    = "coinsaga_csrf"
	sessionTTL    = 12 * time.Hour
)

// guard keeps the login sessions and the per-form tokens.
type guard struct {
	access Access
	now    func() time.Time
	key    []byte // signs form tokens; new per process
	cop    *http.CrossOriginProtection

	mu       sync.Mutex
	sessions map[string]session
}

type session struct {
	name    string
	expires time.Time
}

func newGuard(a Access, now func() time.Time) *guard {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &guard{access: a, now: now, key: key, cop: http.NewCrossOriginProtection(), sessions: map[string]session{}}
}

// login returns the name of the token secret matches, comparing every
// token in constant time so that timing says nothing of which is close.
func (g *guard) login(secret string) (string, bool) {
	name, ok := "", false
	for _, t := range g.access.Tokens {
		if subtle.ConstantTimeCompare([]byte(t.Secret), []byte(secret)) == 1 && !ok {
			name, ok = t.Name, true
		}
	}
	return name, ok
}

func (g *guard) newSession(w http.ResponseWriter, r *http.Request, name string) {
	id := randomText()
	g.mu.Lock()
	now := g.now()
	for k, s := range g.sessions {
		if now.After(s.expires) {
			delete(g.sessions, k)
		}
	}
	g.sessions[id] = session{name: name, expires: now.Add(sessionTTL)}
	g.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL.Seconds())})
}

func (g *guard) endSession(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		g.mu.Lock()
		delete(g.sessions, c.Value)
		g.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, MaxAge: -1, SameSite: http.SameSiteStrictMode})
}

// who returns the logged-in token's name, or "".
func (g *guard) who(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.sessions[c.Value]
	if !ok || g.now().After(s.expires) {
		return ""
	}
	return s.name
}

// formToken returns the token that forms on this page carry, setting the
// browser's CSRF cookie when it has none. The token is an HMAC of the
// cookie: a cross-site page can make the browser send the cookie but
// cannot read it, so it cannot write the matching form field.
func (g *guard) formToken(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 64 {
		v = c.Value
	} else {
		v = randomText()
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true,
			Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
		// Requests later in this response's page see the new cookie.
		r.AddCookie(&http.Cookie{Name: csrfCookie, Value: v})
	}
	return g.sign(v)
}

func (g *guard) sign(v string) string {
	m := hmac.New(sha256.New, g.key)
	m.Write([]byte("form\x00" + v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkPost refuses a POST that comes from another site (Origin,
// Sec-Fetch-Site) or lacks this browser's form token.
func (g *guard) checkPost(r *http.Request) error {
	if err := g.cop.Check(r); err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil {
		return errors.New("refused: the form has no session cookie; reload the page and try again")
	}
	if !hmac.Equal([]byte(g.sign(c.Value)), []byte(r.PostFormValue("csrf"))) {
		return errors.New("refused: the form's token does not match; reload the page and try again")
	}
	return nil
}

func randomText() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
