package auth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/goleak"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// fasthttp's worker-pool cleaner sleeps between sweeps and exits
		// on its next wake-up after Shutdown.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	)
}

// cheap keeps the tests fast; the parameters travel inside each hash.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const testPassword = "correct horse battery"

// clock is a settable time source, so expiry is tested without sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	url   string
	dir   string
	store *sqlite.Store
	clock *clock
	auth  *Auth
}

// start runs a real fiber server on 127.0.0.1:0 with the auth routes, a
// supervisor-only route and an any-user route, over a SQLite store with
// three users: alice (agent), sam (supervisor) and ada (admin).
func start(t *testing.T, cfg Config) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "parley.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	for i, u := range []struct {
		name string
		role parley.Role
	}{{"alice", parley.RoleAgent}, {"sam", parley.RoleSupervisor}, {"ada", parley.RoleAdmin}} {
		hash, err := HashPasswordWith(testPassword, cheap)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateUser(context.Background(), parley.User{ID: "u" + string(rune('1'+i)), Name: u.name, Role: u.role,
			PasswordHash: hash, CreatedAt: clk.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Now = clk.Now
	cfg.Params = cheap
	a := New(st, cfg)
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	a.Register(app)
	sup := a.RequireUser(parley.RoleSupervisor, parley.RoleAdmin)
	ok := func(c *fiber.Ctx) error {
		u, _ := UserOf(c)
		return c.JSON(fiber.Map{"user": u.Name})
	}
	app.Get("/api/sup", sup, ok)
	app.Post("/api/sup", sup, ok)
	app.Delete("/api/sup", sup, ok)
	app.Get("/api/any", a.RequireUser(), ok)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = app.Listener(ln) }()
	t.Cleanup(func() {
		if err := app.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	return &env{url: "http://" + ln.Addr().String(), dir: dir, store: st, clock: clk, auth: a}
}

type reply struct {
	code    int
	body    map[string]any
	cookies []*http.Cookie
	header  http.Header
}

// do sends one request; token is the session cookie's value ("" for none)
// and headers are pairs of name and value.
func (e *env) do(t *testing.T, method, path, body, token string, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: token})
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{code: resp.StatusCode, cookies: resp.Cookies(), header: resp.Header}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, path, raw, err)
		}
	}
	return r
}

func loginBody(name, pw string) string {
	b, _ := json.Marshal(LoginRequest{Name: name, Password: pw})
	return string(b)
}

// login logs name in and returns the session token and CSRF token.
func (e *env) login(t *testing.T, name string) (token, csrf string) {
	t.Helper()
	r := e.do(t, "POST", "/api/login", loginBody(name, testPassword), "")
	if r.code != 200 {
		t.Fatalf("login %s = %d %v", name, r.code, r.body)
	}
	for _, c := range r.cookies {
		if c.Name == CookieName {
			token = c.Value
		}
	}
	csrf, _ = r.body["csrf"].(string)
	if token == "" || csrf == "" {
		t.Fatalf("login %s: no cookie or csrf: %+v", name, r)
	}
	return token, csrf
}

func TestUnauthenticatedIsRefused(t *testing.T) {
	e := start(t, Config{})
	long := strings.Repeat("x", 500)
	for _, rt := range []struct{ method, path string }{
		{"GET", "/api/me"}, {"POST", "/api/logout"}, {"GET", "/api/sup"}, {"POST", "/api/sup"},
		{"DELETE", "/api/sup"}, {"GET", "/api/any"},
	} {
		for _, token := range []string{"", "not-a-session", long} {
			r := e.do(t, rt.method, rt.path, "", token)
			if r.code != 401 || r.body["error"] != "login required" {
				t.Errorf("%s %s with cookie %.10q = %d %v, want 401 login required", rt.method, rt.path, token, r.code, r.body)
			}
		}
	}
}

func TestLoginSetsCookie(t *testing.T) {
	tests := []struct {
		name       string
		publicURL  string
		wantSecure bool
	}{
		{"http", "http://127.0.0.1:8080", false},
		{"https", "https://support.example.com", true},
		{"no public url", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, Config{PublicURL: tc.publicURL})
			r := e.do(t, "POST", "/api/login", loginBody("sam", testPassword), "")
			if r.code != 200 {
				t.Fatalf("login = %d %v", r.code, r.body)
			}
			var c *http.Cookie
			for _, x := range r.cookies {
				if x.Name == CookieName {
					c = x
				}
			}
			if c == nil {
				t.Fatalf("no %s cookie in %v", CookieName, r.header.Values("Set-Cookie"))
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != tc.wantSecure || c.Path != "/" {
				t.Errorf("cookie %q: HttpOnly=%v SameSite=%v Secure=%v Path=%q; want true, Strict, %v, /",
					c.Raw, c.HttpOnly, c.SameSite, c.Secure, c.Path, tc.wantSecure)
			}
			if want := e.clock.Now().Add(DefaultSessionTTL); !c.Expires.Equal(want) {
				t.Errorf("cookie expires %v, want %v", c.Expires, want)
			}
			if len(c.Value) != 43 {
				t.Errorf("token %q is not 32 bytes of base64", c.Value)
			}
			user, _ := r.body["user"].(map[string]any)
			if user["name"] != "sam" || user["role"] != "supervisor" {
				t.Errorf("login user = %v", user)
			}
			if _, leaked := user["password_hash"]; leaked {
				t.Errorf("login response leaks the password hash: %v", user)
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("login Cache-Control = %q, want no-store", r.header.Get("Cache-Control"))
			}
			me := e.do(t, "GET", "/api/me", "", c.Value)
			if me.code != 200 || me.body["csrf"] != r.body["csrf"] {
				t.Errorf("/api/me = %d %v, want the login's csrf %v", me.code, me.body, r.body["csrf"])
			}
		})
	}
}

func TestLoginRejects(t *testing.T) {
	e := start(t, Config{PublicURL: "https://support.example.com"})
	tests := []struct {
		name    string
		body    string
		headers []string
		code    int
	}{
		{"wrong password", loginBody("sam", "wrong password!"), nil, 401},
		{"unknown user", loginBody("mallory", testPassword), nil, 401},
		{"name case matters", loginBody("SAM", testPassword), nil, 401},
		{"empty password", loginBody("sam", ""), nil, 400},
		{"not json", "name=sam&password=x", nil, 400},
		{"unknown field", `{"name":"sam","password":"x","admin":true}`, nil, 400},
		{"form content type", loginBody("sam", testPassword), []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"foreign origin", loginBody("sam", testPassword), []string{"Origin", "https://evil.example"}, 403},
		{"null origin", loginBody("sam", testPassword), []string{"Origin", "null"}, 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "POST", "/api/login", tc.body, "", tc.headers...)
			if r.code != tc.code {
				t.Fatalf("login = %d %v, want %d", r.code, r.body, tc.code)
			}
			if msg, _ := r.body["error"].(string); msg == "" || strings.Contains(msg, testPassword) {
				t.Fatalf("error %q: want a message without the password", msg)
			}
			if len(r.cookies) != 0 {
				t.Fatalf("refused login set cookies %v", r.cookies)
			}
		})
	}
	// The wrong-password and unknown-user answers must not tell names apart.
	a := e.do(t, "POST", "/api/login", loginBody("sam", "nope nope nope"), "")
	b := e.do(t, "POST", "/api/login", loginBody("nobody", "nope nope nope"), "")
	if a.body["error"] != b.body["error"] {
		t.Fatalf("known and unknown names answer differently: %v vs %v", a.body, b.body)
	}
	// Same-origin logins pass.
	if r := e.do(t, "POST", "/api/login", loginBody("sam", testPassword), "", "Origin", "https://support.example.com"); r.code != 200 {
		t.Fatalf("login from the public origin = %d %v", r.code, r.body)
	}
	if r := e.do(t, "POST", "/api/login", loginBody("sam", testPassword), "", "Origin", e.url); r.code != 200 {
		t.Fatalf("login from the request's own origin = %d %v", r.code, r.body)
	}
}

func TestLoginRateLimitPerName(t *testing.T) {
	e := start(t, Config{NameAttempts: 3, AttemptWindow: 10 * time.Minute})
	for i := range 3 {
		if r := e.do(t, "POST", "/api/login", loginBody("sam", "guess number one"), ""); r.code != 401 {
			t.Fatalf("guess %d = %d, want 401", i, r.code)
		}
	}
	// Locked: even the right password is refused, with a Retry-After.
	r := e.do(t, "POST", "/api/login", loginBody("sam", testPassword), "")
	if r.code != 429 || r.header.Get("Retry-After") != "600" {
		t.Fatalf("after 3 failures = %d Retry-After %q, want 429 600", r.code, r.header.Get("Retry-After"))
	}
	// Another name is not locked.
	if r := e.do(t, "POST", "/api/login", loginBody("ada", testPassword), ""); r.code != 200 {
		t.Fatalf("other user = %d, want 200", r.code)
	}
	e.clock.Add(10 * time.Minute)
	if r := e.do(t, "POST", "/api/login", loginBody("sam", testPassword), ""); r.code != 200 {
		t.Fatalf("after the window = %d %v, want 200", r.code, r.body)
	}
	// A success clears the name's failures.
	for i := range 2 {
		e.do(t, "POST", "/api/login", loginBody("sam", "guess number two"), "")
		_ = i
	}
	e.login(t, "sam")
	for i := range 3 {
		if r := e.do(t, "POST", "/api/login", loginBody("sam", "guess number three"), ""); r.code != 401 {
			t.Fatalf("fresh guess %d = %d, want 401", i, r.code)
		}
	}
}

func TestLoginRateLimitPerIP(t *testing.T) {
	e := start(t, Config{NameAttempts: 100, IPAttempts: 4})
	for i, name := range []string{"a1", "a2", "a3", "a4"} {
		if r := e.do(t, "POST", "/api/login", loginBody(name, "guess"), ""); r.code != 401 {
			t.Fatalf("guess %d = %d, want 401", i, r.code)
		}
	}
	if r := e.do(t, "POST", "/api/login", loginBody("sam", testPassword), ""); r.code != 429 {
		t.Fatalf("fifth try from one address = %d, want 429", r.code)
	}
}

func TestCSRF(t *testing.T) {
	e := start(t, Config{PublicURL: "https://support.example.com"})
	token, csrf := e.login(t, "sam")
	tests := []struct {
		name    string
		method  string
		headers []string
		code    int
	}{
		{"GET needs no token", "GET", nil, 200},
		{"POST without token", "POST", nil, 403},
		{"POST with wrong token", "POST", []string{CSRFHeader, "x" + csrf[1:]}, 403},
		{"POST with another session's token", "POST", []string{CSRFHeader, "not-it"}, 403},
		{"POST with token", "POST", []string{CSRFHeader, csrf}, 200},
		{"DELETE without token", "DELETE", nil, 403},
		{"DELETE with token", "DELETE", []string{CSRFHeader, csrf}, 200},
		{"token but foreign origin", "POST", []string{CSRFHeader, csrf, "Origin", "https://evil.example"}, 403},
		{"token and public origin", "POST", []string{CSRFHeader, csrf, "Origin", "https://support.example.com"}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.method, "/api/sup", "", token, tc.headers...)
			if r.code != tc.code {
				t.Fatalf("%s /api/sup = %d %v, want %d", tc.method, r.code, r.body, tc.code)
			}
		})
	}
	// Logout is state-changing too.
	if r := e.do(t, "POST", "/api/logout", "", token); r.code != 403 {
		t.Fatalf("logout without csrf = %d, want 403", r.code)
	}
}

func TestRoles(t *testing.T) {
	e := start(t, Config{})
	tests := []struct {
		user         string
		sup, anyRole int
	}{
		{"alice", 403, 200},
		{"sam", 200, 200},
		{"ada", 200, 200},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			token, _ := e.login(t, tc.user)
			if r := e.do(t, "GET", "/api/sup", "", token); r.code != tc.sup {
				t.Errorf("%s GET /api/sup = %d %v, want %d", tc.user, r.code, r.body, tc.sup)
			} else if r.code == 403 && !strings.Contains(r.body["error"].(string), "supervisor or admin") {
				t.Errorf("403 message %q does not name the roles", r.body["error"])
			}
			if r := e.do(t, "GET", "/api/any", "", token); r.code != tc.anyRole || r.body["user"] != tc.user {
				t.Errorf("%s GET /api/any = %d %v, want %d", tc.user, r.code, r.body, tc.anyRole)
			}
		})
	}
}

func TestLogoutInvalidates(t *testing.T) {
	e := start(t, Config{})
	token, csrf := e.login(t, "sam")
	other, _ := e.login(t, "sam") // a second browser stays logged in
	r := e.do(t, "POST", "/api/logout", "", token, CSRFHeader, csrf)
	if r.code != 204 {
		t.Fatalf("logout = %d %v", r.code, r.body)
	}
	cleared := false
	for _, c := range r.cookies {
		cleared = cleared || c.Name == CookieName && c.Value == "" && c.MaxAge < 0
	}
	if !cleared {
		t.Errorf("logout did not clear the cookie: %v", r.header.Values("Set-Cookie"))
	}
	if r := e.do(t, "GET", "/api/me", "", token); r.code != 401 {
		t.Fatalf("after logout /api/me = %d, want 401", r.code)
	}
	if _, err := e.store.SessionByTokenHash(context.Background(), TokenHash(token)); !errors.Is(err, parley.ErrNotFound) {
		t.Fatalf("logged-out session still stored: %v", err)
	}
	if r := e.do(t, "GET", "/api/me", "", other); r.code != 200 {
		t.Fatalf("other session after logout = %d, want 200", r.code)
	}
}

func TestSessionExpiry(t *testing.T) {
	const ttl = time.Hour
	e := start(t, Config{SessionTTL: ttl})
	token, _ := e.login(t, "sam")

	// Sliding: activity before expiry pushes it out.
	e.clock.Add(50 * time.Minute)
	r := e.do(t, "GET", "/api/me", "", token)
	if r.code != 200 {
		t.Fatalf("/api/me before expiry = %d", r.code)
	}
	slid := false
	for _, c := range r.cookies {
		slid = slid || c.Name == CookieName && c.Value == token && c.Expires.Equal(e.clock.Now().Add(ttl))
	}
	if !slid {
		t.Errorf("sliding did not renew the cookie: %v", r.header.Values("Set-Cookie"))
	}
	e.clock.Add(50 * time.Minute) // 100 minutes after login, 50 after the last request
	if r := e.do(t, "GET", "/api/me", "", token); r.code != 200 {
		t.Fatalf("/api/me within the slid expiry = %d, want 200", r.code)
	}
	// Idle for a whole TTL: dead, and removed from the store.
	e.clock.Add(ttl)
	if r := e.do(t, "GET", "/api/me", "", token); r.code != 401 || r.body["error"] != "login required" {
		t.Fatalf("/api/me after expiry = %d %v, want 401", r.code, r.body)
	}
	if _, err := e.store.SessionByTokenHash(context.Background(), TokenHash(token)); !errors.Is(err, parley.ErrNotFound) {
		t.Fatalf("expired session still stored: %v", err)
	}
}

func TestDeletedUserLosesSession(t *testing.T) {
	e := start(t, Config{})
	token, _ := e.login(t, "alice")
	if err := e.store.DeleteUser(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	if r := e.do(t, "GET", "/api/me", "", token); r.code != 401 {
		t.Fatalf("deleted user's session = %d, want 401", r.code)
	}
}

func TestStoredTokenIsHash(t *testing.T) {
	e := start(t, Config{})
	token, csrf := e.login(t, "sam")
	ctx := context.Background()
	if _, err := e.store.SessionByTokenHash(ctx, token); !errors.Is(err, parley.ErrNotFound) {
		t.Fatalf("session found under the raw token (%v): tokens must be stored hashed", err)
	}
	sess, err := e.store.SessionByTokenHash(ctx, TokenHash(token))
	if err != nil || sess.CSRF != csrf || sess.UserID != "u2" {
		t.Fatalf("session under the token's hash = %+v, %v", sess, err)
	}
	if len(sess.TokenHash) != 64 {
		t.Fatalf("stored hash %q is not hex SHA-256", sess.TokenHash)
	}
	// Nothing on disk (database, WAL) holds the token itself.
	files, _ := filepath.Glob(filepath.Join(e.dir, "parley.db*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), token) {
			t.Fatalf("%s contains the raw session token", f)
		}
	}
}

func TestLoginReplacesOldSession(t *testing.T) {
	e := start(t, Config{})
	old, _ := e.login(t, "sam")
	r := e.do(t, "POST", "/api/login", loginBody("sam", testPassword), old)
	if r.code != 200 {
		t.Fatalf("login = %d", r.code)
	}
	if r := e.do(t, "GET", "/api/me", "", old); r.code != 401 {
		t.Fatalf("the session a login replaced still works: %d", r.code)
	}
}

func TestExpiredSessionsAreSwept(t *testing.T) {
	e := start(t, Config{SessionTTL: time.Hour})
	e.login(t, "sam")
	e.clock.Add(2 * time.Hour)
	e.login(t, "ada") // the first login of the hour sweeps
	n, err := e.store.DeleteExpiredSessions(context.Background(), e.clock.Now())
	if err != nil || n != 0 {
		t.Fatalf("after a sweeping login %d expired sessions were left (%v)", n, err)
	}
}
