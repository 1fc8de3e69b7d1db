package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/configs"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
	"github.com/parley-ai/parley/switchboard"
	"github.com/parley-ai/parley/telephony/twilio"
	"github.com/parley-ai/parley/web/auth"
)

// postgresAdminURL is the server the cluster tests use (the test command
// starts one on 127.0.0.1:5432 when none answers).
func postgresAdminURL() string {
	if u := os.Getenv("PARLEY_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// freshPostgres creates an empty database for one test, dropped after it.
func freshPostgres(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := postgresAdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("the cluster test needs PostgreSQL (set PARLEY_TEST_POSTGRES_URL): %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "parley_cluster_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, admin); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// clusterNode is one parley server of a test cluster, in this process.
type clusterNode struct {
	srv  *server
	url  string
	done chan error
}

func startNode(t *testing.T, ctx context.Context, node, store string) *clusterNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	env := map[string]string{
		"PARLEY_LISTEN":            ln.Addr().String(),
		"PARLEY_PUBLIC_URL":        u,
		"PARLEY_DATA_DIR":          t.TempDir(),
		"PARLEY_TWILIO_AUTH_TOKEN": e2eToken,
		"PARLEY_LOG_LEVEL":         "warn",
		"PARLEY_WEBRTC_LOOPBACK":   "true",
		"PARLEY_STORE":             store,
		"PARLEY_NODE":              node,
	}
	cfg, err := configs.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Queue.Transcribe = false // the bridge's audio is what this test checks
	sctx, cancel := context.WithCancel(ctx)
	srv, err := newServer(sctx, cfg, serverLogger(os.Stderr, "warn"))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	n := &clusterNode{srv: srv, url: u, done: make(chan error, 1)}
	go func() { n.done <- srv.serve(sctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-n.done; err != nil {
			t.Errorf("node %s: %v", node, err)
		}
	})
	return n
}

// consoleClient is an agent's console over HTTP: session, CSRF token and
// the event stream.
type consoleClient struct {
	base   string
	client *http.Client
	csrf   string
	mu     sync.Mutex
	raw    strings.Builder // every line the stream carried
	events []string        // its data lines
	stop   context.CancelFunc
	done   chan struct{}
}

func loginConsole(t *testing.T, base string, u parley.User) *consoleClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &consoleClient{base: base, client: &http.Client{Jar: jar}, done: make(chan struct{})}
	resp, err := c.client.Post(base+"/api/login", "application/json",
		strings.NewReader(fmt.Sprintf(`{"name":%q,"password":%q}`, u.Name, consolePassword)))
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ CSRF string }
	err = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("login on %s: %d %v", base, resp.StatusCode, err)
	}
	c.csrf = login.CSRF
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/console/events", nil)
	resp, err = c.client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		cancel()
		t.Fatalf("event stream: %v %v", err, resp)
	}
	go func() {
		defer close(c.done)
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			c.mu.Lock()
			c.raw.WriteString(line)
			if strings.HasPrefix(line, "data: ") {
				c.events = append(c.events, strings.TrimPrefix(line, "data: "))
			}
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *consoleClient) close() {
	c.stop()
	<-c.done
}

func (c *consoleClient) post(t *testing.T, path string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	return c.postRaw(t, path, string(b))
}

// postRaw sends body as it is, with the session's CSRF token.
func (c *consoleClient) postRaw(t *testing.T, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", c.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(auth.CSRFHeader, c.csrf)
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// offer waits for an offer update for callID on the event stream.
func (c *consoleClient) offer(t *testing.T, callID string, limit time.Duration) switchboard.Offer {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		evs := append([]string(nil), c.events...)
		c.mu.Unlock()
		for _, e := range evs {
			var u switchboard.Update
			if json.Unmarshal([]byte(e), &u) == nil && u.Kind == switchboard.UpdateOffer && u.CallID == callID && u.Offer != nil {
				return *u.Offer
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no offer for %s on the agent's stream", callID)
	return switchboard.Offer{}
}

// Two nodes on one PostgreSQL: an agent whose console is on node A takes a
// phone call that arrived on node B. The offer reaches A's event stream
// with the brief, the answer comes from B (whose audio candidates the
// agent's WebRTC connects to), and audio flows both ways; the supervisor
// view on A lists B's call.
func TestClusterAgentOnOneNodeTakesCallOnAnother(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	store := freshPostgres(t)
	a := startNode(t, ctx, "node-a", store)
	b := startNode(t, ctx, "node-b", store)

	users, ok := a.srv.base.(parley.UserStore)
	if !ok {
		t.Fatal("no user store")
	}
	agentUser := clusterUser(t, users, "cl-agent", parley.RoleAgent)
	agent := loginConsole(t, a.url, agentUser)
	if code, body := agent.post(t, "/api/agent/state", map[string]string{"state": "available"}); code != 200 {
		t.Fatalf("available: %d %s", code, body)
	}

	// The call arrives on node B and asks for a person.
	d := twilio.Dialer{ServerURL: b.url, AuthToken: e2eToken, From: "+14155550199", MaxRecording: 2 * time.Minute}
	w := &audioWatch{}
	d.OnAudio = w.onAudio
	call, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer call.Hangup()
	if _, _, ok := w.waitReply(ctx, call.Done(), call.Started(), 1200*time.Millisecond, 15*time.Second); !ok {
		t.Fatal("no greeting from node B")
	}
	if err := call.SendAudio(speak(t, "I want to speak to an agent")); err != nil {
		t.Fatal(err)
	}
	asked := time.Now()
	o := agent.offer(t, call.CallSID, 30*time.Second)
	t.Logf("offer on node A's stream %v after the caller on node B finished asking", time.Since(asked).Round(time.Millisecond))
	if o.Node != "node-b" || o.From != "+14155550199" || len(o.Reasons) == 0 {
		t.Fatalf("offer on node A for B's call: node %q from %q reasons %v", o.Node, o.From, o.Reasons)
	}
	// The offer is also what GET /api/agent/offer on node A returns (asked of B).
	req, _ := http.NewRequest("GET", a.url+"/api/agent/offer", nil)
	resp, err := agent.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pending struct{ Offer *switchboard.Offer }
	_ = json.NewDecoder(resp.Body).Decode(&pending)
	resp.Body.Close()
	if pending.Offer == nil || pending.Offer.CallID != call.CallSID || len(pending.Offer.Transcript) == 0 {
		t.Fatalf("pending offer on node A: %+v", pending.Offer)
	}

	// Accept on node A with the agent's WebRTC offer; node B answers.
	peer, sdp, err := mwebrtc.NewOffer(mwebrtc.Config{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	accepting := time.Now()
	code, body := agent.post(t, "/api/agent/offers/"+call.CallSID+"/accept", map[string]string{"type": "offer", "sdp": sdp})
	if code != 200 {
		t.Fatalf("accept on node A: %d %s", code, body)
	}
	var answer struct{ SDP string }
	if err := json.Unmarshal(body, &answer); err != nil || answer.SDP == "" {
		t.Fatalf("answer: %s", body)
	}
	if err := peer.SetAnswer(answer.SDP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-peer.Connected():
	case <-time.After(20 * time.Second):
		t.Fatal("the agent's audio did not connect to node B")
	}
	connected := time.Now()
	t.Logf("agent audio connected to node B %v after accepting on node A", connected.Sub(accepting).Round(time.Millisecond))

	// The agent talks (a 700 Hz tone) and listens.
	var heardMu sync.Mutex
	var loud int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		frame := make([]int16, 160)
		n := 0
		for {
			select {
			case <-stop:
				return
			case f := <-peer.Audio():
				if rmsOf(f) > 300 {
					heardMu.Lock()
					loud++
					heardMu.Unlock()
				}
				peer.Release(f)
			case <-tick.C:
				for i := range frame {
					frame[i] = int16(8000 * math.Sin(2*math.Pi*700*float64(n)/8000))
					n++
				}
				_ = peer.WriteFrame(frame)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	var prominence float64
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if h := heardSince(call, connected); len(h) > 8000 {
			if prominence = toneProminence(loudestWindow(h, 4000), 700); prominence > 0.5 {
				break
			}
		}
	}
	if prominence <= 0.5 {
		t.Fatalf("the caller on node B did not hear the agent's tone (prominence %.2f)", prominence)
	}
	heardMu.Lock()
	loudBefore := loud
	heardMu.Unlock()
	if err := call.SendAudio(speak(t, "my card was stolen yesterday")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		heardMu.Lock()
		got := loud - loudBefore
		heardMu.Unlock()
		if got >= 25 { // half a second of the caller's speech
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent heard %d loud frames of the caller's speech", got)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Node A's supervisor view shows B's call with its agent.
	snap := a.srv.sb.Live()
	found := false
	for _, lc := range snap.Calls {
		if lc.ID == call.CallSID {
			found = lc.Node == "node-b" && lc.Agent != nil && lc.Agent.ID == agentUser.ID
		}
	}
	if !found {
		t.Fatalf("node A's live view: %+v", snap.Calls)
	}

	// The agent hangs up from node A; B ends the call; the wrap-up sent
	// to A lands in B's record of it.
	if code, body := agent.post(t, "/api/agent/calls/"+call.CallSID+"/hangup", map[string]any{}); code/100 != 2 {
		t.Fatalf("hang up via node A: %d %s", code, body)
	}
	select {
	case <-call.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the call did not end")
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, body := agent.post(t, "/api/agent/calls/"+call.CallSID+"/wrapup", map[string]string{"disposition": "resolved", "notes": "card blocked"})
		if code/100 == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wrap-up via node A: %d %s", code, body)
		}
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		evs, err := b.srv.base.Events(ctx, call.CallSID)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{}
		for _, e := range evs {
			kinds[e.Kind] = true
		}
		if kinds["transfer"] && kinds["wrapup"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored events of B's call: %v", kinds)
		}
	}
	c, err := a.srv.base.GetCall(ctx, call.CallSID)
	if err != nil || c.Node != "node-b" {
		t.Fatalf("stored call: node %q %v", c.Node, err)
	}
	if art := os.Getenv("PARLEY_TEST_ARTIFACTS"); art != "" {
		caller, heard := call.Recording()
		_ = writeStereo(filepath.Join(art, "cluster-caller.wav"), caller, heard, twilio.MulawSampleRate)
	}
}

func clusterUser(t *testing.T, users parley.UserStore, name string, role parley.Role) parley.User {
	t.Helper()
	id, err := auth.NewUserID()
	if err != nil {
		t.Fatal(err)
	}
	u := parley.User{ID: id, Name: name, Role: role, CreatedAt: time.Now()}
	u.PasswordHash, err = auth.HashPasswordWith(consolePassword, auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	if err := users.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}
