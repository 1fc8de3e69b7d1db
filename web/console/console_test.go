package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/escalation"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
	"github.com/parley-ai/parley/switchboard"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	)
}

type route struct {
	method, path, body string
}

var agentRoutes = []route{
	{"POST", "/api/agent/state", `{"state":"available"}`},
	{"GET", "/api/agent/offer", ""},
	{"POST", "/api/agent/offers/CA1/accept", `{"sdp":"v=0 offer"}`},
	{"POST", "/api/agent/offers/CA1/decline", ""},
	{"GET", "/api/agent/call", ""},
	{"POST", "/api/agent/calls/CA1/hangup", ""},
	{"POST", "/api/agent/calls/CA1/mute", `{"muted":true}`},
	{"POST", "/api/agent/calls/CA1/hold", `{"hold":false}`},
	{"POST", "/api/agent/calls/CA1/wrapup", `{"disposition":"resolved","notes":"card blocked"}`},
}

var supervisorRoutes = []route{
	{"GET", "/api/supervisor/live", ""},
	{"POST", "/api/supervisor/calls/CA1/join", `{"mode":"listen","sdp":"v=0 offer"}`},
	{"POST", "/api/supervisor/calls/CA1/mode", `{"mode":"whisper"}`},
	{"POST", "/api/supervisor/calls/CA1/leave", ""},
}

// Every API answers 401 without a session, 403 to the wrong role and
// succeeds for the right one; the backend is never reached otherwise.
func TestAuthMatrix(t *testing.T) {
	s := startServer(t, Options{})
	anon := s.anonymous(t)
	clients := map[string]*client{"agent": s.login(t, alice), "supervisor": s.login(t, sam), "admin": s.login(t, ada)}
	check := func(r route, who string, c *client, want int) {
		t.Helper()
		code, body := c.do(r.method, r.path, r.body)
		ok := code == want || (want == 200 && code == 204)
		if !ok {
			t.Errorf("%s %s as %s: %d %s, want %d", r.method, r.path, who, code, body, want)
		}
		if code >= 400 && !strings.Contains(body, `"error"`) {
			t.Errorf("%s %s as %s: error body %q is not {\"error\": ...}", r.method, r.path, who, body)
		}
	}
	for _, r := range agentRoutes {
		check(r, "nobody", anon, 401)
		check(r, "supervisor", clients["supervisor"], 403)
		check(r, "admin", clients["admin"], 403)
	}
	for _, r := range supervisorRoutes {
		check(r, "nobody", anon, 401)
		check(r, "agent", clients["agent"], 403)
	}
	if n := len(s.fake.calledWith("")); n != 0 {
		t.Fatalf("the backend was reached by refused requests: %v", s.fake.log)
	}
	for _, r := range agentRoutes {
		check(r, "agent", clients["agent"], 200)
	}
	for _, r := range supervisorRoutes {
		check(r, "supervisor", clients["supervisor"], 200)
		check(r, "admin", clients["admin"], 200)
	}
	// The event stream: any console user, nobody else.
	if _, code := anon.openEvents(); code != 401 {
		t.Errorf("anonymous event stream: %d", code)
	}
	for who, c := range clients {
		st, code := c.openEvents()
		if code != 200 {
			t.Errorf("%s event stream: %d", who, code)
			continue
		}
		if ev := st.next(t); ev.name != "snapshot" {
			t.Errorf("%s: first event %q", who, ev.name)
		}
		st.close()
	}
	// The backend saw who asked, from the session (never from the body).
	for _, want := range []string{"SetAgentState u-alice available", "Accept u-alice CA1", "Decline u-alice CA1",
		"AgentHangup u-alice CA1", "AgentMute u-alice CA1 true", "AgentHold u-alice CA1 false",
		"WrapUp u-alice CA1 resolved card blocked", "Join u-sam CA1 listen", "SetJoinMode u-ada CA1 whisper", "Leave u-sam CA1"} {
		method := strings.Fields(want)[0]
		found := false
		for _, l := range s.fake.calledWith(method) {
			found = found || l == want
		}
		if !found {
			t.Errorf("backend never got %q: %v", want, s.fake.calledWith(method))
		}
	}
}

// State-changing requests need the session's CSRF token.
func TestCSRFIsRequired(t *testing.T) {
	s := startServer(t, Options{})
	c := s.login(t, alice)
	c.csrf = ""
	if code, body := c.do("POST", "/api/agent/state", `{"state":"available"}`); code != 403 || !strings.Contains(body, "csrf") {
		t.Fatalf("no CSRF token: %d %s", code, body)
	}
	c.csrf = "wrong"
	if code, _ := c.do("POST", "/api/agent/offers/CA1/accept", `{"sdp":"v=0"}`); code != 403 {
		t.Fatalf("wrong CSRF token: %d", code)
	}
	if len(s.fake.calledWith("SetAgentState"))+len(s.fake.calledWith("Accept")) != 0 {
		t.Fatal("backend reached without CSRF")
	}
}

func TestMalformedBodies(t *testing.T) {
	s := startServer(t, Options{})
	agent, sup := s.login(t, alice), s.login(t, sam)
	big := `{"sdp":"` + strings.Repeat("a", maxSDPBody) + `"}`
	cases := []struct {
		c           *client
		path, body  string
		contentType string
		want        int
		says        string
	}{
		{agent, "/api/agent/state", `{"state":"available"}`, "text/plain", 415, "application/json"},
		{agent, "/api/agent/state", `{"state":`, "", 400, "malformed JSON"},
		{agent, "/api/agent/state", ` `, "", 400, "empty body"},
		{agent, "/api/agent/state", `["available"]`, "", 400, "malformed JSON"},
		{agent, "/api/agent/state", `{"state":"available","x":1}`, "", 400, `unknown field "x"`},
		{agent, "/api/agent/state", `{"state":"available"} {}`, "", 400, "data after"},
		{agent, "/api/agent/state", `{"state":"busy"}`, "", 400, `"available" or "away"`},
		{agent, "/api/agent/state", `{"state":7}`, "", 400, `field "state"`},
		{agent, "/api/agent/offers/CA1/accept", `{}`, "", 400, "sdp"},
		{agent, "/api/agent/offers/CA1/accept", `{"type":"answer","sdp":"v=0"}`, "", 400, `type must be "offer"`},
		{agent, "/api/agent/offers/CA1/accept", `{"sdp":"v=0","mode":"barge"}`, "", 400, "mode"},
		{agent, "/api/agent/offers/CA1/accept", big, "", 413, "larger than"},
		{agent, "/api/agent/offers/" + strings.Repeat("x", 200) + "/accept", `{"sdp":"v=0"}`, "", 400, "call id"},
		{agent, "/api/agent/offers/a%20b/accept", `{"sdp":"v=0"}`, "", 400, "call id"},
		{agent, "/api/agent/calls/CA1/mute", `{}`, "", 400, "muted"},
		{agent, "/api/agent/calls/CA1/mute", `{"muted":"yes"}`, "", 400, `field "muted"`},
		{agent, "/api/agent/calls/CA1/hold", `{"muted":true}`, "", 400, "unknown field"},
		{agent, "/api/agent/calls/CA1/wrapup", `{"notes":"x"}`, "", 400, "disposition is required"},
		{agent, "/api/agent/calls/CA1/wrapup", `{"disposition":"resolved","notes":"` + strings.Repeat("n", maxNotesLen+1) + `"}`, "", 400, "notes"},
		{sup, "/api/supervisor/calls/CA1/join", `{"mode":"spy","sdp":"v=0"}`, "", 400, "mode must be"},
		{sup, "/api/supervisor/calls/CA1/join", `{"mode":"listen"}`, "", 400, "sdp"},
		{sup, "/api/supervisor/calls/CA1/mode", `{"mode":""}`, "", 400, "mode must be"},
	}
	for _, tc := range cases {
		ct := tc.contentType
		if ct == "" {
			ct = "application/json"
		}
		code, body := tc.c.doType("POST", tc.path, tc.body, ct)
		var e struct{ Error string }
		_ = json.Unmarshal([]byte(body), &e)
		if code != tc.want || !strings.Contains(e.Error, tc.says) {
			short := tc.body
			if len(short) > 60 {
				short = short[:60] + "…"
			}
			t.Errorf("POST %.60s %s: %d %s, want %d with %q", tc.path, short, code, body, tc.want, tc.says)
		}
	}
	for _, m := range []string{"SetAgentState", "Accept", "AgentMute", "AgentHold", "WrapUp", "Join", "SetJoinMode"} {
		if got := s.fake.calledWith(m); len(got) != 0 {
			t.Errorf("malformed requests reached the backend: %v", got)
		}
	}
}

// Backend errors map to statuses; unknown ones answer a generic 500.
func TestBackendErrors(t *testing.T) {
	s := startServer(t, Options{})
	agent, sup := s.login(t, alice), s.login(t, sam)
	cases := []struct {
		err  error
		want int
	}{
		{switchboard.ErrNoSuchCall, 404},
		{fmt.Errorf("wrapped: %w", switchboard.ErrNotYourCall), 403},
		{switchboard.ErrNoAgent, 409},
		{switchboard.ErrNotHuman, 409},
		{switchboard.ErrBadMode, 400},
		{escalation.ErrNoOffer, 409},
		{escalation.ErrUnknownAgent, 409},
		{fmt.Errorf("%w: agent is on a call", escalation.ErrBadState), 400},
		{fmt.Errorf("%w: no audio section", mwebrtc.ErrBadOffer), 400},
		{errors.New("database on fire at 10.0.0.7"), 500},
	}
	for _, tc := range cases {
		for _, m := range []string{"Accept", "SetAgentState", "Join", "AgentHangup"} {
			s.fake.setErr(m, tc.err)
		}
		var code int
		var body string
		for _, r := range []struct {
			c       *client
			path, b string
		}{
			{agent, "/api/agent/offers/CA1/accept", `{"sdp":"v=0"}`},
			{agent, "/api/agent/state", `{"state":"away"}`},
			{agent, "/api/agent/calls/CA1/hangup", ""},
			{sup, "/api/supervisor/calls/CA1/join", `{"mode":"barge","sdp":"v=0"}`},
		} {
			code, body = r.c.do("POST", r.path, r.b)
			if code != tc.want {
				t.Errorf("%v on %s: %d %s, want %d", tc.err, r.path, code, body, tc.want)
			}
		}
		if tc.want == 500 && (strings.Contains(body, "fire") || !strings.Contains(body, "internal error")) {
			t.Errorf("500 body leaks or is unclear: %s", body)
		}
		if tc.want == 400 && errors.Is(tc.err, mwebrtc.ErrBadOffer) && !strings.Contains(body, "no audio section") {
			t.Errorf("bad offer reason not told: %s", body)
		}
	}
}

func TestAcceptAndJoinExchangeSDP(t *testing.T) {
	s := startServer(t, Options{})
	agent, sup := s.login(t, alice), s.login(t, sam)
	offer := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
	body, _ := json.Marshal(map[string]string{"type": "offer", "sdp": offer})
	code, resp := agent.do("POST", "/api/agent/offers/CA-7/accept", string(body))
	var ans struct{ Type, SDP string }
	if code != 200 || json.Unmarshal([]byte(resp), &ans) != nil || ans.SDP != "v=0 answer" || ans.Type != "answer" {
		t.Fatalf("accept: %d %s", code, resp)
	}
	if s.fake.lastSDP != offer {
		t.Fatalf("backend got offer %q", s.fake.lastSDP)
	}
	body, _ = json.Marshal(map[string]string{"mode": "whisper", "sdp": offer})
	code, resp = sup.do("POST", "/api/supervisor/calls/CA-7/join", string(body))
	if code != 200 || !strings.Contains(resp, "v=0 answer") || s.fake.lastMode != switchboard.JoinWhisper {
		t.Fatalf("join: %d %s mode %q", code, resp, s.fake.lastMode)
	}
}

func TestAgentGetsOwnOfferAndCall(t *testing.T) {
	s := startServer(t, Options{})
	agent := s.login(t, alice)
	if code, body := agent.do("GET", "/api/agent/offer", ""); code != 200 || body != `{"offer":null}` {
		t.Fatalf("no offer: %d %s", code, body)
	}
	s.fake.mu.Lock()
	s.fake.offers[alice.ID] = switchboard.Offer{Brief: switchboard.Brief{CallID: "CA-a", From: "+15550001", Summary: "card stolen"}}
	s.fake.offers[bob.ID] = switchboard.Offer{Brief: switchboard.Brief{CallID: "CA-b", From: "+15550002"}}
	s.fake.calls[alice.ID] = switchboard.LiveCall{CallSummary: switchboard.CallSummary{ID: "CA-a"},
		Listeners: []switchboard.Listener{{UserID: "u-sam", Name: "sam", Mode: switchboard.JoinListen}, {UserID: "u-x", Name: "xena", Mode: switchboard.JoinWhisper}}}
	s.fake.mu.Unlock()
	code, body := agent.do("GET", "/api/agent/offer", "")
	if code != 200 || !strings.Contains(body, "CA-a") || strings.Contains(body, "CA-b") || !strings.Contains(body, "card stolen") {
		t.Fatalf("offer: %d %s", code, body)
	}
	code, body = agent.do("GET", "/api/agent/call", "")
	if code != 200 || !strings.Contains(body, "CA-a") || strings.Contains(body, "sam") || !strings.Contains(body, "xena") {
		t.Fatalf("call (a silent listener must not show, a whisperer must): %d %s", code, body)
	}
}

func TestPagesAndAssets(t *testing.T) {
	s := startServer(t, Options{})
	c := s.anonymous(t)
	for page, script := range map[string]string{"/agent": "/console/agent.js", "/supervisor": "/console/supervisor.js"} {
		resp, err := c.http.Get(s.url + page)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		_, _ = fmt.Fprint(&b, readAll(t, resp))
		body := b.String()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", page, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s CSP %q", page, csp)
		}
		if resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s headers %v", page, resp.Header)
		}
		for _, want := range []string{`src="` + script + `"`, `src="/console/common.js"`, `href="/console/console.css"`, `id="login"`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %s", page, want)
			}
		}
		if strings.Contains(body, "{{") {
			t.Errorf("%s has an unfilled placeholder", page)
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "style=") {
			t.Errorf("%s has inline script or style the CSP would block", page)
		}
	}
	if !strings.Contains(mustGet(t, c, s.url+"/supervisor"), `href="/dashboard"`) {
		t.Error("supervisor page does not link the dashboard")
	}
	for file, ct := range map[string]string{"common.js": "text/javascript", "agent.js": "text/javascript",
		"supervisor.js": "text/javascript", "console.css": "text/css"} {
		resp, err := c.http.Get(s.url + "/console/" + file)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) || len(body) < 500 {
			t.Errorf("%s: %d %s %d bytes", file, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	if !strings.Contains(mustGet(t, c, s.url+"/console/agent.js"), "window.parleyConsole") {
		t.Error("agent.js exposes no test hook")
	}
	resp, err := c.http.Get(s.url + "/console/..%2fconsole.go")
	if err != nil {
		t.Fatal(err)
	}
	if readAll(t, resp); resp.StatusCode != 404 {
		t.Errorf("unknown asset: %d", resp.StatusCode)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func mustGet(t *testing.T, c *client, url string) string {
	t.Helper()
	resp, err := c.http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	return readAll(t, resp)
}

// A supervisor's stream starts with the whole live picture and carries
// every update.
func TestSupervisorStream(t *testing.T) {
	s := startServer(t, Options{})
	s.fake.live = switchboard.Snapshot{
		Calls:  []switchboard.LiveCall{{CallSummary: switchboard.CallSummary{ID: "CA-1", From: "+15550001", Phase: "ai"}}},
		Agents: []escalation.Agent{{ID: alice.ID, Name: "alice", State: escalation.AgentAvailable}},
		Queue:  []escalation.Waiting{},
	}
	st, _ := s.login(t, sam).openEvents()
	ev := st.next(t)
	var snap SupervisorSnapshot
	if ev.name != "snapshot" || json.Unmarshal([]byte(ev.data), &snap) != nil || len(snap.Calls) != 1 ||
		snap.Calls[0].From != "+15550001" || len(snap.Agents) != 1 || snap.Role != parley.RoleSupervisor || snap.Now.IsZero() {
		t.Fatalf("snapshot %q: %s", ev.name, ev.data)
	}
	turn := parley.Turn{CallID: "CA-1", Seq: 3, Speaker: parley.SpeakerCaller, Text: "my card was stolen",
		Signals: &parley.Signals{ASRConfidence: 0.42, Frustration: 0.7}}
	sent := []switchboard.Update{
		{Kind: switchboard.UpdateTurn, CallID: "CA-1", Turn: &turn},
		{Kind: switchboard.UpdateDecision, CallID: "CA-1", Decision: &escalation.Decision{Transfer: true, Reasons: []escalation.Reason{escalation.ReasonLowConfidence}}},
		{Kind: switchboard.UpdateQueue, Queue: []escalation.Waiting{{Request: escalation.Request{CallID: "CA-1", From: "+15550001"}, Position: 1}}},
		{Kind: switchboard.UpdateOffer, CallID: "CA-1", AgentID: bob.ID, Offer: &switchboard.Offer{Brief: switchboard.Brief{CallID: "CA-1"}}},
		{Kind: switchboard.UpdateAgent, AgentID: bob.ID, Agent: &escalation.Agent{ID: bob.ID, State: escalation.AgentOffered}},
		{Kind: switchboard.UpdateEnded, CallID: "CA-1", Call: &switchboard.LiveCall{CallSummary: switchboard.CallSummary{ID: "CA-1"}}},
	}
	for _, u := range sent {
		s.fake.publish(u)
	}
	for _, want := range sent {
		u := st.next(t).update(t)
		if u.Kind != want.Kind || u.CallID != want.CallID {
			t.Fatalf("update %+v, want kind %s call %s", u, want.Kind, want.CallID)
		}
	}
}

// An agent's stream carries their own state, offers to them and their
// calls — never another agent's offer or call, the queue or decisions.
func TestAgentStreamIsolation(t *testing.T) {
	s := startServer(t, Options{})
	s.fake.live = switchboard.Snapshot{
		Calls:  []switchboard.LiveCall{{CallSummary: switchboard.CallSummary{ID: "CA-bob", From: "+15550002"}}},
		Agents: []escalation.Agent{{ID: alice.ID, Name: "alice", State: escalation.AgentAway}, {ID: bob.ID, Name: "bob", State: escalation.AgentBusy, CallID: "CA-bob"}},
	}
	s.fake.calls[bob.ID] = switchboard.LiveCall{CallSummary: switchboard.CallSummary{ID: "CA-bob"}}
	aliceC, bobC := s.login(t, alice), s.login(t, bob)
	as, _ := aliceC.openEvents()
	ev := as.next(t)
	var snap AgentSnapshot
	if ev.name != "snapshot" || json.Unmarshal([]byte(ev.data), &snap) != nil || snap.Agent == nil || snap.Agent.ID != alice.ID ||
		snap.Call != nil || snap.Offer != nil || strings.Contains(ev.data, "CA-bob") || strings.Contains(ev.data, "+15550002") {
		t.Fatalf("alice's snapshot: %s", ev.data)
	}
	bs, _ := bobC.openEvents()
	if ev := bs.next(t); !strings.Contains(ev.data, "CA-bob") {
		t.Fatalf("bob's snapshot lacks his call: %s", ev.data)
	}
	s.waitSubscribers(t, 2)

	bobTurn := parley.Turn{CallID: "CA-bob", Seq: 5, Speaker: parley.SpeakerCaller, Text: "secret of bob's caller"}
	foreign := []switchboard.Update{
		{Kind: switchboard.UpdateOffer, CallID: "CA-new", AgentID: bob.ID, Offer: &switchboard.Offer{Brief: switchboard.Brief{CallID: "CA-new", From: "+15550003"}}},
		{Kind: switchboard.UpdateAgent, AgentID: bob.ID, Agent: &escalation.Agent{ID: bob.ID, Name: "bob", State: escalation.AgentBusy, CallID: "CA-bob"}},
		{Kind: switchboard.UpdateTurn, CallID: "CA-bob", Turn: &bobTurn},
		{Kind: switchboard.UpdateCall, CallID: "CA-bob", Call: &switchboard.LiveCall{CallSummary: switchboard.CallSummary{ID: "CA-bob"}, Agent: &switchboard.AgentRef{ID: bob.ID, Name: "bob"}}},
		{Kind: switchboard.UpdateNotice, CallID: "CA-bob", AgentID: bob.ID, Text: "caller on hold"},
		{Kind: switchboard.UpdateNotice, CallID: "CA-bob", Text: "no agent named"},
		{Kind: switchboard.UpdateWithdrawn, CallID: "CA-new", AgentID: bob.ID, Text: "declined"},
		{Kind: switchboard.UpdateQueue, Queue: []escalation.Waiting{{Request: escalation.Request{CallID: "CA-q", From: "+15550004"}}}},
		{Kind: switchboard.UpdateDecision, CallID: "CA-bob", Decision: &escalation.Decision{Transfer: true}},
		{Kind: switchboard.UpdateEnded, CallID: "CA-bob", Call: &switchboard.LiveCall{CallSummary: switchboard.CallSummary{ID: "CA-bob"}, Agent: &switchboard.AgentRef{ID: bob.ID}}},
	}
	for _, u := range foreign {
		s.fake.publish(u)
	}
	// Then alice's own: an offer, her state, her call's turns and end.
	aliceTurn := parley.Turn{CallID: "CA-alice", Seq: 1, Speaker: parley.SpeakerCaller, Text: "I want a person"}
	own := []switchboard.Update{
		{Kind: switchboard.UpdateAgent, AgentID: alice.ID, Agent: &escalation.Agent{ID: alice.ID, State: escalation.AgentAvailable}},
		{Kind: switchboard.UpdateOffer, CallID: "CA-alice", AgentID: alice.ID, Offer: &switchboard.Offer{Brief: switchboard.Brief{CallID: "CA-alice"}}},
		{Kind: switchboard.UpdateTurn, CallID: "CA-alice", Turn: &aliceTurn},
		{Kind: switchboard.UpdateAgent, AgentID: alice.ID, Agent: &escalation.Agent{ID: alice.ID, State: escalation.AgentBusy, CallID: "CA-alice"}},
		{Kind: switchboard.UpdateCall, CallID: "CA-alice", Call: &switchboard.LiveCall{CallSummary: switchboard.CallSummary{ID: "CA-alice"}, Agent: &switchboard.AgentRef{ID: alice.ID},
			Listeners: []switchboard.Listener{{UserID: sam.ID, Name: "sam", Mode: switchboard.JoinListen}}}},
		{Kind: switchboard.UpdateNotice, CallID: "CA-alice", AgentID: alice.ID, Text: "caller is back"},
		{Kind: switchboard.UpdateEnded, CallID: "CA-alice"},
		{Kind: switchboard.UpdateAgent, AgentID: alice.ID, Agent: &escalation.Agent{ID: alice.ID, State: escalation.AgentAvailable}},
		// Done with the call: its late turns are no longer hers.
		{Kind: switchboard.UpdateTurn, CallID: "CA-alice", Turn: &aliceTurn},
		{Kind: switchboard.UpdateAgent, AgentID: alice.ID, Agent: &escalation.Agent{ID: alice.ID, State: escalation.AgentAway}},
	}
	for _, u := range own {
		s.fake.publish(u)
	}
	wantKinds := []switchboard.UpdateKind{"agent", "offer", "turn", "agent", "call", "notice", "ended", "agent", "agent"}
	for i, want := range wantKinds {
		ev := as.next(t)
		for _, secret := range []string{"CA-bob", "CA-new", "CA-q", "+1555000", "secret", "no agent named"} {
			if strings.Contains(ev.data, secret) {
				t.Fatalf("alice received %q: %s", secret, ev.data)
			}
		}
		u := ev.update(t)
		if u.Kind != want {
			t.Fatalf("alice's update %d: %s %s, want %s", i, u.Kind, ev.data, want)
		}
		if u.Kind == switchboard.UpdateCall && len(u.Call.Listeners) != 0 {
			t.Fatalf("alice sees a silent listener: %s", ev.data)
		}
	}
	// Bob got his own (the stream is the same code; a sample suffices).
	if u := bs.next(t).update(t); u.Kind != switchboard.UpdateOffer || u.CallID != "CA-new" {
		t.Fatalf("bob's first update: %+v", u)
	}
}

// An agent is signed in while a stream is open, stays signed in across a
// reload, and is signed out a grace after the last stream closed.
func TestAgentPresence(t *testing.T) {
	s := startServer(t, Options{Heartbeat: 20 * time.Millisecond, OfflineGrace: 50 * time.Millisecond})
	c := s.login(t, alice)
	st1, _ := c.openEvents()
	st1.next(t)
	if id := <-s.fake.online; id != alice.ID {
		t.Fatalf("online %q", id)
	}
	st2, _ := c.openEvents() // a second tab, or the reloaded page
	st2.next(t)
	<-s.fake.online
	st1.close()
	s.waitSubscribers(t, 1)
	// The supervisor's stream does not sign anyone in.
	sup, _ := s.login(t, sam).openEvents()
	sup.next(t)
	select {
	case id := <-s.fake.offline:
		t.Fatalf("%s signed out while a stream is open", id)
	case id := <-s.fake.online:
		t.Fatalf("a supervisor's stream signed in %s", id)
	case <-time.After(200 * time.Millisecond):
	}
	st2.close()
	select {
	case id := <-s.fake.offline:
		if id != alice.ID {
			t.Fatalf("offline %q", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent never signed out after the last stream closed")
	}
	// Sign out happened once.
	s.waitSubscribers(t, 1)
	if n := len(s.fake.calledWith("AgentOffline")); n != 1 {
		t.Fatalf("AgentOffline called %d times", n)
	}
}

// Close ends open streams, so that the HTTP server can shut down at once.
func TestCloseEndsStreams(t *testing.T) {
	s := startServer(t, Options{})
	st, _ := s.login(t, sam).openEvents()
	st.next(t)
	ag, _ := s.login(t, alice).openEvents()
	ag.next(t)
	start := time.Now()
	s.stop()
	for _, x := range []*stream{st, ag} {
		select {
		case <-x.done:
		case <-time.After(10 * time.Second):
			t.Fatal("stream still open after Close and shutdown")
		}
	}
	t.Logf("console closed and server shut down in %v", time.Since(start))
	if n := s.fake.subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left", n)
	}
}

// A stream that falls behind gets a fresh snapshot after its backlog.
func TestLaggingStreamGetsSnapshot(t *testing.T) {
	s := startServer(t, Options{SubscribeBuf: 4})
	s.fake.prefill = 4 // the subscription starts full: updates may have been lost
	st, _ := s.login(t, sam).openEvents()
	if ev := st.next(t); ev.name != "snapshot" {
		t.Fatalf("first event %q", ev.name)
	}
	for i := range 4 {
		if u := st.next(t).update(t); u.Kind != switchboard.UpdateQueue {
			t.Fatalf("backlog update %d: %+v", i, u)
		}
	}
	if ev := st.next(t); ev.name != "snapshot" {
		t.Fatalf("after a full backlog: %q %s, want a snapshot", ev.name, ev.data)
	}
}

// A stream outlives the HTTP server's write timeout (parley's is 30 s):
// every write pushes the connection's deadline out again.
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	s := startServerTimeout(t, Options{Heartbeat: 100 * time.Millisecond}, 500*time.Millisecond)
	st, _ := s.login(t, sam).openEvents()
	st.next(t)
	time.Sleep(1500 * time.Millisecond) // three write timeouts
	s.fake.publish(switchboard.Update{Kind: switchboard.UpdateQueue})
	if u := st.next(t).update(t); u.Kind != switchboard.UpdateQueue {
		t.Fatalf("update %+v", u)
	}
}
