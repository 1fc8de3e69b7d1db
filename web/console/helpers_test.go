package console

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/escalation"
	"github.com/parley-ai/parley/store/sqlite"
	"github.com/parley-ai/parley/switchboard"
	"github.com/parley-ai/parley/web/auth"
)

// fakeBackend records what the console asks of it and publishes updates
// on demand. Errors set in errs are returned by the named method.
type fakeBackend struct {
	mu       sync.Mutex
	subs     map[chan switchboard.Update]struct{}
	live     switchboard.Snapshot
	offers   map[string]switchboard.Offer    // by agent ID
	calls    map[string]switchboard.LiveCall // by agent ID
	errs     map[string]error
	log      []string // "method agent call arg"
	online   chan string
	offline  chan string
	answer   string
	lastSDP  string
	lastMode switchboard.JoinMode
	prefill  int // updates already waiting in each new subscription

	// Optional behaviour of the browser tests.
	acceptFn func(offer string) (string, error)
	joinFn   func(offer string) (string, error)
	stateFn  func(agentID string, st escalation.AgentState)
}

func newFake() *fakeBackend {
	return &fakeBackend{subs: map[chan switchboard.Update]struct{}{}, offers: map[string]switchboard.Offer{},
		calls: map[string]switchboard.LiveCall{}, errs: map[string]error{},
		online: make(chan string, 100), offline: make(chan string, 100), answer: "v=0 answer"}
}

func (f *fakeBackend) record(method string, args ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, strings.Join(append([]string{method}, args...), " "))
	return f.errs[method]
}

func (f *fakeBackend) setErr(method string, err error) {
	f.mu.Lock()
	f.errs[method] = err
	f.mu.Unlock()
}

func (f *fakeBackend) calledWith(method string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, l := range f.log {
		if strings.HasPrefix(l, method+" ") || l == method {
			out = append(out, l)
		}
	}
	return out
}

func (f *fakeBackend) publish(u switchboard.Update) {
	if u.At.IsZero() {
		u.At = time.Now()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- u:
		default:
		}
	}
}

func (f *fakeBackend) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeBackend) Live() switchboard.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live
}

func (f *fakeBackend) LiveCall(id string) (switchboard.LiveCall, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.live.Calls {
		if c.ID == id {
			return c, true
		}
	}
	return switchboard.LiveCall{}, false
}

func (f *fakeBackend) Subscribe(buf int) (<-chan switchboard.Update, func()) {
	ch := make(chan switchboard.Update, buf)
	f.mu.Lock()
	for range f.prefill {
		ch <- switchboard.Update{Kind: switchboard.UpdateQueue}
	}
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.subs, ch)
			f.mu.Unlock()
		})
	}
}

func (f *fakeBackend) AgentOnline(u parley.User) escalation.Agent {
	_ = f.record("AgentOnline", u.ID)
	f.online <- u.ID
	return escalation.Agent{ID: u.ID, Name: u.Name, State: escalation.AgentAway}
}

func (f *fakeBackend) AgentOffline(id string) {
	_ = f.record("AgentOffline", id)
	f.offline <- id
}

func (f *fakeBackend) SetAgentState(id string, st escalation.AgentState) error {
	if err := f.record("SetAgentState", id, string(st)); err != nil {
		return err
	}
	if f.stateFn != nil {
		f.stateFn(id, st)
	}
	return nil
}

func (f *fakeBackend) PendingOffer(id string) (switchboard.Offer, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.offers[id]
	return o, ok
}

func (f *fakeBackend) AgentCall(id string) (switchboard.LiveCall, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.calls[id]
	return c, ok
}

func (f *fakeBackend) Accept(ctx context.Context, agentID, callID, sdp string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		return "", errors.New("accept without a deadline")
	}
	f.mu.Lock()
	f.lastSDP = sdp
	f.mu.Unlock()
	if err := f.record("Accept", agentID, callID); err != nil {
		return "", err
	}
	if f.acceptFn != nil {
		return f.acceptFn(sdp)
	}
	return f.answer, nil
}

func (f *fakeBackend) Decline(agentID, callID string) error {
	return f.record("Decline", agentID, callID)
}

func (f *fakeBackend) AgentHangup(agentID, callID string) error {
	return f.record("AgentHangup", agentID, callID)
}

func (f *fakeBackend) AgentMute(agentID, callID string, muted bool) error {
	return f.record("AgentMute", agentID, callID, boolStr(muted))
}

func (f *fakeBackend) AgentHold(agentID, callID string, hold bool) error {
	return f.record("AgentHold", agentID, callID, boolStr(hold))
}

func (f *fakeBackend) WrapUp(_ context.Context, agentID, callID string, w switchboard.WrapUp) error {
	return f.record("WrapUp", agentID, callID, w.Disposition, w.Notes)
}

func (f *fakeBackend) Join(_ context.Context, u parley.User, callID string, mode switchboard.JoinMode, sdp string) (string, error) {
	f.mu.Lock()
	f.lastSDP, f.lastMode = sdp, mode
	f.mu.Unlock()
	if err := f.record("Join", u.ID, callID, string(mode)); err != nil {
		return "", err
	}
	if f.joinFn != nil {
		return f.joinFn(sdp)
	}
	return f.answer, nil
}

func (f *fakeBackend) SetJoinMode(userID, callID string, mode switchboard.JoinMode) error {
	return f.record("SetJoinMode", userID, callID, string(mode))
}

func (f *fakeBackend) Leave(userID, callID string) error {
	return f.record("Leave", userID, callID)
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

var _ Backend = (*fakeBackend)(nil)

const password = "console test password"

// Users of every test server.
var (
	alice = parley.User{ID: "u-alice", Name: "alice", Role: parley.RoleAgent, Skills: []string{"cards"}}
	bob   = parley.User{ID: "u-bob", Name: "bob", Role: parley.RoleAgent}
	sam   = parley.User{ID: "u-sam", Name: "sam", Role: parley.RoleSupervisor}
	ada   = parley.User{ID: "u-ada", Name: "ada", Role: parley.RoleAdmin}
)

type testServer struct {
	url     string
	fake    *fakeBackend
	console *Console
	stop    func()
}

// startServer serves the consoles and the login routes on 127.0.0.1:0
// over a fake backend and a SQLite user store holding alice and bob
// (agents), sam (supervisor) and ada (admin).
func startServer(t *testing.T, opt Options) *testServer {
	t.Helper()
	return startServerTimeout(t, opt, 5*time.Second)
}

// startServerTimeout is startServer with the HTTP server's read and write
// timeouts set to timeout.
func startServerTimeout(t *testing.T, opt Options, timeout time.Duration) *testServer {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cheap := auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	for _, u := range []parley.User{alice, bob, sam, ada} {
		if u.PasswordHash, err = auth.HashPasswordWith(password, cheap); err != nil {
			t.Fatal(err)
		}
		u.CreatedAt = time.Now()
		if err := st.CreateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	a := auth.New(st, auth.Config{Params: cheap})
	app := fiber.New(fiber.Config{DisableStartupMessage: true, ReadTimeout: timeout, WriteTimeout: timeout})
	a.Register(app)
	fake := newFake()
	con, err := New(fake, a, zerolog.Nop(), opt)
	if err != nil {
		t.Fatal(err)
	}
	con.Mount(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = app.Listener(ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			con.Close()
			if err := app.ShutdownWithTimeout(5 * time.Second); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			<-done
		})
	}
	t.Cleanup(stop)
	return &testServer{url: "http://" + ln.Addr().String(), fake: fake, console: con, stop: stop}
}

// client is one browser: a cookie jar and the session's CSRF token.
type client struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
}

func (s *testServer) anonymous(t *testing.T) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: s.url, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (s *testServer) login(t *testing.T, u parley.User) *client {
	t.Helper()
	c := s.anonymous(t)
	code, body := c.do("POST", "/api/login", `{"name":"`+u.Name+`","password":"`+password+`"}`)
	if code != 200 {
		t.Fatalf("login %s: %d %s", u.Name, code, body)
	}
	var r struct{ CSRF string }
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.CSRF == "" {
		t.Fatalf("login %s: %v %s", u.Name, err, body)
	}
	c.csrf = r.CSRF
	return c
}

// do sends a request (a JSON body when body is not empty) with the CSRF
// token and returns the status and body.
func (c *client) do(method, path, body string) (int, string) {
	return c.doType(method, path, body, "application/json")
}

func (c *client) doType(method, path, body, contentType string) (int, string) {
	c.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.csrf != "" {
		req.Header.Set(auth.CSRFHeader, c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	name string // "" for plain messages
	data string
}

// stream is an open event stream.
type stream struct {
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
	done   chan struct{}
}

// openEvents connects to the event stream and reads its events.
func (c *client) openEvents() (*stream, int) {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+EventsPath, nil)
	hc := &http.Client{Jar: c.http.Jar} // no timeout: the stream stays open
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		c.t.Fatalf("events: %v", err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode
	}
	s := &stream{resp: resp, events: make(chan sseEvent, 1000), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.events)
		br := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "":
				if ev.data != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	c.t.Cleanup(s.close)
	return s, 200
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.done
}

// next returns the next event, failing the test when the stream ends or
// nothing comes for a long while.
func (s *stream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("event stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return sseEvent{}
}

// update decodes a plain event as an Update.
func (e sseEvent) update(t *testing.T) switchboard.Update {
	t.Helper()
	if e.name != "" {
		t.Fatalf("event %q, want an update: %s", e.name, e.data)
	}
	var u switchboard.Update
	if err := json.Unmarshal([]byte(e.data), &u); err != nil {
		t.Fatalf("update %s: %v", e.data, err)
	}
	return u
}

// waitSubscribers waits until n streams are subscribed to the backend.
func (s *testServer) waitSubscribers(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.fake.subscribers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers, want %d", s.fake.subscribers(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
