package console

import (
	"net/http"
	"strings"
	"time"
)

type loginData struct {
	Next    string
	Problem string
	None    bool // no token configured: nothing to log in with
}

// safeNext keeps a login's redirect on this site.
func safeNext(s string) string {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") {
		return "/"
	}
	return s
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	d := loginData{Next: safeNext(r.URL.Query().Get("next")), None: len(c.cfg.Access.Tokens) == 0}
	c.render(w, r, http.StatusOK, "login", "Log in", d)
}

func (c *Console) loginPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	d := loginData{Next: safeNext(r.PostFormValue("next")), None: len(c.cfg.Access.Tokens) == 0}
	if err := c.guard.checkPost(r); err != nil {
		d.Problem = err.Error()
		c.render(w, r, http.StatusForbidden, "login", "Log in", d)
		return
	}
	name, ok := c.guard.login(r.PostFormValue("token"))
	if !ok {
		c.log.Warn("console login refused", "remote", r.RemoteAddr)
		// A wrong guess costs the guesser a moment.
		time.Sleep(250 * time.Millisecond)
		d.Problem = "That is not a console token."
		c.render(w, r, http.StatusForbidden, "login", "Log in", d)
		return
	}
	c.guard.newSession(w, r, name)
	c.log.Info("console login", "by", name, "remote", r.RemoteAddr)
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (c *Console) logoutPost(w http.ResponseWriter, r *http.Request) {
	if err := c.guard.checkPost(r); err != nil {
		c.fail(w, r, http.StatusForbidden, "Refused", err.Error())
		return
	}
	c.log.Info("console logout", "by", c.guard.who(r))
	c.guard.endSession(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
