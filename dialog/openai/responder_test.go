package openai

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	"go.uber.org/goleak"

	parley "github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
	pii "github.com/parley-ai/parley/redact"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		webhookTransport.CloseIdleConnections()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	}))
}

// TestFixtureStreams replays every chat stream of the conformance file
// through Respond.
func TestFixtureStreams(t *testing.T) {
	f := loadFixtures(t)
	for _, fx := range f.Chat {
		t.Run(fx.Name, func(t *testing.T) {
			st := step{events: sseEvents(fx.SSE)}
			if strings.Contains(fx.SSE, "\r\n") {
				st = step{raw: fx.SSE}
			}
			p := newFakeProvider(t, st, step{events: textEvents("Done.")})
			var calls []string
			var mu sync.Mutex
			var tools []Tool
			for _, name := range []string{"lookup_order", "get_weather", "transfer_to_agent"} {
				tools = append(tools, Tool{Name: name, Description: "test", Call: func(_ context.Context, args json.RawMessage) (string, error) {
					mu.Lock()
					calls = append(calls, name+" "+string(args))
					mu.Unlock()
					return "ok", nil
				}})
			}
			r, _ := newTestResponder(t, p, LLMConfig{Retries: -1}, Deps{Tools: tools})
			conv := r.NewConversation(dialog.CallContext{CallID: "CA1"})
			rec := &sayRecorder{}
			res, err := conv.Respond(context.Background(), speech("hello"), rec.say)

			if fx.Expect.ErrorHas != "" {
				if err == nil || !strings.Contains(err.Error(), fx.Expect.ErrorHas) {
					t.Fatalf("error = %v, want one containing %q", err, fx.Expect.ErrorHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("Respond: %v", err)
			}
			want := fx.Expect.Text
			if fx.Expect.Refusal != "" {
				want = fx.Expect.Refusal
			}
			if len(fx.Expect.ToolCalls) > 0 {
				want = strings.TrimSpace(want + " Done.")
				if len(calls) != len(fx.Expect.ToolCalls) {
					t.Fatalf("tool calls = %q, want %d", calls, len(fx.Expect.ToolCalls))
				}
				for i, tc := range fx.Expect.ToolCalls {
					if calls[i] != tc.Name+" "+tc.Arguments {
						t.Errorf("call %d = %q, want %q", i, calls[i], tc.Name+" "+tc.Arguments)
					}
				}
				second := p.requests()[1].chatBody(t)
				var toolMsgs int
				for _, m := range second.Messages {
					if m.Role == "tool" {
						toolMsgs++
						if m.ToolCallID != fx.Expect.ToolCalls[toolMsgs-1].ID || m.Content != "ok" {
							t.Errorf("tool message %d = %+v", toolMsgs, m)
						}
					}
				}
				if toolMsgs != len(fx.Expect.ToolCalls) {
					t.Errorf("second request has %d tool messages, want %d", toolMsgs, len(fx.Expect.ToolCalls))
				}
			}
			if got := rec.text(); got != want {
				t.Errorf("spoken = %q, want %q", got, want)
			}
			if fx.Expect.Refusal != "" || fx.Expect.FinishReason == "content_filter" {
				if res.Confidence > refusalConfidence {
					t.Errorf("confidence %v after a refusal, want <= %v", res.Confidence, refusalConfidence)
				}
			}
			if len(fx.Expect.Logprobs) > 0 {
				var sum float64
				for _, lp := range fx.Expect.Logprobs {
					sum += math.Exp(lp)
				}
				if want := sum / float64(len(fx.Expect.Logprobs)); math.Abs(res.Confidence-want) > 1e-9 {
					t.Errorf("confidence = %v, want mean token probability %v", res.Confidence, want)
				}
			}
		})
	}
}

// TestFirstSentenceBeforeStreamEnds holds the stream after the first
// sentence until say has received it.
func TestFirstSentenceBeforeStreamEnds(t *testing.T) {
	gate := make(chan struct{})
	ev := textEvents("Sure", "! Your order", " #4821 shipped on Dr. Smith's", " 3.5 kg truck", ". Anything else", "?")
	// Events: role, 6 pieces, stop, DONE. "Sure!" is complete once " Your order" arrived (event 2).
	p := newFakeProvider(t, step{events: ev, gate: gate, gateAt: 3})
	r, _ := newTestResponder(t, p, LLMConfig{}, Deps{})
	var released atomic.Bool
	rec := &sayRecorder{onSay: func(n int, _ string) {
		if n == 1 {
			released.Store(true)
			close(gate)
		}
	}}
	res, err := r.NewConversation(dialog.CallContext{}).Respond(context.Background(), speech("where is my order"), rec.say)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Sure!", "Your order #4821 shipped on Dr. Smith's 3.5 kg truck.", "Anything else?"}
	if strings.Join(rec.sentences, "|") != strings.Join(want, "|") {
		t.Errorf("sentences = %q, want %q", rec.sentences, want)
	}
	if !released.Load() {
		t.Error("the first sentence did not reach say before the stream ended")
	}
	if res.Confidence != NoSignalConfidence {
		t.Errorf("confidence without logprobs or knowledge = %v, want %v", res.Confidence, NoSignalConfidence)
	}
}

// TestToolCallSplitOverDeltas checks that a call whose arguments arrive
// in fragments runs once with the whole arguments.
func TestToolCallSplitOverDeltas(t *testing.T) {
	f := loadFixtures(t)
	fx := f.chat(t, "tool-call-single")
	p := newFakeProvider(t, step{events: sseEvents(fx.SSE)}, step{events: textEvents("Order 4821 is on its way.")})
	var n atomic.Int32
	var got json.RawMessage
	tool := Tool{Name: "lookup_order", Description: "Find an order.",
		Parameters: json.RawMessage(`{"type":"object","properties":{"order_id":{"type":"string"},"reason":{"type":"string"}},"required":["order_id"]}`),
		Call: func(_ context.Context, args json.RawMessage) (string, error) {
			n.Add(1)
			got = args
			return `{"status":"shipped"}`, nil
		}}
	r, _ := newTestResponder(t, p, LLMConfig{}, Deps{Tools: []Tool{tool}})
	rec := &sayRecorder{}
	if _, err := r.NewConversation(dialog.CallContext{}).Respond(context.Background(), speech("order 4821"), rec.say); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1 || string(got) != fx.Expect.ToolCalls[0].Arguments {
		t.Fatalf("tool ran %d times with %s, want once with %s", n.Load(), got, fx.Expect.ToolCalls[0].Arguments)
	}
	second := p.requests()[1].chatBody(t)
	var sawCall, sawResult bool
	for _, m := range second.Messages {
		if m.Role == "assistant" && len(m.ToolCalls) == 1 && m.ToolCalls[0].ID == fx.Expect.ToolCalls[0].ID &&
			m.ToolCalls[0].Function.Arguments == fx.Expect.ToolCalls[0].Arguments {
			sawCall = true
		}
		if m.Role == "tool" && m.ToolCallID == fx.Expect.ToolCalls[0].ID && m.Content == `{"status":"shipped"}` {
			sawResult = true
		}
	}
	if !sawCall || !sawResult {
		t.Errorf("second request lacks the assistant tool call (%v) or its result (%v): %s", sawCall, sawResult, p.requests()[1].body)
	}
	if rec.text() != "Order 4821 is on its way." {
		t.Errorf("spoken = %q", rec.text())
	}
}

func TestControlTools(t *testing.T) {
	tests := []struct {
		name      string
		steps     []step
		check     func(t *testing.T, res dialog.Result)
		spoken    string
		toolNone  bool // the follow-up round must forbid tools
		nRequests int
	}{
		{
			name: "transfer without words asks the model for its line",
			steps: []step{
				{events: toolEvents("call_T1", ToolTransfer, `{"reason":"caller_`, `asked","summary":"Caller wants a refund `, `for order 4821."}`)},
				{events: textEvents("I'm connecting you with a colleague now.")},
			},
			check: func(t *testing.T, res dialog.Result) {
				if !res.Transfer || !res.WantsHuman || res.Summary != "Caller wants a refund for order 4821." {
					t.Errorf("result = %+v", res)
				}
				if res.Confidence > escalationConfidence {
					t.Errorf("confidence %v with a transfer, want <= %v", res.Confidence, escalationConfidence)
				}
			},
			spoken: "I'm connecting you with a colleague now.", toolNone: true, nRequests: 2,
		},
		{
			name: "text then transfer ends the turn",
			steps: []step{
				{events: append(textEvents("Let me get a colleague.")[:2], toolEvents("call_T2", ToolTransfer, `{"reason":"cannot_help","summary":"Asks about a mortgage."}`)...)},
			},
			check: func(t *testing.T, res dialog.Result) {
				if !res.Transfer || res.WantsHuman || !res.OutOfScope || res.Summary != "Asks about a mortgage." {
					t.Errorf("result = %+v", res)
				}
			},
			spoken: "Let me get a colleague.", nRequests: 1,
		},
		{
			name: "collect digits",
			steps: []step{
				{events: toolEvents("call_D", ToolCollectDigits, `{"purpose":"order number",`, `"length":4}`)},
				{events: textEvents("Please say or type your four digit order number.")},
			},
			check: func(t *testing.T, res dialog.Result) {
				if res.Expect != dialog.ModeDigits || res.Slots["digits_length"] != "4" || res.Slots["digits_purpose"] != "order number" {
					t.Errorf("result = %+v", res)
				}
			},
			spoken: "Please say or type your four digit order number.", toolNone: true, nRequests: 2,
		},
		{
			name: "end call",
			steps: []step{
				{events: toolEvents("call_E", ToolEndCall, `{}`)},
				{events: textEvents("Goodbye!")},
			},
			check: func(t *testing.T, res dialog.Result) {
				if !res.EndCall {
					t.Errorf("result = %+v", res)
				}
			},
			spoken: "Goodbye!", toolNone: true, nRequests: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProvider(t, tt.steps...)
			r, _ := newTestResponder(t, p, LLMConfig{}, Deps{})
			rec := &sayRecorder{}
			res, err := r.NewConversation(dialog.CallContext{CallID: "CA2"}).Respond(context.Background(), speech("help"), rec.say)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, res)
			if rec.text() != tt.spoken {
				t.Errorf("spoken = %q, want %q", rec.text(), tt.spoken)
			}
			reqs := p.requests()
			if len(reqs) != tt.nRequests {
				t.Fatalf("%d requests, want %d", len(reqs), tt.nRequests)
			}
			if tt.toolNone && reqs[1].chatBody(t).ToolChoice != "none" {
				t.Errorf("follow-up tool_choice = %v, want none", reqs[1].chatBody(t).ToolChoice)
			}
		})
	}
}

// TestMalformedToolCall checks that bad calls are answered with an error
// message to the model, and the turn goes on.
func TestMalformedToolCall(t *testing.T) {
	tests := []struct {
		name, tool, args, wantErr string
	}{
		{"invalid JSON", ToolTransfer, `{"reason":"caller_asked","summ`, "not valid JSON"},
		{"missing required", ToolTransfer, `{"reason":"caller_asked"}`, `missing required property "summary"`},
		{"enum", ToolTransfer, `{"reason":"bored","summary":"x"}`, "must be one of"},
		{"wrong type", ToolCollectDigits, `{"purpose":"pin","length":"four"}`, "arguments.length: must be a integer"},
		{"out of range", ToolCollectDigits, `{"purpose":"pin","length":99}`, "at most 32"},
		{"unknown property", ToolEndCall, `{"now":true}`, `unknown property "now"`},
		{"not an object", ToolEndCall, `[1]`, "must be a JSON object"},
		{"unknown tool", "delete_account", `{}`, `no tool named "delete_account"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProvider(t, step{events: toolEvents("call_X", tt.tool, tt.args)}, step{events: textEvents("Sorry, let me try again.")})
			r, _ := newTestResponder(t, p, LLMConfig{}, Deps{})
			rec := &sayRecorder{}
			res, err := r.NewConversation(dialog.CallContext{}).Respond(context.Background(), speech("hi"), rec.say)
			if err != nil {
				t.Fatal(err)
			}
			if res.Transfer || res.EndCall || res.Expect != dialog.ModeOpen {
				t.Errorf("a malformed call changed the result: %+v", res)
			}
			reqs := p.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			var content string
			for _, m := range reqs[1].chatBody(t).Messages {
				if m.Role == "tool" && m.ToolCallID == "call_X" {
					content = m.Content
				}
			}
			if !strings.HasPrefix(content, "error: ") || !strings.Contains(content, tt.wantErr) {
				t.Errorf("tool message = %q, want an error containing %q", content, tt.wantErr)
			}
			if rec.text() != "Sorry, let me try again." {
				t.Errorf("spoken = %q", rec.text())
			}
		})
	}
}

// TestToolRoundsBounded: a model that keeps calling tools is cut off.
func TestToolRoundsBounded(t *testing.T) {
	p := newFakeProvider(t, step{events: toolEvents("call_L", "ping", `{}`)})
	var n atomic.Int32
	ping := Tool{Name: "ping", Call: func(context.Context, json.RawMessage) (string, error) { n.Add(1); return "pong", nil }}
	r, _ := newTestResponder(t, p, LLMConfig{MaxToolRounds: 3}, Deps{Tools: []Tool{ping}})
	if _, err := r.NewConversation(dialog.CallContext{}).Respond(context.Background(), speech("hi"), (&sayRecorder{}).say); err != nil {
		t.Fatal(err)
	}
	reqs := p.requests()
	if len(reqs) != 3 || n.Load() != 3 {
		t.Fatalf("%d requests and %d tool runs, want 3 and 3", len(reqs), n.Load())
	}
	if reqs[2].chatBody(t).ToolChoice != "none" {
		t.Error("the last round still allows tools")
	}
}

// TestBargeInClosesRequest: when say fails the HTTP request is closed,
// and the history keeps only what was said.
func TestBargeInClosesRequest(t *testing.T) {
	ev := textEvents("Your balance questions are best ", "answered by billing. ", "They are open until five. ")
	p := newFakeProvider(t, step{events: ev[:len(ev)-2], hold: true}, step{events: textEvents("Okay.")})
	r, _ := newTestResponder(t, p, LLMConfig{}, Deps{})
	conv := r.NewConversation(dialog.CallContext{})
	rec := &sayRecorder{failAt: 1}
	_, err := conv.Respond(context.Background(), speech("my balance"), rec.say)
	if !errors.Is(err, dialog.ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	if path := p.waitLeft(t); path != "/v1/chat/completions" {
		t.Errorf("closed request path = %q", path)
	}
	if !r.Healthy() {
		t.Error("a barge-in counted against the provider")
	}
	// The interrupted sentence was said but not fully heard.
	conv.Heard("Your balance questions")
	if _, err := conv.Respond(context.Background(), speech("wait"), (&sayRecorder{}).say); err != nil {
		t.Fatal(err)
	}
	msgs := p.requests()[1].chatBody(t).Messages
	var assistant []string
	for _, m := range msgs {
		if m.Role == "assistant" {
			assistant = append(assistant, m.Content)
		}
	}
	if len(assistant) != 1 || assistant[0] != "Your balance questions" {
		t.Errorf("assistant history = %q, want only the heard part", assistant)
	}
}

func TestHeard(t *testing.T) {
	tests := []struct {
		name  string
		heard string
		want  []string // assistant contents after the greeting
	}{
		{"everything", "Sure! Your order #4821 shipped yesterday.", []string{"Sure! Your order #4821 shipped yesterday."}},
		{"partial", "Sure! Your order", []string{"Sure! Your order"}},
		{"nothing", "", nil},
	}
	f := loadFixtures(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProvider(t, step{events: sseEvents(f.chat(t, "plain-text").SSE)}, step{events: textEvents("Okay.")})
			r, _ := newTestResponder(t, p, LLMConfig{Greeting: "Hi there. How can I help?"}, Deps{})
			conv := r.NewConversation(dialog.CallContext{})
			greet := &sayRecorder{}
			if err := conv.Greeting(context.Background(), greet.say); err != nil {
				t.Fatal(err)
			}
			if strings.Join(greet.sentences, "|") != "Hi there.|How can I help?" {
				t.Errorf("greeting sentences = %q", greet.sentences)
			}
			if _, err := conv.Respond(context.Background(), speech("order"), (&sayRecorder{}).say); err != nil {
				t.Fatal(err)
			}
			conv.Heard(tt.heard)
			if _, err := conv.Respond(context.Background(), speech("what"), (&sayRecorder{}).say); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range p.requests()[1].chatBody(t).Messages {
				if m.Role == "assistant" {
					got = append(got, m.Content)
				}
			}
			want := append([]string{"Hi there. How can I help?"}, tt.want...)
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("assistant history = %q, want %q", got, want)
			}
		})
	}
}

func TestFirstTokenDeadline(t *testing.T) {
	tests := []struct {
		name string
		st   step
	}{
		{"no headers", step{holdPre: true}},
		{"role chunk only", step{events: []string{chunk(`{"role":"assistant","content":""}`, "")}, hold: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProvider(t, tt.st)
			r, _ := newTestResponder(t, p, LLMConfig{FirstTokenDeadline: 150 * time.Millisecond}, Deps{})
			_, err := r.NewConversation(dialog.CallContext{}).Respond(context.Background(), speech("hi"), (&sayRecorder{}).say)
			if !errors.Is(err, ErrDeadline) {
				t.Fatalf("err = %v, want ErrDeadline", err)
			}
			p.waitLeft(t)
			if n := len(p.requests()); n != 1 {
				t.Errorf("%d requests, want 1 (no retry past the deadline)", n)
			}
		})
	}
}

func TestStalledStream(t *testing.T) {
	p := newFakeProvider(t, step{events: textEvents("Hello there.", " More")[:3], hold: true})
	r, _ := newTestResponder(t, p, LLMConfig{Timeout: 100 * time.Millisecond}, Deps{})
	rec := &sayRecorder{}
	_, err := r.NewConversation(dialog.CallContext{}).Respond(context.Background(), speech("hi"), rec.say)
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("err = %v, want ErrStalled", err)
	}
	if rec.text() != "Hello there." {
		t.Errorf("spoken = %q", rec.text())
	}
	p.waitLeft(t)
}

func TestRetries(t *testing.T) {
	f := loadFixtures(t)
	rate := f.httpError(t, "429-rate-limit")
	ok := step{events: textEvents("Hello.")}
	tests := []struct {
		name      string
		first     step
		wantWaits []time.Duration // nil: any single wait within MaxRetryWait
		requests  int
		wantErr   bool
	}{
		{"429 Retry-After seconds", step{status: 429, header: rate.Headers, body: rate.Body}, []time.Duration{time.Second}, 2, false},
		{"429 retry-after-ms", step{status: 429, header: map[string]string{"retry-after-ms": "250", "Retry-After": "1"}, body: rate.Body}, []time.Duration{250 * time.Millisecond}, 2, false},
		{"500 backoff", step{status: 500, body: f.httpError(t, "500-server-error").Body}, nil, 2, false},
		{"502 html", step{status: 502, header: map[string]string{"Content-Type": "text/html"}, body: f.httpError(t, "502-html-from-proxy").Body}, nil, 2, false},
		{"stream cut", step{events: textEvents("Hel")[:2], cut: true}, nil, 2, false},
		{"Retry-After beyond MaxRetryWait", step{status: 429, header: map[string]string{"Retry-After": "30"}, body: rate.Body}, []time.Duration{}, 1, true},
		{"insufficient quota", step{status: 429, header: map[string]string{"Retry-After": "1"}, body: f.httpError(t, "429-insufficient-quota").Body}, []time.Duration{}, 1, true},
		{"401", step{status: 401, body: f.httpError(t, "401-invalid-api-key").Body}, []time.Duration{}, 1, true},
		{"400", step{status: 400, body: f.httpError(t, "400-param-error").Body}, []time.Duration{}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProvider(t, tt.first, ok)
			r, waits := newTestResponder(t, p, LLMConfig{}, Deps{})
			rec := &sayRecorder{}
			_, err := r.NewConversation(dialog.CallContext{}).Respond(context.Background(), speech("hi"), rec.say)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if n := len(p.requests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			switch {
			case tt.wantWaits != nil:
				if len(*waits) != len(tt.wantWaits) {
					t.Fatalf("waits = %v, want %v", *waits, tt.wantWaits)
				}
				for i := range tt.wantWaits {
					if (*waits)[i] != tt.wantWaits[i] {
						t.Errorf("waits = %v, want %v", *waits, tt.wantWaits)
					}
				}
			default:
				if len(*waits) != 1 || (*waits)[0] <= 0 || (*waits)[0] > DefaultMaxRetryWait {
					t.Errorf("waits = %v, want one backoff within %v", *waits, DefaultMaxRetryWait)
				}
			}
			if !tt.wantErr && rec.text() != "Hello." {
				t.Errorf("spoken = %q", rec.text())
			}
			if tt.name == "insufficient quota" {
				var apiErr *goopenai.APIError
				if !errors.As(err, &apiErr) || apiErr.Code != "insufficient_quota" {
					t.Errorf("err = %v, want the provider's insufficient_quota APIError", err)
				}
			}
		})
	}
}

// TestNoRetryAfterSpeaking: a stream that fails after a sentence was
// spoken is not retried (the caller would hear it twice).
func TestNoRetryAfterSpeaking(t *testing.T) {
	p := newFakeProvider(t, step{events: textEvents("First part. Sec")[:2], cut: true}, step{events: textEvents("Again.")})
	r, _ := newTestResponder(t, p, LLMConfig{}, Deps{})
	rec := &sayRecorder{}
	_, err := r.NewConversation(dialog.CallContext{}).Respond(context.Background(), speech("hi"), rec.say)
	if err == nil {
		t.Fatal("want an error")
	}
	if len(p.requests()) != 1 || rec.text() != "First part." {
		t.Errorf("%d requests, spoken %q; want 1 and only the first part", len(p.requests()), rec.text())
	}
}

type stubResponder struct{ n atomic.Int32 }

type stubConversation struct{}

func (s *stubResponder) NewConversation(dialog.CallContext) dialog.Conversation {
	s.n.Add(1)
	return stubConversation{}
}
func (stubConversation) Greeting(context.Context, func(string) error) error { return nil }
func (stubConversation) Respond(context.Context, dialog.Input, func(string) error) (dialog.Result, error) {
	return dialog.Result{}, nil
}
func (stubConversation) Heard(string) {}

func TestBreakerOpensAndFallbackSwitches(t *testing.T) {
	f := loadFixtures(t)
	p := newFakeProvider(t, step{status: 500, body: f.httpError(t, "500-server-error").Body})
	r, _ := newTestResponder(t, p, LLMConfig{Retries: -1, BreakerFailures: 2, BreakerCoolDown: time.Hour}, Deps{})
	secondary := &stubResponder{}
	fb := Fallback(r, secondary, r.Healthy)

	conv := fb.NewConversation(dialog.CallContext{CallID: "CA-1"})
	if secondary.n.Load() != 0 {
		t.Fatal("a healthy primary was skipped")
	}
	for i := range 2 {
		if _, err := conv.Respond(context.Background(), speech("hi"), (&sayRecorder{}).say); err == nil {
			t.Fatalf("turn %d: want an error", i)
		}
	}
	if r.Healthy() {
		t.Fatal("breaker still closed after 2 failures")
	}
	_, err := conv.Respond(context.Background(), speech("hi"), (&sayRecorder{}).say)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if n := len(p.requests()); n != 2 {
		t.Errorf("%d requests, want 2 (none while open)", n)
	}
	fb.NewConversation(dialog.CallContext{CallID: "CA-2"})
	if secondary.n.Load() != 1 {
		t.Error("a new call did not start on the secondary")
	}
}

func TestBreaker(t *testing.T) {
	now := time.Unix(0, 0)
	b := NewBreaker(2, time.Minute)
	b.now = func() time.Time { return now }
	steps := []struct {
		do          string // "ok", "fail", "release", "wait"
		wantAllow   bool
		wantHealthy bool
	}{
		{"fail", true, true},
		{"fail", false, false}, // opened
		{"wait", true, true},   // cool-down over: one trial
		{"fail", false, false}, // failed trial reopens at once
		{"wait", true, true},
		{"ok", true, true}, // trial succeeded: closed
		{"fail", true, true},
		{"ok", true, true}, // success resets the count
		{"fail", true, true},
	}
	for i, s := range steps {
		switch s.do {
		case "ok":
			b.Success()
		case "fail":
			b.Failure()
		case "wait":
			now = now.Add(time.Minute)
		}
		if got := b.Healthy(); got != s.wantHealthy {
			t.Fatalf("step %d (%s): Healthy = %v, want %v", i, s.do, got, s.wantHealthy)
		}
		if got := b.Allow(); got != s.wantAllow {
			t.Fatalf("step %d (%s): Allow = %v, want %v", i, s.do, got, s.wantAllow)
		}
		if s.wantAllow && b.trial && s.do == "wait" && b.Allow() {
			t.Fatalf("step %d: a second request was allowed during the trial", i)
		}
	}
}

// TestAPIKeyNeverLeaks: a provider that echoes the key in its error
// message, the key in the base URL, and debug logging.
func TestAPIKeyNeverLeaks(t *testing.T) {
	const key = "sk-test-SECRET-0123456789abcdef"
	echo := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"message":"Incorrect API key provided: ` + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") + `","type":"invalid_request_error","code":"invalid_api_key"}}`))
	}
	p := newFakeProvider(t)
	p.srv.Config.Handler = http.HandlerFunc(echo)
	log, buf := bufLog()

	r, err := NewResponder(LLMConfig{BaseURL: p.baseURL(), Model: "gpt-4o-mini", APIKey: key, FirstTokenDeadline: 5 * time.Second},
		Deps{Log: log, HTTPClient: testClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, rerr := r.NewConversation(dialog.CallContext{CallID: "CA"}).Respond(context.Background(), speech("hi"), (&sayRecorder{}).say)
	stt, err := NewTranscriber(STTConfig{BaseURL: p.baseURL(), Model: "whisper-1", APIKey: key, Log: log, HTTPClient: testClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := stt.Start(context.Background(), dialog.ModeOpen)
	_ = s.Write(make([]int16, 8000))
	_, serr := s.Finish()
	tts, err := NewSynthesizer(TTSConfig{BaseURL: p.baseURL(), Model: "tts-1", APIKey: key, Log: log, HTTPClient: testClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	terr := tts.Synthesize(context.Background(), "Hello.", func([]int16) error { return nil })
	_, cerr := NewResponder(LLMConfig{BaseURL: "ftp://x/" + key, Model: "m", APIKey: key}, Deps{})

	for name, e := range map[string]error{"llm": rerr, "stt": serr, "tts": terr, "config": cerr} {
		if e == nil {
			t.Errorf("%s: want an error", name)
			continue
		}
		if strings.Contains(e.Error(), key) {
			t.Errorf("%s error contains the key: %v", name, e)
		}
	}
	if !strings.Contains(rerr.Error(), "[redacted]") {
		t.Errorf("llm error %q should show where the key was removed", rerr)
	}
	if strings.Contains(buf.String(), key) {
		t.Errorf("log contains the key: %s", buf.String())
	}
	if buf.String() == "" {
		t.Error("nothing was logged; the test would not catch a leak")
	}
	for _, s := range []string{LLMConfig{APIKey: key, BaseURL: "http://h/?k=" + key}.String(), STTConfig{APIKey: key}.String(), TTSConfig{APIKey: key}.String()} {
		if strings.Contains(s, key) {
			t.Errorf("String() leaks the key: %s", s)
		}
	}
}

// TestModelCapabilities follows go-openai's client-side refusals recorded
// in the fixture file: reasoning model names get no logprobs, and their
// request still reaches the server.
func TestModelCapabilities(t *testing.T) {
	f := loadFixtures(t)
	seen := map[string]bool{}
	temp := float32(0.3)
	for _, c := range f.ClientSide {
		if !strings.HasPrefix(c.Case, "logprobs on") || seen[c.Model] || c.Model == "gpt-6-sol" {
			continue
		}
		seen[c.Model] = true
		t.Run(c.Model, func(t *testing.T) {
			p := newFakeProvider(t, step{events: textEvents("Hi.")})
			r, _ := newTestResponder(t, p, LLMConfig{Model: c.Model, MaxTokens: 200, Temperature: &temp}, Deps{})
			wantLogprobs := c.Error == nil
			if r.LogprobsEnabled() != wantLogprobs {
				t.Errorf("LogprobsEnabled = %v, want %v", r.LogprobsEnabled(), wantLogprobs)
			}
			if _, err := r.NewConversation(dialog.CallContext{}).Respond(context.Background(), speech("hi"), (&sayRecorder{}).say); err != nil {
				t.Fatalf("Respond: %v", err)
			}
			body := p.requests()[0].chatBody(t)
			if body.LogProbs != wantLogprobs || !body.Stream {
				t.Errorf("request logprobs=%v stream=%v, want %v true", body.LogProbs, body.Stream, wantLogprobs)
			}
			if wantLogprobs && (body.MaxTokens != 200 || body.Temperature == nil) {
				t.Errorf("max_tokens=%d temperature=%v, want 200 and set", body.MaxTokens, body.Temperature)
			}
			if !wantLogprobs && (body.MaxCompletionTokens != 200 || body.MaxTokens != 0 || body.Temperature != nil) {
				t.Errorf("reasoning model got max_tokens=%d max_completion_tokens=%d temperature=%v", body.MaxTokens, body.MaxCompletionTokens, body.Temperature)
			}
		})
	}
	if len(seen) < 5 {
		t.Fatalf("only %d models from the fixture", len(seen))
	}
}

type fakeKB struct{ passages []Passage }

func (k fakeKB) Lookup(string, int) []Passage { return k.passages }

type fakeHistory struct{ calls []parley.Call }

func (h fakeHistory) PreviousCalls(_ context.Context, number string, _ int) ([]parley.Call, error) {
	if number != "+15550100" {
		return nil, errors.New("wrong number")
	}
	return h.calls, nil
}

func TestGroundingAndConfidence(t *testing.T) {
	f := loadFixtures(t)
	kb := fakeKB{passages: []Passage{
		{Intent: "refund_policy", Title: "Refunds", Text: "Refunds within 30 days of purchase.", Score: 0.8},
		{Intent: "shipping", Title: "Shipping", Text: "We ship in two days.", Score: 0.3},
	}}
	lp := f.chat(t, "logprobs")
	var mean float64
	for _, v := range lp.Expect.Logprobs {
		mean += math.Exp(v)
	}
	mean /= float64(len(lp.Expect.Logprobs))
	tests := []struct {
		name   string
		stream string
		kb     Knowledge
		want   float64
	}{
		{"logprobs and retrieval", lp.SSE, kb, 0.6*mean + 0.4*0.8},
		{"retrieval only", f.chat(t, "plain-text").SSE, kb, 0.8},
		{"logprobs only", lp.SSE, nil, mean},
		{"neither", f.chat(t, "plain-text").SSE, nil, NoSignalConfidence},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProvider(t, step{events: sseEvents(tt.stream)})
			r, _ := newTestResponder(t, p, LLMConfig{Persona: "You are Ada from Acme Bank."}, Deps{Knowledge: tt.kb})
			res, err := r.NewConversation(dialog.CallContext{}).Respond(context.Background(), speech("can I get a refund"), (&sayRecorder{}).say)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(res.Confidence-tt.want) > 1e-9 {
				t.Errorf("confidence = %v, want %v", res.Confidence, tt.want)
			}
			sys := p.requests()[0].chatBody(t).Messages[0]
			if sys.Role != "system" || !strings.HasPrefix(sys.Content, "You are Ada from Acme Bank.") || !strings.Contains(sys.Content, "one question at a time") {
				t.Errorf("system prompt = %q", sys.Content)
			}
			if tt.kb != nil {
				if res.Intent != "refund_policy" {
					t.Errorf("intent = %q", res.Intent)
				}
				if !strings.Contains(sys.Content, "[1] Refunds: Refunds within 30 days of purchase.") {
					t.Errorf("system prompt lacks the passage: %q", sys.Content)
				}
				if !strings.Contains(string(p.requests()[0].chatBody(t).Tools), ToolLookupKnowledge) {
					t.Error("lookup_knowledge not offered")
				}
			}
		})
	}
}

func TestKnowledgeAndHistoryTools(t *testing.T) {
	kb := fakeKB{passages: []Passage{{Intent: "hours", Title: "Hours", Text: "Open 9 to 5.", Score: 0.9}}}
	hist := fakeHistory{calls: []parley.Call{{ID: "CA-old", StartedAt: time.Date(2026, 11, 20, 14, 3, 0, 0, time.UTC), Outcome: parley.OutcomeEscalated, Reason: "billing",
		Turns: []parley.Turn{{Speaker: parley.SpeakerCaller, Text: "my bill is wrong"}}}}}
	p := newFakeProvider(t,
		step{events: toolEvents("call_H", ToolCallerHistory, `{}`)},
		step{events: toolEvents("call_K", ToolLookupKnowledge, `{"query":"opening hours"}`)},
		step{events: textEvents("We are open nine to five.")})
	r, _ := newTestResponder(t, p, LLMConfig{}, Deps{Knowledge: kb, History: hist})
	res, err := r.NewConversation(dialog.CallContext{CallID: "CA-new", From: "+15550100"}).Respond(context.Background(), dialog.Input{Kind: dialog.InputDTMF, Digits: "1"}, (&sayRecorder{}).say)
	if err != nil {
		t.Fatal(err)
	}
	if res.Intent != "hours" || res.Confidence != 0.9 {
		t.Errorf("result = %+v, want intent hours and retrieval confidence 0.9", res)
	}
	msgs := p.requests()[2].chatBody(t).Messages
	var tools []string
	for _, m := range msgs {
		if m.Role == "tool" {
			tools = append(tools, m.Content)
		}
		if m.Role == "user" && m.Content != "[The caller typed on the keypad: 1]" {
			t.Errorf("user message = %q", m.Content)
		}
	}
	if len(tools) != 2 || !strings.Contains(tools[0], `2026-11-20 14:03 UTC, escalated (billing); caller said: "my bill is wrong"`) ||
		!strings.Contains(tools[1], "Open 9 to 5.") {
		t.Errorf("tool results = %q", tools)
	}
}

func TestWebhookTool(t *testing.T) {
	var got struct {
		body, callID, ctype string
	}
	var status atomic.Int32
	status.Store(200)
	hook := newFakeProvider(t)
	hook.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 1024)
		n, _ := r.Body.Read(b)
		got.body, got.callID, got.ctype = string(b[:n]), r.Header.Get("X-Parley-Call-ID"), r.Header.Get("Content-Type")
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte(`{"status":"shipped","eta":"Friday"}`))
	})
	tool := WebhookTool("order_status", "Order status by number.",
		json.RawMessage(`{"type":"object","properties":{"order":{"type":"string"}},"required":["order"]}`), hook.srv.URL+"/hook?token=s3cret", time.Second)
	for _, tt := range []struct {
		status int
		want   string
	}{{200, `{"status":"shipped","eta":"Friday"}`}, {503, "error: webhook order_status: the service answered with status 503"}} {
		status.Store(int32(tt.status))
		p := newFakeProvider(t, step{events: toolEvents("call_W", "order_status", `{"order":"4821"}`)}, step{events: textEvents("It ships Friday.")})
		r, _ := newTestResponder(t, p, LLMConfig{}, Deps{Tools: []Tool{tool}})
		if _, err := r.NewConversation(dialog.CallContext{CallID: "CA-W"}).Respond(context.Background(), speech("order 4821"), (&sayRecorder{}).say); err != nil {
			t.Fatal(err)
		}
		if got.body != `{"order":"4821"}` || got.callID != "CA-W" || got.ctype != "application/json" {
			t.Errorf("webhook got %+v", got)
		}
		var content string
		for _, m := range p.requests()[1].chatBody(t).Messages {
			if m.Role == "tool" {
				content = m.Content
			}
		}
		if content != tt.want || strings.Contains(content, "s3cret") {
			t.Errorf("status %d: tool result = %q, want %q", tt.status, content, tt.want)
		}
	}
}

func TestNewResponderRejects(t *testing.T) {
	good := func(context.Context, json.RawMessage) (string, error) { return "", nil }
	tests := []struct {
		name string
		cfg  LLMConfig
		deps Deps
	}{
		{"no base URL", LLMConfig{Model: "m"}, Deps{}},
		{"no model", LLMConfig{BaseURL: "http://x/v1"}, Deps{}},
		{"bad scheme", LLMConfig{BaseURL: "x/v1", Model: "m"}, Deps{}},
		{"duplicate tool", LLMConfig{BaseURL: "http://x/v1", Model: "m"}, Deps{Tools: []Tool{{Name: ToolEndCall, Call: good}}}},
		{"bad tool name", LLMConfig{BaseURL: "http://x/v1", Model: "m"}, Deps{Tools: []Tool{{Name: "a b", Call: good}}}},
		{"no Call", LLMConfig{BaseURL: "http://x/v1", Model: "m"}, Deps{Tools: []Tool{{Name: "x"}}}},
		{"bad schema", LLMConfig{BaseURL: "http://x/v1", Model: "m"}, Deps{Tools: []Tool{{Name: "x", Call: good, Parameters: json.RawMessage(`{"type":"string"}`)}}}},
		{"gpt-6 without chat tools", LLMConfig{BaseURL: "http://x/v1", Model: goopenai.GPT6Astra}, Deps{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewResponder(tt.cfg, tt.deps); err == nil {
				t.Error("want an error")
			}
		})
	}
}

func TestEmptyReplyRetried(t *testing.T) {
	p := newFakeProvider(t, step{events: []string{chunk(`{"role":"assistant","content":""}`, ""), chunk(`{}`, "stop"), "data: [DONE]"}},
		step{events: textEvents("Hello.")})
	r, _ := newTestResponder(t, p, LLMConfig{}, Deps{})
	rec := &sayRecorder{}
	if _, err := r.NewConversation(dialog.CallContext{}).Respond(context.Background(), speech("hi"), rec.say); err != nil {
		t.Fatal(err)
	}
	if len(p.requests()) != 2 || rec.text() != "Hello." {
		t.Errorf("%d requests, spoken %q", len(p.requests()), rec.text())
	}
}

// TestControlToolFollowUpFails: the transfer is decided, the model's
// sentence for it never comes; a fixed line is said instead of an error.
func TestControlToolFollowUpFails(t *testing.T) {
	f := loadFixtures(t)
	p := newFakeProvider(t, step{events: toolEvents("call_T", ToolTransfer, `{"reason":"caller_asked","summary":"Wants a person."}`)},
		step{status: 500, body: f.httpError(t, "500-server-error").Body})
	r, _ := newTestResponder(t, p, LLMConfig{Retries: -1}, Deps{})
	rec := &sayRecorder{}
	res, err := r.NewConversation(dialog.CallContext{}).Respond(context.Background(), speech("a person please"), rec.say)
	if err != nil || !res.Transfer || rec.text() != "Let me connect you with a colleague." {
		t.Errorf("err %v, result %+v, spoken %q", err, res, rec.text())
	}
}

func TestAzureRequestShape(t *testing.T) {
	p := newFakeProvider(t, step{events: textEvents("Hi.")})
	r, _ := newTestResponder(t, p, LLMConfig{BaseURL: p.srv.URL, Model: "parley-gpt4o", APIKey: "azure-key-123", AzureAPIVersion: "2024-10-21"}, Deps{})
	if _, err := r.NewConversation(dialog.CallContext{}).Respond(context.Background(), speech("hi"), (&sayRecorder{}).say); err != nil {
		t.Fatal(err)
	}
	req := p.requests()[0]
	if req.path != "/openai/deployments/parley-gpt4o/chat/completions" || req.header.Get("api-key") != "azure-key-123" || req.header.Get("Authorization") != "" {
		t.Errorf("path %s, api-key %q, authorization %q", req.path, req.header.Get("api-key"), req.header.Get("Authorization"))
	}
}

// TestSharedBreaker: engines on one provider share a breaker, so a
// failing transcription keeps the LLM from waiting on the same provider.
func TestSharedBreaker(t *testing.T) {
	f := loadFixtures(t)
	p := newFakeProvider(t, step{status: 500, body: f.httpError(t, "500-server-error").Body})
	b := NewBreaker(1, time.Hour)
	stt := newTestTranscriber(t, p, STTConfig{Breaker: b, Retries: -1})
	s, _ := stt.Start(context.Background(), dialog.ModeOpen)
	_ = s.Write(utterance())
	if _, err := s.Finish(); err == nil {
		t.Fatal("want a transcription error")
	}
	r, _ := newTestResponder(t, p, LLMConfig{Breaker: b}, Deps{})
	_, err := r.NewConversation(dialog.CallContext{}).Respond(context.Background(), speech("hi"), (&sayRecorder{}).say)
	if !errors.Is(err, ErrUnavailable) || r.Healthy() || stt.Healthy() || len(p.requests()) != 1 {
		t.Errorf("err %v, healthy %v/%v, %d requests", err, r.Healthy(), stt.Healthy(), len(p.requests()))
	}
}

// TestInterruptedToolCallLeavesNoDanglingCall: text, then a tool call cut
// by a barge-in; the next request must not carry a call without result.
func TestInterruptedToolCallLeavesNoDanglingCall(t *testing.T) {
	f := loadFixtures(t)
	p := newFakeProvider(t, step{events: sseEvents(f.chat(t, "text-then-tool-call").SSE)}, step{events: textEvents("Okay.")})
	r, _ := newTestResponder(t, p, LLMConfig{}, Deps{Tools: []Tool{{Name: "transfer_to_agent", Call: func(context.Context, json.RawMessage) (string, error) {
		t.Error("a tool ran after the barge-in")
		return "", nil
	}}}})
	conv := r.NewConversation(dialog.CallContext{})
	rec := &sayRecorder{failAt: 1}
	if _, err := conv.Respond(context.Background(), speech("billing"), rec.say); !errors.Is(err, dialog.ErrInterrupted) {
		t.Fatalf("err = %v", err)
	}
	conv.Heard("Let me check")
	if _, err := conv.Respond(context.Background(), speech("hello?"), (&sayRecorder{}).say); err != nil {
		t.Fatal(err)
	}
	for _, m := range p.requests()[1].chatBody(t).Messages {
		if len(m.ToolCalls) > 0 || m.Role == "tool" {
			t.Errorf("dangling tool message %+v", m)
		}
		if m.Role == "assistant" && m.Content != "Let me check" {
			t.Errorf("assistant = %q", m.Content)
		}
	}
}

// TestPromptsAreRedacted checks that a card number the caller says never
// reaches the model, on this turn or in the history of the next.
func TestPromptsAreRedacted(t *testing.T) {
	ev := textEvents("I can't take card numbers on this line", ".")
	p := newFakeProvider(t, step{events: ev})
	r, _ := newTestResponder(t, p, LLMConfig{}, Deps{Redact: pii.New(pii.Policy{}).String})
	conv := r.NewConversation(dialog.CallContext{})
	rec := &sayRecorder{}
	if _, err := conv.Respond(context.Background(), speech("my card number is 4111 1111 1111 1111"), rec.say); err != nil {
		t.Fatal(err)
	}
	if _, err := conv.Respond(context.Background(), speech("thanks"), rec.say); err != nil {
		t.Fatal(err)
	}
	reqs := p.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, rq := range reqs {
		if strings.Contains(string(rq.body), "4111") && strings.Contains(string(rq.body), "1111 1111") {
			t.Fatalf("request %d carries the card number: %s", i, rq.body)
		}
		if !strings.Contains(string(rq.body), "my card number is") {
			t.Fatalf("request %d lost the caller's words: %s", i, rq.body)
		}
	}
}
