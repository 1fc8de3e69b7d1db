package openai

import (
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-ai/parley/dialog"
)

// waitTransport measures the time spent waiting on the provider: inside
// RoundTrip (connect, request, response headers) and inside every read of
// the response body.
type waitTransport struct {
	base http.RoundTripper
	wait atomic.Int64
}

func (t *waitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	t.wait.Add(int64(time.Since(start)))
	if resp != nil {
		resp.Body = &waitBody{ReadCloser: resp.Body, t: t}
	}
	return resp, err
}

type waitBody struct {
	io.ReadCloser
	t *waitTransport
}

func (b *waitBody) Read(p []byte) (int, error) {
	start := time.Now()
	n, err := b.ReadCloser.Read(p)
	b.t.wait.Add(int64(time.Since(start)))
	return n, err
}

// BenchmarkTurnServerLatency measures what parley adds to a turn on top
// of the provider: Respond's wall time minus the time spent waiting on
// the fake provider (request round trip and body reads). It reports the
// p50 and p99 of that overhead per turn.
func BenchmarkTurnServerLatency(b *testing.B) {
	f := loadFixtures(b)
	kb := fakeKB{passages: []Passage{
		{Intent: "refund_policy", Title: "Refunds", Text: "Refunds are possible within 30 days of purchase with the receipt.", Score: 0.82},
		{Intent: "shipping", Title: "Shipping", Text: "Orders ship within two business days.", Score: 0.41},
		{Intent: "hours", Title: "Hours", Text: "We are open from 9 a.m. to 5 p.m., Monday to Friday.", Score: 0.2},
	}}
	long := textEvents("Sure! ", "Refunds are possible ", "within 30 days of purchase. ", "You need the receipt, ",
		"and the item must be unused. ", "The money goes back to your card in 3.5 business days on average. ", "Is there anything else?")
	scenarios := []struct {
		name  string
		steps []step
	}{
		{"text-logprobs", []step{{events: sseEvents(f.chat(b, "logprobs").SSE)}}},
		{"text-7-sentences", []step{{events: long}}},
		{"tool-then-text", nil},
	}
	for _, sc := range scenarios {
		b.Run(sc.name, func(b *testing.B) {
			var p *fakeProvider
			if sc.steps == nil {
				// Alternate a lookup_knowledge call and its answer.
				p = newFakeProvider(b)
				p.steps = []step{{events: toolEvents("call_K", ToolLookupKnowledge, `{"query":"ref`, `und policy"}`)}, {events: long}}
			} else {
				p = newFakeProvider(b, sc.steps...)
			}
			tr := &waitTransport{base: testClient(b).Transport}
			r, _ := newTestResponder(b, p, LLMConfig{Persona: "You are Ada from Acme."}, Deps{Knowledge: kb, HTTPClient: &http.Client{Transport: tr}})
			say := func(string) error { return nil }
			overhead := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if sc.steps == nil {
					p.mu.Lock()
					p.next = 0
					p.mu.Unlock()
				}
				tr.wait.Store(0)
				conv := r.NewConversation(dialog.CallContext{CallID: "CA-bench"})
				start := time.Now()
				if _, err := conv.Respond(context.Background(), speech("can I get a refund for my order"), say); err != nil {
					b.Fatal(err)
				}
				overhead = append(overhead, time.Since(start)-time.Duration(tr.wait.Load()))
			}
			b.StopTimer()
			slices.Sort(overhead)
			q := func(p float64) float64 {
				return float64(overhead[min(len(overhead)-1, int(p*float64(len(overhead))))].Microseconds())
			}
			b.ReportMetric(q(0.50), "p50-µs")
			b.ReportMetric(q(0.99), "p99-µs")
		})
	}
}

func BenchmarkSentenceSplitter(b *testing.B) {
	text := "Sure! Refunds are possible within 30 days of purchase. You need the receipt, and the item must be unused. " +
		"The money goes back to your card in 3.5 business days on average. Dr. Smith can help, e.g. with returns. Anything else?"
	var toks []string
	for i := 0; i < len(text); i += 4 { // about one token each
		toks = append(toks, text[i:min(i+4, len(text))])
	}
	var s sentenceSplitter
	var out []string
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for _, t := range toks {
			out = s.push(t, out[:0])
		}
		s.flush()
	}
}

func BenchmarkPCMDecode(b *testing.B) {
	raw := make([]byte, ttsReadBytes+1)
	out := make([]int16, 0, len(raw)/2+1)
	var d pcmDecoder
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		out = d.decode(out[:0], raw)
	}
}

// TestLive runs one grounded turn against a real OpenAI-compatible
// provider when PARLEY_LLM_API_KEY and PARLEY_LLM_BASE_URL are set
// (PARLEY_LLM_MODEL picks the model, gpt-4o-mini by default).
func TestLive(t *testing.T) {
	key, base := os.Getenv("PARLEY_LLM_API_KEY"), os.Getenv("PARLEY_LLM_BASE_URL")
	if key == "" || base == "" {
		t.Skip("set PARLEY_LLM_API_KEY and PARLEY_LLM_BASE_URL (and optionally PARLEY_LLM_MODEL) to run against a live provider")
	}
	model := os.Getenv("PARLEY_LLM_MODEL")
	if model == "" {
		model = "gpt-4o-mini"
	}
	log, buf := bufLog()
	r, err := NewResponder(LLMConfig{BaseURL: base, Model: model, APIKey: key, Persona: "You are Ada, the phone assistant of Acme Outfitters.",
		FirstTokenDeadline: 10 * time.Second}, Deps{Log: log, HTTPClient: testClient(t),
		Knowledge: fakeKB{passages: []Passage{{Intent: "hours", Title: "Opening hours", Text: "Acme Outfitters is open 9 a.m. to 6 p.m., Monday to Saturday.", Score: 0.9}}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &sayRecorder{}
	res, err := r.NewConversation(dialog.CallContext{CallID: "CA-live"}).Respond(context.Background(), speech("when are you open on saturday"), rec.say)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("said %q; intent %s confidence %.2f (logprobs %v)", rec.sentences, res.Intent, res.Confidence, r.LogprobsEnabled())
	if len(rec.sentences) == 0 || res.Intent != "hours" {
		t.Errorf("no grounded answer: %q %+v", rec.sentences, res)
	}
	if strings.Contains(buf.String(), key) {
		t.Error("the key reached the log")
	}
}
