package twilio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
)

func post(t *testing.T, target, body, contentType, sig string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true
	req.Header.Set("Content-Type", contentType)
	if sig != "" {
		req.Header.Set(SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

const formType = "application/x-www-form-urlencoded"

func noCalls(context.Context, *Leg) {}

// TestVoiceWebhookVectors posts the incoming-call examples of
// twilio_callbacks.json, with their own signatures, and checks the TwiML.
func TestVoiceWebhookVectors(t *testing.T) {
	f := loadCallbacks(t)
	_, base := startServer(t, Config{PublicURL: "https://parley.example.com", AuthToken: f.AuthToken}, noCalls)
	n := 0
	for _, ex := range f.IncomingCall {
		if !strings.HasSuffix(ex.URL, VoicePath) {
			continue
		}
		n++
		t.Run(ex.Name, func(t *testing.T) {
			code, body := post(t, base+VoicePath, ex.Body, formType, ex.Signature)
			if code != 200 {
				t.Fatalf("HTTP %d %q", code, body)
			}
			r, err := ParseTwiML(body)
			if err != nil {
				t.Fatal(err)
			}
			st := r.Stream()
			if st == nil || st.URL != "wss://parley.example.com/twilio/media" {
				t.Fatalf("stream %+v", st)
			}
			got := map[string]string{}
			for _, p := range st.Parameters {
				got[p.Name] = p.Value
			}
			for _, name := range []string{ParamFrom, ParamTo, ParamCallSID, ParamAccountSID, ParamDirection} {
				if got[name] != formValue(ex.Params, name) {
					t.Errorf("parameter %s = %q, want %q", name, got[name], formValue(ex.Params, name))
				}
			}
			// The same body with one field changed is refused.
			tampered := strings.Replace(ex.Body, "CallStatus=ringing", "CallStatus=completed", 1)
			if code, body := post(t, base+VoicePath, tampered, formType, ex.Signature); code != 403 || len(body) != 0 {
				t.Errorf("tampered body: %d %q", code, body)
			}
		})
	}
	if n != 2 {
		t.Fatalf("%d voice examples", n)
	}
}

// TestVoiceWebhookUnsignedDevMode checks the development mode without an
// auth token: one loud warning, unsigned requests accepted, ws:// to
// loopback allowed.
func TestVoiceWebhookUnsignedDevMode(t *testing.T) {
	var logBuf safeBuffer
	srv, err := NewServer(Config{PublicURL: "http://127.0.0.1:9"}, noCalls, zerolog.New(&logBuf))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if c := strings.Count(logBuf.String(), "NO AUTH TOKEN"); c != 1 {
		t.Errorf("warning logged %d times, want once", c)
	}
	if srv.StreamURL() != "ws://127.0.0.1:9/twilio/media" {
		t.Errorf("stream url %q", srv.StreamURL())
	}
	_, base := startServer(t, Config{PublicURL: "http://127.0.0.1:9"}, noCalls)
	code, body := post(t, base+VoicePath, "CallSid=CA1&From=%2B1&To=%2B2", formType, "")
	if code != 200 || !bytes.Contains(body, []byte(`url="ws://127.0.0.1:9/twilio/media"`)) {
		t.Errorf("unsigned dev webhook: %d %s", code, body)
	}
	if code, _ := post(t, base+VoicePath, "From=%2B1", formType, ""); code != 400 {
		t.Errorf("webhook without CallSid: %d, want 400", code)
	}
	if code, _ := post(t, base+VoicePath, "CallSid=%zz", formType, ""); code != 403 {
		t.Errorf("unreadable form: %d, want 403", code)
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestNewServerConfig(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://x.ngrok.app", true},
		{"https://x.ngrok.app/", true},
		{"https://x.ngrok.app:8443", true},
		{"http://localhost:8080", true},
		{"http://parley.example.com", false}, // ws:// to a public host
		{"https://x.ngrok.app/prefix", false},
		{"https://x.ngrok.app?a=1", false},
		{"ftp://x", false},
		{"", false},
		{"x.ngrok.app", false},
		{"https://%zz", false},
	}
	for _, tt := range tests {
		s, err := NewServer(Config{PublicURL: tt.url, AuthToken: "t"}, noCalls, zerolog.Nop())
		if (err == nil) != tt.ok {
			t.Errorf("NewServer(%q) err = %v, want ok=%v", tt.url, err, tt.ok)
		}
		if s != nil {
			s.Close()
		}
	}
	if _, err := NewServer(Config{PublicURL: testPublic}, nil, zerolog.Nop()); err == nil {
		t.Error("nil handler accepted")
	}
	if _, err := NewServer(Config{PublicURL: testPublic, AuthToken: "t", AccountSID: "AC1", APIBaseURL: "/relative"}, noCalls, zerolog.Nop()); err == nil {
		t.Error("relative API base accepted")
	}
}

// TestStatusCallbacks posts the status examples out of order and checks
// the per-call state: highest SequenceNumber wins, terminal states stick.
func TestStatusCallbacks(t *testing.T) {
	f := loadCallbacks(t)
	var mu sync.Mutex
	var seen []StatusEvent
	srv, base := startServer(t, Config{PublicURL: testPublic, AuthToken: f.AuthToken, OnStatus: func(e StatusEvent) {
		mu.Lock()
		seen = append(seen, e)
		mu.Unlock()
	}}, noCalls)
	byName := map[string]callbackExample{}
	for _, ex := range append(append([]callbackExample{}, f.CallStatus...), f.StreamStatus...) {
		byName[ex.Name] = ex
	}
	send := func(name string) {
		t.Helper()
		ex, ok := byName[name]
		if !ok {
			t.Fatalf("no example %s", name)
		}
		sig := Signature(f.AuthToken, testPublic+StatusPath, ex.Params)
		if code, body := post(t, base+StatusPath, ex.Body, formType, sig); code != 204 {
			t.Fatalf("%s: HTTP %d %q", name, code, body)
		}
	}
	callSID := "CAfedcba9876543210fedcba9876543210"
	steps := []struct {
		send string
		want string
	}{
		{"status-ringing", "ringing"},
		{"status-initiated", "ringing"}, // older sequence number
		{"status-answered", "in-progress"},
		{"status-completed", "completed"},
		{"status-no-answer", "completed"}, // terminal state sticks
		{"stream-started", "completed"},   // stream events do not touch it
	}
	for _, st := range steps {
		send(st.send)
		got, ok := srv.Status(callSID)
		if !ok || got.CallStatus != st.want {
			t.Fatalf("after %s: status %q, want %q", st.send, got.CallStatus, st.want)
		}
	}
	got, _ := srv.Status(callSID)
	if got.CallDuration != 74*time.Second || got.BilledMinutes != 2 || got.SipResponseCode != 200 || got.SequenceNumber != 3 ||
		!got.Timestamp.Equal(time.Date(2026, 3, 3, 17, 5, 30, 0, time.UTC)) || !got.Terminal() || got.Direction != "outbound-api" {
		t.Errorf("completed event parsed as %+v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(steps) {
		t.Fatalf("OnStatus called %d times, want %d", len(seen), len(steps))
	}
	last := seen[len(seen)-1]
	if last.StreamEvent != "stream-started" || last.StreamSID != "MZ0123456789abcdef0123456789abcdef" ||
		!last.Timestamp.Equal(time.Date(2026, 3, 3, 17, 4, 17, 123e6, time.UTC)) {
		t.Errorf("stream event parsed as %+v", last)
	}
	if _, ok := srv.Status("CAunknown"); ok {
		t.Error("status for an unknown call")
	}
}

func TestParseStatusEventLenient(t *testing.T) {
	e := ParseStatusEvent([][2]string{{"CallSid", "CA1"}, {"SequenceNumber", "x"}, {"CallDuration", "-5"}, {"Timestamp", "yesterday"}, {"NewField", "v"}})
	if e.SequenceNumber != -1 || e.CallDuration != 0 || !e.Timestamp.IsZero() || len(e.Params) != 5 || e.Terminal() {
		t.Errorf("%+v", e)
	}
}

func TestStatusPrune(t *testing.T) {
	s := &Server{cfg: Config{StatusRetention: time.Minute}, status: map[string]StatusEvent{}}
	t0 := time.Now()
	s.recordStatus(StatusEvent{CallSID: "CA1", CallStatus: "completed", SequenceNumber: 3, ReceivedAt: t0})
	s.recordStatus(StatusEvent{CallSID: "CA2", CallStatus: "ringing", SequenceNumber: 1, ReceivedAt: t0})
	s.recordStatus(StatusEvent{CallSID: "CA3", CallStatus: "ringing", SequenceNumber: 1, ReceivedAt: t0.Add(2 * time.Minute)})
	if _, ok := s.Status("CA1"); ok {
		t.Error("ended call kept past retention")
	}
	if _, ok := s.Status("CA2"); !ok {
		t.Error("unfinished call dropped")
	}
}

// TestJSONBodySignature checks the bodySHA256 path through the handlers.
func TestJSONBodySignature(t *testing.T) {
	_, base := startServer(t, Config{PublicURL: testPublic, AuthToken: testToken}, noCalls)
	body := `{"CallSid":"CA1"}`
	sum := sha256.Sum256([]byte(body))
	path := StatusPath + "?bodySHA256=" + hex.EncodeToString(sum[:])
	sig := Signature(testToken, testPublic+path, nil)
	// Valid signature and hash: passes the check, then lacks form fields.
	if code, _ := post(t, base+path, body, "application/json", sig); code != 400 {
		t.Errorf("signed JSON body: %d, want 400 (past the signature check)", code)
	}
	if code, _ := post(t, base+path, body+" ", "application/json", sig); code != 403 {
		t.Errorf("JSON body not matching bodySHA256: %d, want 403", code)
	}
	if code, _ := post(t, base+StatusPath, body, "application/json", Signature(testToken, testPublic+StatusPath, nil)); code != 403 {
		t.Errorf("JSON body without bodySHA256: %d, want 403", code)
	}
}

// TestGroupPrefix mounts the server under /api and places a full call: the
// signed URLs and the stream URL carry the prefix.
func TestGroupPrefix(t *testing.T) {
	results := make(chan error, 1)
	srv, err := NewServer(Config{PublicURL: testPublic, AuthToken: testToken}, func(ctx context.Context, leg *Leg) {
		results <- leg.Run(ctx, nopHandler{})
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	srv.Register(app.Group("/api"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = app.Listener(ln) }()
	defer func() { srv.Close(); _ = app.Shutdown(); <-served }()

	d := &Dialer{ServerURL: "http://" + ln.Addr().String() + "/api", PublicURL: testPublic + "/api", AuthToken: testToken, From: "+1", To: "+2"}
	call, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := call.TwiML.Stream().URL; got != "wss://parley.example.com/api/twilio/media" {
		t.Errorf("stream url %q", got)
	}
	if err := call.Hangup(); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(t, results, "Run"); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestSignatureIgnoresForwardedHeaders checks that the signed URL comes
// from configuration: proxy headers neither break a valid signature nor
// make an invalid one pass.
func TestSignatureIgnoresForwardedHeaders(t *testing.T) {
	_, base := startServer(t, Config{PublicURL: testPublic, AuthToken: testToken}, noCalls)
	params := [][2]string{{"CallSid", "CA1"}, {"From", "+1"}, {"To", "+2"}}
	for _, tt := range []struct {
		signedFor string
		want      int
	}{
		{testPublic + VoicePath, 200},
		{"https://evil.example.com" + VoicePath, 403},
	} {
		req, _ := http.NewRequest(http.MethodPost, base+VoicePath, strings.NewReader(EncodeForm(params)))
		req.Close = true
		req.Header.Set("Content-Type", formType)
		req.Header.Set("X-Forwarded-Host", "evil.example.com")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Host = "evil.example.com"
		req.Header.Set(SignatureHeader, Signature(testToken, tt.signedFor, params))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("signed for %s: HTTP %d, want %d", tt.signedFor, resp.StatusCode, tt.want)
		}
	}
}
