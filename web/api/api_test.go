package api

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store/sqlite"
	"github.com/parley-ai/parley/web/auth"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// fasthttp's worker-pool cleaner sleeps between sweeps and exits
		// on its next wake-up after Shutdown.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	)
}

var t0 = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

const password = "supervisor password"

type server struct {
	url    string
	store  *sqlite.Store
	recDir string
}

// start serves the call API and the auth routes on 127.0.0.1:0 over a
// SQLite store holding four calls and two users: sam (supervisor) and
// alice (agent).
func start(t *testing.T) *server {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	cheap := auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	for _, u := range []parley.User{{ID: "u1", Name: "sam", Role: parley.RoleSupervisor}, {ID: "u2", Name: "alice", Role: parley.RoleAgent}} {
		if u.PasswordHash, err = auth.HashPasswordWith(password, cheap); err != nil {
			t.Fatal(err)
		}
		u.CreatedAt = t0
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	fixture(t, st)
	a := auth.New(st, auth.Config{Params: cheap})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	a.Register(app)
	Calls(st, a, zerolog.Nop())(app)
	recDir := t.TempDir()
	Recordings(recDir, a, zerolog.Nop())(app)
	FeedbackRoutes(st, a, zerolog.Nop())(app)
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
	return &server{url: "http://" + ln.Addr().String(), store: st, recDir: recDir}
}

// fixture stores four calls an hour apart on 14 March 2026 and one on the 15th.
func fixture(t *testing.T, st parley.Store) {
	t.Helper()
	ctx := context.Background()
	calls := []struct {
		call    parley.Call
		says    []string
		outcome parley.Outcome
	}{
		{parley.Call{ID: "CA-balance", Channel: parley.ChannelTwilio, From: "+15550001", To: "+15559999", StartedAt: t0},
			[]string{"How can I help?", "I want to check my balance"}, parley.OutcomeResolved},
		{parley.Call{ID: "CA-stolen", Channel: parley.ChannelTwilio, From: "+15550002", To: "+15559999", StartedAt: t0.Add(time.Hour)},
			[]string{"How can I help?", "My card was stolen"}, parley.OutcomeEscalated},
		{parley.Call{ID: "CA-declined", Channel: parley.ChannelWebRTC, From: "+15550001", To: "+15558888", StartedAt: t0.Add(2 * time.Hour)},
			[]string{"Hello.", "My cards keep getting declined"}, ""},
		{parley.Call{ID: "CA-wallet", Channel: parley.ChannelTwilio, From: "+15550003", To: "+15558888", StartedAt: t0.Add(3 * time.Hour)},
			[]string{"Hello.", "I lost my wallet and my card"}, parley.OutcomeAbandoned},
		{parley.Call{ID: "CA-next-day", Channel: parley.ChannelTwilio, From: "+15550004", To: "+15559999", StartedAt: t0.Add(24 * time.Hour)},
			[]string{"Hello.", "Opening hours?"}, parley.OutcomeResolved},
	}
	for _, c := range calls {
		if err := st.CreateCall(ctx, c.call); err != nil {
			t.Fatal(err)
		}
		for i, text := range c.says {
			turn := parley.Turn{CallID: c.call.ID, Seq: i, Speaker: parley.SpeakerAI, Text: text,
				Start: c.call.StartedAt.Add(time.Duration(2*i) * time.Second), End: c.call.StartedAt.Add(time.Duration(2*i+1) * time.Second)}
			if i%2 == 1 {
				turn.Speaker = parley.SpeakerCaller
				turn.EndOfSpeech = turn.End.Add(200 * time.Millisecond)
				turn.FirstAudio = turn.End.Add(950 * time.Millisecond)
				turn.Signals = &parley.Signals{Intent: "card", NLUConfidence: 0.4}
			}
			if err := st.AppendTurn(ctx, turn); err != nil {
				t.Fatal(err)
			}
		}
		if c.outcome != "" {
			if err := st.EndCall(ctx, c.call.ID, c.call.StartedAt.Add(90*time.Second), c.outcome, "fixture"); err != nil {
				t.Fatal(err)
			}
		}
	}
	evs := []parley.Event{
		{CallID: "CA-stolen", At: t0.Add(time.Hour + 5*time.Second), Kind: "decision",
			Data: json.RawMessage(`{"action":"transfer","reasons":["low_confidence","human_only"]}`)},
		{CallID: "CA-stolen", At: t0.Add(time.Hour + 6*time.Second), Kind: "recording", Data: json.RawMessage(`{"url":"https://api.twilio.com/rec/RE1"}`)},
		{CallID: "CA-stolen", At: t0.Add(time.Hour + 7*time.Second), Kind: "recording", Data: json.RawMessage(`{"url":"javascript:alert(1)"}`)},
		{CallID: "CA-stolen", At: t0.Add(time.Hour + 8*time.Second), Kind: "status"},
	}
	for _, e := range evs {
		if err := st.AppendEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *server) login(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Post(s.url+"/api/login", "application/json",
		strings.NewReader(`{"name":"`+name+`","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == auth.CookieName && resp.StatusCode == 200 {
			return c.Value
		}
	}
	t.Fatalf("login %s = %d", name, resp.StatusCode)
	return ""
}

func (s *server) get(t *testing.T, path, token string, out any) int {
	t.Helper()
	req, err := http.NewRequest("GET", s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.AddCookie(&http.Cookie{Name: auth.CookieName, Value: token})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %q is not JSON: %v", path, body, err)
	}
	return resp.StatusCode
}

func TestCallsNeedSupervisor(t *testing.T) {
	s := start(t)
	agent := s.login(t, "alice")
	for _, path := range []string{"/api/calls", "/api/calls/CA-stolen", "/api/calls/CA-nobody"} {
		var body map[string]any
		if code := s.get(t, path, "", &body); code != 401 || body["error"] != "login required" {
			t.Errorf("GET %s without login = %d %v, want 401", path, code, body)
		}
		if code := s.get(t, path, agent, &body); code != 403 {
			t.Errorf("GET %s as an agent = %d %v, want 403", path, code, body)
		}
	}
}

func TestListCalls(t *testing.T) {
	s := start(t)
	tok := s.login(t, "sam")
	tests := []struct {
		name  string
		query string
		want  []string
		next  *int
	}{
		{"everything", "", []string{"CA-next-day", "CA-wallet", "CA-declined", "CA-stolen", "CA-balance"}, nil},
		{"one day by date", "from=2026-03-14&to=2026-03-14", []string{"CA-wallet", "CA-declined", "CA-stolen", "CA-balance"}, nil},
		{"RFC 3339 window", "from=2026-03-14T10:00:00Z&to=2026-03-14T12:00:00Z", []string{"CA-declined", "CA-stolen"}, nil},
		{"offset time", "from=2026-03-14T11:00:00%2B01:00&to=2026-03-14T10:00:01Z", []string{"CA-stolen"}, nil},
		{"number", "number=%2B15550001", []string{"CA-declined", "CA-balance"}, nil},
		{"outcome", "outcome=escalated", []string{"CA-stolen"}, nil},
		{"full text", "q=stolen+card", []string{"CA-stolen"}, nil},
		{"full text stems", "q=cards", []string{"CA-wallet", "CA-declined", "CA-stolen"}, nil},
		{"text and number", "q=card&number=%2B15558888", []string{"CA-wallet", "CA-declined"}, nil},
		{"empty values ignored", "from=&outcome=&q=", []string{"CA-next-day", "CA-wallet", "CA-declined", "CA-stolen", "CA-balance"}, nil},
		{"first page", "limit=2", []string{"CA-next-day", "CA-wallet"}, ptr(2)},
		{"second page", "limit=2&offset=2", []string{"CA-declined", "CA-stolen"}, ptr(4)},
		{"last page", "limit=2&offset=4", []string{"CA-balance"}, nil},
		{"nothing", "outcome=failed", []string{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got CallList
			if code := s.get(t, "/api/calls?"+tc.query, tok, &got); code != 200 {
				t.Fatalf("GET /api/calls?%s = %d", tc.query, code)
			}
			ids := []string{}
			for _, c := range got.Calls {
				ids = append(ids, c.ID)
			}
			if !reflect.DeepEqual(ids, tc.want) {
				t.Fatalf("calls = %q, want %q", ids, tc.want)
			}
			if !reflect.DeepEqual(got.NextOffset, tc.next) {
				t.Fatalf("next_offset = %v, want %v", deref(got.NextOffset), deref(tc.next))
			}
		})
	}
	var one CallList
	s.get(t, "/api/calls?outcome=escalated", tok, &one)
	c := one.Calls[0]
	if c.From != "+15550002" || c.Outcome != parley.OutcomeEscalated || c.DurationMS == nil || *c.DurationMS != 90000 ||
		c.EndedAt == nil || !c.StartedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("listed call = %+v", c)
	}
}

func ptr(n int) *int { return &n }

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestListCallsBadRequests(t *testing.T) {
	s := start(t)
	tok := s.login(t, "sam")
	tests := []struct{ query, mention string }{
		{"from=yesterday", "from"},
		{"to=2026-13-01", "to"},
		{"from=2026-03-16&to=2026-03-14", "after"},
		{"from=0001-01-01", "range"},
		{"limit=0", "limit"},
		{"limit=501", "limit"},
		{"limit=ten", "limit"},
		{"offset=-1", "offset"},
		{"outcome=happy", "outcome"},
		{"number=%2B1+555", "number"},
		{"q=" + strings.Repeat("x", 300), "q"},
		{"sort=asc", "unknown parameter"},
		{"outcome=resolved&outcome=failed", "2 times"},
		{"q=%zz", "URL encoding"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			var body map[string]string
			if code := s.get(t, "/api/calls?"+tc.query, tok, &body); code != 400 {
				t.Fatalf("GET /api/calls?%s = %d %v, want 400", tc.query, code, body)
			}
			if !strings.Contains(body["error"], tc.mention) {
				t.Fatalf("error %q does not mention %q", body["error"], tc.mention)
			}
		})
	}
}

func TestGetCall(t *testing.T) {
	s := start(t)
	tok := s.login(t, "sam")
	var d CallDetail
	if code := s.get(t, "/api/calls/CA-stolen", tok, &d); code != 200 {
		t.Fatalf("GET /api/calls/CA-stolen = %d", code)
	}
	if d.Call.ID != "CA-stolen" || d.Call.Outcome != parley.OutcomeEscalated || len(d.Turns) != 2 {
		t.Fatalf("detail = %+v", d)
	}
	caller := d.Turns[1]
	if caller.Text != "My card was stolen" || caller.Speaker != parley.SpeakerCaller || caller.LatencyMS == nil || *caller.LatencyMS != 750 ||
		caller.DurationMS == nil || *caller.DurationMS != 1000 || caller.Signals == nil || caller.Signals.Intent != "card" {
		t.Fatalf("caller turn = %+v", caller)
	}
	if d.Turns[0].LatencyMS != nil || d.Turns[0].EndOfSpeech != nil {
		t.Fatalf("AI turn has caller timings: %+v", d.Turns[0])
	}
	if len(d.Events) != 4 || d.Events[0].Kind != "decision" {
		t.Fatalf("events = %+v", d.Events)
	}
	var decision map[string]any
	if err := json.Unmarshal(d.Events[0].Data, &decision); err != nil || decision["action"] != "transfer" {
		t.Fatalf("decision data %s is not the stored object: %v", d.Events[0].Data, err)
	}
	if string(d.Events[3].Data) != "null" {
		t.Fatalf("event without data = %s, want null", d.Events[3].Data)
	}
	want := []Recording{{At: t0.Add(time.Hour + 6*time.Second), URL: "https://api.twilio.com/rec/RE1"}}
	if !reflect.DeepEqual(d.Recordings, want) {
		t.Fatalf("recordings = %+v, want %+v (no javascript: links)", d.Recordings, want)
	}

	// The decision's data is an object on the wire, not a string.
	var raw map[string]any
	s.get(t, "/api/calls/CA-stolen", tok, &raw)
	ev := raw["events"].([]any)[0].(map[string]any)
	if _, isObject := ev["data"].(map[string]any); !isObject {
		t.Fatalf("event data on the wire is %T, want an object", ev["data"])
	}
	// An unfinished call has null end and duration.
	s.get(t, "/api/calls/CA-declined", tok, &raw)
	call := raw["call"].(map[string]any)
	if call["ended_at"] != nil || call["duration_ms"] != nil {
		t.Fatalf("live call = %v, want null ended_at and duration_ms", call)
	}
}

func TestGetCallNotFound(t *testing.T) {
	s := start(t)
	tok := s.login(t, "sam")
	for _, id := range []string{"CA-nobody", url.PathEscape("CA stolen"), strings.Repeat("x", 129)} {
		var body map[string]string
		code := s.get(t, "/api/calls/"+id, tok, &body)
		if code != 404 && code != 400 || body["error"] == "" {
			t.Errorf("GET /api/calls/%.20s = %d %v, want 404 or 400 with a message", id, code, body)
		}
	}
	var body map[string]string
	if code := s.get(t, "/api/calls/CA-nobody", tok, &body); code != 404 || body["error"] != "call not found" {
		t.Fatalf("unknown call = %d %v, want 404 call not found", code, body)
	}
}

func TestParseCallQuery(t *testing.T) {
	tests := []struct {
		raw  string
		want parley.CallQuery
	}{
		{"", parley.CallQuery{Limit: DefaultLimit}},
		{"from=2026-03-14&to=2026-03-14", parley.CallQuery{From: t0.Add(-9 * time.Hour), To: t0.Add(15 * time.Hour), Limit: DefaultLimit}},
		{"from=2026-03-14T10:00:00%2B01:00", parley.CallQuery{From: t0, Limit: DefaultLimit}},
		{"number=%2B1555&outcome=dropped&q=lost+card&limit=500&offset=20",
			parley.CallQuery{Number: "+1555", Outcome: parley.OutcomeDropped, Text: "lost card", Limit: 500, Offset: 20}},
	}
	for _, tc := range tests {
		got, err := ParseCallQuery(tc.raw)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCallQuery(%q) = %+v, %v; want %+v", tc.raw, got, err, tc.want)
		}
	}
}

func FuzzParseCallQuery(f *testing.F) {
	for _, s := range []string{"", "from=2026-03-14&to=2026-03-15", "q=card&limit=5", "limit=-1", "outcome=x",
		"from=2026-03-14T10:00:00%2B01:00", "a=b&a=c", "%", "q=%ff", "to=9999-12-31"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := ParseCallQuery(raw)
		if err != nil {
			return
		}
		if q.Limit < 1 || q.Limit > MaxLimit || q.Offset < 0 || q.Offset > MaxOffset ||
			len(q.Text) > maxTextLen || len(q.Number) > maxNumberLen ||
			(!q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To)) {
			t.Fatalf("ParseCallQuery(%q) accepted %+v", raw, q)
		}
		if q.Outcome != "" {
			if _, err := ParseOutcome(string(q.Outcome)); err != nil {
				t.Fatalf("accepted outcome %q", q.Outcome)
			}
		}
	})
}

// BenchmarkParseCallQuery measures the per-request query parse.
func BenchmarkParseCallQuery(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCallQuery("from=2026-03-14&to=2026-03-15T00:00:00Z&number=%2B15550001&outcome=escalated&q=stolen+card&limit=50"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRecordingsForSupervisorsOnly(t *testing.T) {
	s := start(t)
	wav := append([]byte("RIFF"), make([]byte, 60)...)
	if err := os.WriteFile(filepath.Join(s.recDir, "CA-rec.wav"), wav, 0o600); err != nil {
		t.Fatal(err)
	}
	fetch := func(path, token string) (int, []byte) {
		req, _ := http.NewRequest("GET", s.url+path, nil)
		if token != "" {
			req.AddCookie(&http.Cookie{Name: auth.CookieName, Value: token})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, _ := fetch(RecordingURL("CA-rec"), ""); code != 401 {
		t.Fatalf("anonymous: %d", code)
	}
	if code, _ := fetch(RecordingURL("CA-rec"), s.login(t, "alice")); code != 403 {
		t.Fatalf("agent: %d", code)
	}
	sup := s.login(t, "sam")
	if code, b := fetch(RecordingURL("CA-rec"), sup); code != 200 || string(b[:4]) != "RIFF" {
		t.Fatalf("supervisor: %d %q", code, b)
	}
	if code, _ := fetch(RecordingURL("CA-none"), sup); code != 404 {
		t.Fatalf("missing recording: %d", code)
	}
	if code, _ := fetch("/api/calls/..%2f..%2fetc/recording.wav", sup); code != 400 && code != 404 {
		t.Fatalf("traversal: %d", code)
	}
}

func TestFeedbackMarksACallerTurn(t *testing.T) {
	s := start(t)
	// Log in as the supervisor, keeping the CSRF token.
	resp, err := http.Post(s.url+"/api/login", "application/json", strings.NewReader(`{"name":"sam","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var lr struct {
		CSRF string `json:"csrf"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&lr)
	resp.Body.Close()
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == auth.CookieName {
			cookie = c.Value
		}
	}
	post := func(path, body, csrf string) int {
		req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.AddCookie(&http.Cookie{Name: auth.CookieName, Value: cookie})
		if csrf != "" {
			req.Header.Set(auth.CSRFHeader, csrf)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if lr.CSRF == "" || cookie == "" {
		t.Fatal("login gave no session")
	}
	cases := []struct {
		path, body, csrf string
		want             int
	}{
		{"/api/calls/CA-declined/feedback", `{"seq":1,"intent":"card_declined"}`, "", 403},
		{"/api/calls/CA-declined/feedback", `{"seq":1,"intent":"Card Declined"}`, lr.CSRF, 400},
		{"/api/calls/CA-declined/feedback", `{"seq":0,"intent":"card_declined"}`, lr.CSRF, 400},
		{"/api/calls/CA-declined/feedback", `{"seq":1,"intnt":"x"}`, lr.CSRF, 400},
		{"/api/calls/CA-nobody/feedback", `{"seq":1}`, lr.CSRF, 404},
		{"/api/calls/CA-declined/feedback", `{"seq":1,"intent":"card_declined","note":"said cards"}`, lr.CSRF, 201},
	}
	for _, tc := range cases {
		if got := post(tc.path, tc.body, tc.csrf); got != tc.want {
			t.Fatalf("POST %s %s = %d, want %d", tc.path, tc.body, got, tc.want)
		}
	}
	evs, err := s.store.Events(context.Background(), "CA-declined")
	if err != nil {
		t.Fatal(err)
	}
	var fb string
	for _, e := range evs {
		if e.Kind == "feedback" {
			fb = string(e.Data)
		}
	}
	if !strings.Contains(fb, `"intent":"card_declined"`) || !strings.Contains(fb, "My cards keep getting declined") || !strings.Contains(fb, `"by":"sam"`) {
		t.Fatalf("feedback event %q", fb)
	}
}
