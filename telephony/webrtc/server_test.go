package webrtc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	mwebrtc "github.com/parley-ai/parley/media/webrtc"
)

func TestCallEndpointErrors(t *testing.T) {
	_, base, _ := startServer(t, Config{MaxBodyBytes: 2048}, false)
	tests := []struct {
		name        string
		contentType string
		body        string
		wantCode    int
		wantError   string
	}{
		{"not json", "text/plain", "v=0", http.StatusUnsupportedMediaType, "application/json"},
		{"broken json", "application/json", `{"sdp":`, http.StatusBadRequest, "not {"},
		{"unknown field", "application/json", `{"sdp":"v=0","x":1}`, http.StatusBadRequest, "unknown field"},
		{"trailing data", "application/json", `{"sdp":"v=0"} {}`, http.StatusBadRequest, "after the JSON"},
		{"an answer", "application/json", `{"type":"answer","sdp":"v=0"}`, http.StatusBadRequest, "only an offer"},
		{"no sdp", "application/json", `{"type":"offer"}`, http.StatusBadRequest, "missing sdp"},
		{"garbage sdp", "application/json", `{"sdp":"hello"}`, http.StatusBadRequest, "bad offer"},
		{"video only", "application/json", `{"sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"}`, http.StatusBadRequest, "no audio"},
		{"too large", "application/json", `{"sdp":"` + strings.Repeat("a", 3000) + `"}`, http.StatusRequestEntityTooLarge, "over 2048"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(base+CallPath, tc.contentType, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			var body struct {
				Error string `json:"error"`
			}
			raw, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body %q is not a JSON error: %v", raw, err)
			}
			if resp.StatusCode != tc.wantCode || !strings.Contains(body.Error, tc.wantError) {
				t.Fatalf("%d %q, want %d containing %q", resp.StatusCode, body.Error, tc.wantCode, tc.wantError)
			}
		})
	}
}

func TestMaxCalls(t *testing.T) {
	srv, base, calls := startServer(t, Config{MaxCalls: 1}, false)
	_, call, _ := dial(t, base, peerConfig(), calls)
	if n := srv.ActiveCalls(); n != 1 {
		t.Fatalf("ActiveCalls %d, want 1", n)
	}
	second, offer, err := mwebrtc.NewOffer(peerConfig(), DTMFLabel)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = second.Close() }()
	code, _, raw, err := postOffer(base, offer)
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(raw, "busy") {
		t.Fatalf("second call: %d %s %v, want 503 busy", code, raw, err)
	}
	_ = call.leg.Hangup(context.Background(), "done")
	if err := waitErr(t, call); err != nil {
		t.Fatal(err)
	}
}

func TestPage(t *testing.T) {
	_, base, _ := startServer(t, Config{}, false)
	tests := []struct {
		path, contentType string
		contains          []string
	}{
		{PagePath, "text/html", []string{`data-api="/api/webrtc/call"`, `href="/call/call.css"`, `src="/call/call.js"`, "Call us", `role="status"`, "Hang up"}},
		{PagePath + "/call.js", "text/javascript", []string{"RTCPeerConnection", "echoCancellation", "createDataChannel('dtmf')", "window.parleyCall"}},
		{PagePath + "/call.css", "text/css", []string{".keypad"}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get(base + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) {
				t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if resp.Header.Get("Content-Security-Policy") == "" {
				t.Error("no Content-Security-Policy")
			}
			for _, want := range tc.contains {
				if !strings.Contains(string(raw), want) {
					t.Errorf("body lacks %q", want)
				}
			}
			if strings.Contains(string(raw), "{{") {
				t.Error("unfilled template marker")
			}
		})
	}
}

func TestNewServer(t *testing.T) {
	h := func(context.Context, *Leg) {}
	tests := []struct {
		name string
		cfg  Config
		h    CallHandler
		ok   bool
	}{
		{"defaults", Config{}, h, true},
		{"nil handler", Config{}, nil, false},
		{"bad port range", Config{Peer: mwebrtc.Config{PortMin: 5}}, h, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewServer(tc.cfg, tc.h, zerolog.Nop())
			if (err == nil) != tc.ok {
				t.Fatalf("NewServer = %v, want ok %v", err, tc.ok)
			}
			if s != nil {
				s.Close()
			}
		})
	}
}

func TestParseDigits(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"5", "5", true},
		{"0123456789*#", "0123456789*#", true},
		{"abcd", "ABCD", true},
		{"", "", false},
		{"1e", "", false},
		{"12 3", "", false},
		{strings.Repeat("1", 33), "", false},
	}
	for _, tc := range tests {
		got, err := parseDigits([]byte(tc.in))
		if (err == nil) != tc.ok || string(got) != tc.want {
			t.Errorf("parseDigits(%q) = %q, %v; want %q ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, errMalformed) {
			t.Errorf("parseDigits(%q) error %v does not wrap errMalformed", tc.in, err)
		}
	}
}

func TestParseControl(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{`{"type":"hangup"}`, true},
		{`{"type":"hangup","reason":"bye"}`, true},
		{`{"type":"dance"}`, false},
		{`{}`, false},
		{`hangup`, false},
	}
	for _, tc := range tests {
		if _, err := parseControl([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("parseControl(%s) = %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}

func FuzzParseCallRequest(f *testing.F) {
	f.Add([]byte(`{"type":"offer","sdp":"v=0\r\n"}`))
	f.Add([]byte(`{"sdp":""}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		sdp, err := parseCallRequest(body)
		if err == nil && strings.TrimSpace(sdp) == "" {
			t.Fatal("accepted a request without sdp")
		}
		if err == nil {
			_ = mwebrtc.CheckOffer(sdp)
		}
	})
}

func FuzzDataChannelMessage(f *testing.F) {
	f.Add([]byte("1"))
	f.Add([]byte(`{"type":"hangup"}`))
	f.Add([]byte("\xff"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		if d, err := parseDigits(msg); err == nil {
			for _, c := range d {
				if !strings.ContainsRune("0123456789*#ABCD", rune(c)) {
					t.Fatalf("digit %q accepted", c)
				}
			}
		}
		if c, err := parseControl(msg); err == nil && c.Type != controlHangup {
			t.Fatalf("control %+v accepted", c)
		}
	})
}
