package openai

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley/dialog"
)

// fixturePath is the conformance file, relative to this package (the
// shared directory sits next to the repository root).
const fixturePath = "../../../shared/vectors/openai_stream_fixtures.json"

type chatFixture struct {
	Name   string `json:"name"`
	SSE    string `json:"sse"`
	Expect struct {
		Text         string    `json:"text"`
		FinishReason string    `json:"finish_reason"`
		Refusal      string    `json:"refusal"`
		ErrorHas     string    `json:"error_contains"`
		Logprobs     []float64 `json:"logprobs"`
		ToolCalls    []struct {
			ID        string `json:"id"`
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"tool_calls"`
	} `json:"expect"`
}

type httpErrorFixture struct {
	Name    string            `json:"name"`
	Status  int               `json:"http_status"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	Expect  struct {
		Retry bool `json:"retry"`
	} `json:"expect"`
}

type transcriptionFixture struct {
	Name        string `json:"name"`
	Model       string `json:"model"`
	Format      string `json:"response_format"`
	Body        string `json:"body"`
	ContentType string `json:"content_type"`
	Expect      struct {
		Text string `json:"text"`
	} `json:"expect"`
}

type fixtures struct {
	Chat           []chatFixture          `json:"chat_streams"`
	HTTPErrors     []httpErrorFixture     `json:"http_errors"`
	Transcriptions []transcriptionFixture `json:"transcriptions"`
	ClientSide     []struct {
		Case   string  `json:"case"`
		Model  string  `json:"model"`
		Error  *string `json:"error"`
		NHTTP  int     `json:"http_requests_sent"`
		Detail string  `json:"-"`
	} `json:"client_side_validation_go_openai"`
	Speech struct {
		PCM struct {
			Base64 string  `json:"base64"`
			First4 []int16 `json:"first4_samples"`
		} `json:"pcm_fixture"`
	} `json:"speech"`
}

var (
	fixOnce sync.Once
	fix     fixtures
	fixErr  error
)

func loadFixtures(tb testing.TB) *fixtures {
	tb.Helper()
	fixOnce.Do(func() {
		b, err := os.ReadFile(fixturePath)
		if err != nil {
			fixErr = err
			return
		}
		fixErr = json.Unmarshal(b, &fix)
	})
	if fixErr != nil {
		tb.Fatalf("fixtures: %v", fixErr)
	}
	return &fix
}

func (f *fixtures) chat(tb testing.TB, name string) chatFixture {
	for _, c := range f.Chat {
		if c.Name == name {
			return c
		}
	}
	tb.Fatalf("no chat fixture %q", name)
	return chatFixture{}
}

func (f *fixtures) httpError(tb testing.TB, name string) httpErrorFixture {
	for _, c := range f.HTTPErrors {
		if c.Name == name {
			return c
		}
	}
	tb.Fatalf("no http error fixture %q", name)
	return httpErrorFixture{}
}

func (f *fixtures) transcription(tb testing.TB, name string) transcriptionFixture {
	for _, c := range f.Transcriptions {
		if c.Name == name {
			return c
		}
	}
	tb.Fatalf("no transcription fixture %q", name)
	return transcriptionFixture{}
}

func (f *fixtures) pcm(tb testing.TB) []byte {
	b, err := base64.StdEncoding.DecodeString(f.Speech.PCM.Base64)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

var eventSep = regexp.MustCompile(`\r?\n\r?\n`)

// sseEvents splits a fixture stream into its events.
func sseEvents(raw string) []string {
	var out []string
	for _, e := range eventSep.Split(raw, -1) {
		if strings.TrimSpace(e) != "" {
			out = append(out, e)
		}
	}
	return out
}

// step is one scripted answer of the fake provider.
type step struct {
	status  int
	header  map[string]string
	body    string   // non-streamed body
	events  []string // SSE events, written and flushed one by one
	raw     string   // a body written verbatim (CRLF fixtures)
	chunks  [][]byte // a body written in these pieces, flushed each
	gateAt  int      // after this many events/chunks, wait for gate
	gate    chan struct{}
	hold    bool // after writing, keep the response open until the client leaves
	holdPre bool // keep the request waiting before any header until the client leaves
	cut     bool // after writing, cut the connection without finishing the body
}

// request is what the fake provider received.
type request struct {
	path   string
	header http.Header
	body   []byte
	form   map[string]string // multipart fields (file: its bytes length)
	file   []byte
}

// chatBody decodes a chat request body.
func (r request) chatBody(tb testing.TB) chatRequestBody {
	tb.Helper()
	var b chatRequestBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		tb.Fatalf("chat body: %v: %s", err, r.body)
	}
	return b
}

type chatRequestBody struct {
	Model               string          `json:"model"`
	Stream              bool            `json:"stream"`
	LogProbs            bool            `json:"logprobs"`
	MaxTokens           int             `json:"max_tokens"`
	MaxCompletionTokens int             `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	ToolChoice          any             `json:"tool_choice"`
	Tools               json.RawMessage `json:"tools"`
	Messages            []struct {
		Role       string `json:"role"`
		Content    string `json:"content"`
		ToolCallID string `json:"tool_call_id"`
		ToolCalls  []struct {
			ID       string `json:"id"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
}

// fakeProvider is an OpenAI-compatible server that replays scripted steps
// (the last one repeats) and records every request.
type fakeProvider struct {
	t   testing.TB
	srv *httptest.Server

	mu    sync.Mutex
	steps []step
	next  int
	reqs  []request

	left chan string // a request whose client went away before the response ended
}

func newFakeProvider(t testing.TB, steps ...step) *fakeProvider {
	t.Helper()
	p := &fakeProvider{t: t, steps: steps, left: make(chan string, 64)}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// baseURL is the API root with the version path.
func (p *fakeProvider) baseURL() string { return p.srv.URL + "/v1" }

func (p *fakeProvider) requests() []request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]request(nil), p.reqs...)
}

func (p *fakeProvider) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := request{path: r.URL.Path, header: r.Header.Clone(), body: body}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := r.ParseMultipartForm(10 << 20); err == nil {
			rec.form = map[string]string{}
			for k, v := range r.MultipartForm.Value {
				rec.form[k] = strings.Join(v, ",")
			}
			if fh := r.MultipartForm.File["file"]; len(fh) == 1 {
				f, _ := fh[0].Open()
				rec.file, _ = io.ReadAll(f)
				_ = f.Close()
				rec.form["file"] = fh[0].Filename
			}
		}
	}
	p.mu.Lock()
	p.reqs = append(p.reqs, rec)
	if len(p.steps) == 0 {
		p.mu.Unlock()
		http.Error(w, "no script", http.StatusInternalServerError)
		return
	}
	st := p.steps[min(p.next, len(p.steps)-1)]
	p.next++
	p.mu.Unlock()

	gone := func() {
		<-r.Context().Done()
		p.left <- r.URL.Path
	}
	if st.holdPre {
		gone()
		return
	}
	for k, v := range st.header {
		w.Header().Set(k, v)
	}
	status := st.status
	if status == 0 {
		status = http.StatusOK
	}
	fl, _ := w.(http.Flusher)
	switch {
	case st.events != nil || st.raw != "":
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "text/event-stream")
		}
		w.WriteHeader(status)
		fl.Flush()
		if st.raw != "" {
			_, _ = io.WriteString(w, st.raw)
			fl.Flush()
		}
		for i, e := range st.events {
			if st.gate != nil && i == st.gateAt {
				select {
				case <-st.gate:
				case <-r.Context().Done():
					p.left <- r.URL.Path
					return
				}
			}
			if _, err := io.WriteString(w, e+"\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	case st.chunks != nil:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(status)
		fl.Flush()
		for i, c := range st.chunks {
			if st.gate != nil && i == st.gateAt {
				select {
				case <-st.gate:
				case <-r.Context().Done():
					p.left <- r.URL.Path
					return
				}
			}
			if _, err := w.Write(c); err != nil {
				return
			}
			fl.Flush()
		}
	default:
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, st.body)
	}
	if st.hold {
		fl.Flush()
		gone()
		return
	}
	if st.cut {
		fl.Flush()
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
			}
		}
	}
}

// waitLeft waits until the server saw the client abandon a request.
func (p *fakeProvider) waitLeft(t testing.TB) string {
	t.Helper()
	select {
	case path := <-p.left:
		return path
	case <-time.After(10 * time.Second):
		t.Fatal("the provider never saw the client close the request")
		return ""
	}
}

// testClient gives each test its own transport, closed at cleanup, so
// goleak sees no idle connection goroutines.
func testClient(t testing.TB) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// chunk builds one chat.completion.chunk event.
func chunk(delta string, finish string) string {
	fr := "null"
	if finish != "" {
		fr = `"` + finish + `"`
	}
	return fmt.Sprintf(`data: {"id":"chatcmpl-t","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}]}`, delta, fr)
}

// textEvents streams text in the given pieces and ends with stop.
func textEvents(pieces ...string) []string {
	ev := []string{chunk(`{"role":"assistant","content":""}`, "")}
	for _, p := range pieces {
		b, _ := json.Marshal(p)
		ev = append(ev, chunk(`{"content":`+string(b)+`}`, ""))
	}
	return append(ev, chunk(`{}`, "stop"), "data: [DONE]")
}

// toolEvents streams one tool call whose arguments arrive in fragments.
func toolEvents(id, name string, fragments ...string) []string {
	ev := []string{chunk(fmt.Sprintf(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":%q,"type":"function","function":{"name":%q,"arguments":""}}]}`, id, name), "")}
	for _, f := range fragments {
		b, _ := json.Marshal(f)
		ev = append(ev, chunk(`{"tool_calls":[{"index":0,"function":{"arguments":`+string(b)+`}}]}`, ""))
	}
	return append(ev, chunk(`{}`, "tool_calls"), "data: [DONE]")
}

// sayRecorder collects what Respond hands to say.
type sayRecorder struct {
	mu        sync.Mutex
	sentences []string
	failAt    int // say returns ErrInterrupted on this sentence (1-based); 0 never
	onSay     func(n int, s string)
}

func (r *sayRecorder) say(s string) error {
	r.mu.Lock()
	r.sentences = append(r.sentences, s)
	n := len(r.sentences)
	r.mu.Unlock()
	if r.onSay != nil {
		r.onSay(n, s)
	}
	if r.failAt > 0 && n >= r.failAt {
		return dialog.ErrInterrupted
	}
	return nil
}

func (r *sayRecorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.sentences, " ")
}

// newTestResponder builds a Responder against p with instant retry waits
// (recorded in waits).
func newTestResponder(t testing.TB, p *fakeProvider, cfg LLMConfig, deps Deps) (*Responder, *[]time.Duration) {
	t.Helper()
	if cfg.BaseURL == "" {
		cfg.BaseURL = p.baseURL()
	}
	if cfg.Model == "" {
		cfg.Model = "gpt-4o-mini"
	}
	if cfg.FirstTokenDeadline == 0 {
		cfg.FirstTokenDeadline = 10 * time.Second
	}
	if deps.HTTPClient == nil {
		deps.HTTPClient = testClient(t)
	}
	r, err := NewResponder(cfg, deps)
	if err != nil {
		t.Fatalf("NewResponder: %v", err)
	}
	var mu sync.Mutex
	waits := &[]time.Duration{}
	r.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return r, waits
}

func speech(text string) dialog.Input {
	return dialog.Input{Kind: dialog.InputSpeech, Text: text, Confidence: 0.9}
}

// bufLog is a zerolog logger writing to a buffer, at debug level.
func bufLog() (zerolog.Logger, *syncBuffer) {
	b := &syncBuffer{}
	return zerolog.New(b).Level(zerolog.DebugLevel), b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
