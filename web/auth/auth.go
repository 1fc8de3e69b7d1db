// Package auth logs console users in and keeps them out when they should
// be: argon2id password hashes, login rate limits per name and per IP,
// server-side sessions behind an HttpOnly SameSite=Strict cookie (only the
// token's SHA-256 is stored), sliding expiry, and CSRF protection (a
// per-session token in the X-CSRF-Token header plus an Origin check) for
// every state-changing request. RequireUser guards routes by role.
//
// Routes (Register): POST /api/login, POST /api/logout, GET /api/me.
// Failures answer JSON {"error": "..."}: 401 when nobody is logged in (or
// the session expired), 403 for a role, CSRF or origin failure, 429 when
// the login limit is hit.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
)

// Names on the wire.
const (
	CookieName = "parley_session"
	CSRFHeader = "X-CSRF-Token"
)

// Defaults of Config.
const (
	DefaultSessionTTL    = 12 * time.Hour
	DefaultNameAttempts  = 5
	DefaultIPAttempts    = 30
	DefaultAttemptWindow = 15 * time.Minute
	DefaultMaxTracked    = 10000
)

// sweepEvery is how often a login also deletes expired sessions.
const sweepEvery = time.Hour

// maxTokenLen bounds a cookie value worth hashing; real tokens are 43 bytes.
const maxTokenLen = 128

// Config configures New. Zero fields take the defaults above.
type Config struct {
	// PublicURL is where browsers reach parley. An https URL makes the
	// cookie Secure; its origin is accepted in Origin headers (so is the
	// request's own Host, for direct access on the LAN).
	PublicURL string
	// SessionTTL is how long a session lives without a request; every
	// authenticated request pushes the expiry out again (sliding).
	SessionTTL time.Duration
	// NameAttempts and IPAttempts are how many failed logins a name, and
	// an IP address, get per AttemptWindow before logins are refused (429).
	NameAttempts, IPAttempts int
	AttemptWindow            time.Duration
	// MaxTracked bounds how many names and how many addresses the rate
	// limiter remembers.
	MaxTracked int
	// Params are the argon2id costs of the decoy hash checked for unknown
	// names, so that "no such user" takes as long as "wrong password".
	// Give the parameters users' hashes are made with (default DefaultParams).
	Params Params
	// MaxConcurrentHashes bounds argon2 runs in flight (each holds
	// Params.Memory); default GOMAXPROCS.
	MaxConcurrentHashes int
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Log receives logins, refusals and store failures (never secrets).
	Log zerolog.Logger
}

// Auth authenticates console users against a parley.UserStore.
type Auth struct {
	users  parley.UserStore
	cfg    Config
	secure bool
	origin string // scheme://host[:port] of PublicURL, or ""

	names, ips *limiter
	hashSlots  chan struct{}

	decoyOnce sync.Once
	decoy     string

	lastSweep atomic.Int64 // unix nanoseconds
}

// New returns an Auth over users. It does not touch the store.
func New(users parley.UserStore, cfg Config) *Auth {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.NameAttempts <= 0 {
		cfg.NameAttempts = DefaultNameAttempts
	}
	if cfg.IPAttempts <= 0 {
		cfg.IPAttempts = DefaultIPAttempts
	}
	if cfg.AttemptWindow <= 0 {
		cfg.AttemptWindow = DefaultAttemptWindow
	}
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = DefaultMaxTracked
	}
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams
	}
	if cfg.MaxConcurrentHashes <= 0 {
		cfg.MaxConcurrentHashes = runtime.GOMAXPROCS(0)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Auth{
		users:     users,
		cfg:       cfg,
		names:     newLimiter(cfg.NameAttempts, cfg.AttemptWindow, cfg.MaxTracked),
		ips:       newLimiter(cfg.IPAttempts, cfg.AttemptWindow, cfg.MaxTracked),
		hashSlots: make(chan struct{}, cfg.MaxConcurrentHashes),
	}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Scheme != "" && u.Host != "" {
		a.secure = strings.EqualFold(u.Scheme, "https")
		a.origin = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	return a
}

// Register mounts POST /api/login, POST /api/logout and GET /api/me on r.
func (a *Auth) Register(r fiber.Router) {
	r.Post("/api/login", a.login)
	r.Post("/api/logout", a.RequireUser(), a.logout)
	r.Get("/api/me", a.RequireUser(), a.me)
}

type localKey int

const (
	userKey localKey = iota
	sessionKey
)

// UserOf returns the user RequireUser let through to this request.
func UserOf(c *fiber.Ctx) (parley.User, bool) {
	u, ok := c.Locals(userKey).(parley.User)
	return u, ok
}

// SessionOf returns the session RequireUser found for this request.
func SessionOf(c *fiber.Ctx) (parley.Session, bool) {
	s, ok := c.Locals(sessionKey).(parley.Session)
	return s, ok
}

// RequireUser is middleware that lets a request through only with a live
// session of a user whose role is one of roles (any role when none are
// given). It answers 401 without a valid session, 403 for another role,
// and 403 for a state-changing request (POST, PUT, PATCH, DELETE) without
// the session's CSRF token in X-CSRF-Token or from a foreign Origin. It
// slides the session's expiry and marks the response no-store.
func (a *Auth) RequireUser(roles ...parley.Role) fiber.Handler {
	allowed := append([]parley.Role(nil), roles...)
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "no-store")
		sess, user, err := a.session(c)
		if err != nil {
			return err
		}
		if sess == nil {
			return deny(c, fiber.StatusUnauthorized, "login required")
		}
		if len(allowed) > 0 && !hasRole(allowed, user.Role) {
			return deny(c, fiber.StatusForbidden, "forbidden: this needs the role "+roleList(allowed))
		}
		if unsafeMethod(c.Method()) {
			if !a.sameOrigin(c) {
				return deny(c, fiber.StatusForbidden, "cross-origin request refused")
			}
			if got := c.Get(CSRFHeader); got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) != 1 {
				return deny(c, fiber.StatusForbidden, "csrf token missing or wrong")
			}
		}
		a.slide(c, sess)
		c.Locals(userKey, user)
		c.Locals(sessionKey, *sess)
		return c.Next()
	}
}

// session finds the request's live session and its user: nil without an
// error when there is none (no cookie, unknown or expired token, deleted
// user); an error only when the store fails.
func (a *Auth) session(c *fiber.Ctx) (*parley.Session, parley.User, error) {
	token := c.Cookies(CookieName)
	if token == "" || len(token) > maxTokenLen {
		return nil, parley.User{}, nil
	}
	ctx := c.UserContext()
	sess, err := a.users.SessionByTokenHash(ctx, TokenHash(token))
	if errors.Is(err, parley.ErrNotFound) {
		return nil, parley.User{}, nil
	}
	if err != nil {
		return nil, parley.User{}, a.storeFailure(c, "read session", err)
	}
	if !a.cfg.Now().Before(sess.ExpiresAt) {
		if err := a.users.DeleteSession(ctx, sess.TokenHash); err != nil && !errors.Is(err, parley.ErrNotFound) {
			a.cfg.Log.Warn().Err(err).Msg("auth: delete expired session")
		}
		return nil, parley.User{}, nil
	}
	user, err := a.users.UserByID(ctx, sess.UserID)
	if errors.Is(err, parley.ErrNotFound) {
		return nil, parley.User{}, nil
	}
	if err != nil {
		return nil, parley.User{}, a.storeFailure(c, "read user", err)
	}
	return &sess, user, nil
}

// slide pushes the session's expiry out to a full TTL from now, writing
// to the store at most once per step so that a busy console does not
// turn every request into a write.
func (a *Auth) slide(c *fiber.Ctx, sess *parley.Session) {
	now := a.cfg.Now()
	step := min(time.Minute, a.cfg.SessionTTL/10)
	if sess.ExpiresAt.Sub(now) > a.cfg.SessionTTL-step {
		return
	}
	expires := now.Add(a.cfg.SessionTTL)
	if err := a.users.TouchSession(c.UserContext(), sess.TokenHash, expires); err != nil {
		// The session still works until its old expiry; say so and go on.
		a.cfg.Log.Warn().Err(err).Msg("auth: extend session")
		return
	}
	sess.ExpiresAt = expires
	a.setCookie(c, c.Cookies(CookieName), expires)
}

// loginResponse is what login and /api/me answer.
type loginResponse struct {
	User      parley.User `json:"user"`
	CSRF      string      `json:"csrf"`
	ExpiresAt time.Time   `json:"expires_at"`
}

func (a *Auth) login(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	if !a.sameOrigin(c) {
		return deny(c, fiber.StatusForbidden, "cross-origin request refused")
	}
	if ct := strings.ToLower(c.Get(fiber.HeaderContentType)); !strings.HasPrefix(ct, fiber.MIMEApplicationJSON) {
		return deny(c, fiber.StatusUnsupportedMediaType, "send the login as application/json")
	}
	req, err := ParseLogin(c.Body())
	if err != nil {
		return deny(c, fiber.StatusBadRequest, err.Error())
	}
	now := a.cfg.Now()
	ip := strings.Clone(c.IP())
	if ok, wait := a.ips.attempt(ip, now); !ok {
		return a.tooMany(c, req.Name, ip, wait)
	}
	if ok, wait := a.names.attempt(req.Name, now); !ok {
		a.ips.refund(ip) // the name's limit refused it; no guess was made
		return a.tooMany(c, req.Name, ip, wait)
	}

	ctx := c.UserContext()
	user, err := a.users.UserByName(ctx, req.Name)
	found := err == nil
	if err != nil && !errors.Is(err, parley.ErrNotFound) {
		a.names.refund(req.Name)
		a.ips.refund(ip)
		return a.storeFailure(c, "read user", err)
	}
	hash := user.PasswordHash
	if !found {
		hash = a.decoyHash()
	}
	ok, err := a.verify(ctx, hash, req.Password)
	if err != nil {
		a.names.refund(req.Name)
		a.ips.refund(ip)
		return deny(c, fiber.StatusServiceUnavailable, "login busy, try again")
	}
	if !ok || !found {
		a.cfg.Log.Info().Str("user", req.Name).Str("ip", ip).Bool("known_user", found).Msg("auth: login failed")
		return deny(c, fiber.StatusUnauthorized, "wrong name or password")
	}
	a.names.forget(req.Name)
	a.ips.refund(ip)

	// A new token on every login: a token planted before login is worthless.
	if old := c.Cookies(CookieName); old != "" && len(old) <= maxTokenLen {
		if err := a.users.DeleteSession(ctx, TokenHash(old)); err != nil && !errors.Is(err, parley.ErrNotFound) {
			a.cfg.Log.Warn().Err(err).Msg("auth: delete replaced session")
		}
	}
	token, err := randomToken()
	if err != nil {
		return fmt.Errorf("auth: login: %w", err)
	}
	csrf, err := randomToken()
	if err != nil {
		return fmt.Errorf("auth: login: %w", err)
	}
	sess := parley.Session{TokenHash: TokenHash(token), UserID: user.ID, CSRF: csrf,
		CreatedAt: now, ExpiresAt: now.Add(a.cfg.SessionTTL)}
	if err := a.users.CreateSession(ctx, sess); err != nil {
		return a.storeFailure(c, "create session", err)
	}
	a.sweep(ctx, now)
	a.setCookie(c, token, sess.ExpiresAt)
	a.cfg.Log.Info().Str("user", user.Name).Str("role", string(user.Role)).Str("ip", ip).Msg("auth: login")
	return c.JSON(loginResponse{User: user, CSRF: csrf, ExpiresAt: sess.ExpiresAt.UTC()})
}

func (a *Auth) logout(c *fiber.Ctx) error {
	sess, _ := SessionOf(c)
	if err := a.users.DeleteSession(c.UserContext(), sess.TokenHash); err != nil && !errors.Is(err, parley.ErrNotFound) {
		return a.storeFailure(c, "delete session", err)
	}
	c.Cookie(&fiber.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		Expires: time.Unix(0, 0), HTTPOnly: true, Secure: a.secure, SameSite: fiber.CookieSameSiteStrictMode})
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *Auth) me(c *fiber.Ctx) error {
	user, _ := UserOf(c)
	sess, _ := SessionOf(c)
	return c.JSON(loginResponse{User: user, CSRF: sess.CSRF, ExpiresAt: sess.ExpiresAt.UTC()})
}

// verify checks pw against hash, holding one of the bounded argon2 slots.
func (a *Auth) verify(ctx context.Context, hash, pw string) (bool, error) {
	select {
	case a.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-a.hashSlots }()
	return VerifyPassword(hash, pw), nil
}

// decoyHash is a hash of a random password with the configured costs,
// checked for unknown names so that they cost as much as known ones.
func (a *Auth) decoyHash() string {
	a.decoyOnce.Do(func() {
		pw, err := randomToken()
		if err == nil {
			a.decoy, err = HashPasswordWith(pw, a.cfg.Params)
		}
		if err != nil {
			a.cfg.Log.Error().Err(err).Msg("auth: decoy hash")
		}
	})
	return a.decoy
}

// sweep deletes expired sessions, at most once per sweepEvery.
func (a *Auth) sweep(ctx context.Context, now time.Time) {
	last := a.lastSweep.Load()
	if last != 0 && now.UnixNano()-last < int64(sweepEvery) || !a.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	n, err := a.users.DeleteExpiredSessions(ctx, now)
	if err != nil {
		a.cfg.Log.Warn().Err(err).Msg("auth: delete expired sessions")
		return
	}
	if n > 0 {
		a.cfg.Log.Debug().Int("sessions", n).Msg("auth: expired sessions deleted")
	}
}

func (a *Auth) setCookie(c *fiber.Ctx, token string, expires time.Time) {
	c.Cookie(&fiber.Cookie{Name: CookieName, Value: token, Path: "/", Expires: expires,
		HTTPOnly: true, Secure: a.secure, SameSite: fiber.CookieSameSiteStrictMode})
}

// sameOrigin reports whether the request's Origin, when it has one, is
// parley's public origin or the origin the request itself was sent to. A
// browser always sends Origin on cross-site POSTs, so a missing one means
// a same-site request or a non-browser client, which cookies alone cannot
// be forged from.
func (a *Auth) sameOrigin(c *fiber.Ctx) bool {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return true
	}
	origin = strings.ToLower(origin)
	return origin == a.origin || origin == strings.ToLower(c.BaseURL())
}

func (a *Auth) tooMany(c *fiber.Ctx, name, ip string, wait time.Duration) error {
	secs := max(int((wait+time.Second-1)/time.Second), 1)
	a.cfg.Log.Warn().Str("user", name).Str("ip", ip).Int("retry_after_s", secs).Msg("auth: login rate limited")
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
	return deny(c, fiber.StatusTooManyRequests, "too many failed logins, try again in "+strconv.Itoa(secs)+" s")
}

func (a *Auth) storeFailure(c *fiber.Ctx, what string, err error) error {
	a.cfg.Log.Error().Err(err).Str("path", c.Path()).Msg("auth: " + what)
	return deny(c, fiber.StatusInternalServerError, "internal error")
}

// TokenHash is how a session token is stored: the hex SHA-256 of it.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// randomToken returns 32 random bytes, URL-safe base64 without padding.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// NewUserID returns a random ID for a new user ("u_" and 16 hex digits).
func NewUserID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: user id: %w", err)
	}
	return "u_" + hex.EncodeToString(b[:]), nil
}

func deny(c *fiber.Ctx, code int, msg string) error {
	return c.Status(code).JSON(fiber.Map{"error": msg})
}

func unsafeMethod(m string) bool {
	switch m {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return false
	}
	return true
}

func hasRole(roles []parley.Role, r parley.Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

func roleList(roles []parley.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}
