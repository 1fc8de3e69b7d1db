package openai

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/parley-ai/parley/dialog"
)

// FuzzRespondStream serves arbitrary SSE bodies to Respond: it must
// return (with a result or an error) without panicking, hang or say
// empty sentences.
func FuzzRespondStream(f *testing.F) {
	for _, c := range loadFixtures(f).Chat {
		f.Add([]byte(c.SSE))
	}
	f.Add([]byte(strings.Join(toolEvents("call_1", ToolTransfer, `{"reason":"other",`, `"summary":"x"}`), "\n\n")))
	f.Add([]byte(strings.Join(toolEvents("", "", `{`), "\n\n")))
	var body atomic.Pointer[[]byte]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(*body.Load())
	}))
	f.Cleanup(srv.Close)
	client := testClient(f)
	r, err := NewResponder(LLMConfig{BaseURL: srv.URL + "/v1", Model: "m", Retries: -1, FirstTokenDeadline: 5 * time.Second,
		Timeout: 5 * time.Second, MaxToolRounds: 2, BreakerFailures: 1 << 30}, Deps{HTTPClient: client,
		Tools: []Tool{{Name: "lookup_order", Call: func(context.Context, json.RawMessage) (string, error) { return "ok", nil }}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sse []byte) {
		body.Store(&sse)
		var said []string
		res, _ := r.NewConversation(dialog.CallContext{CallID: "CA"}).Respond(context.Background(), speech("hi"), func(s string) error {
			said = append(said, s)
			return nil
		})
		for _, s := range said {
			if strings.TrimSpace(s) == "" {
				t.Fatalf("empty sentence said")
			}
		}
		if res.Confidence < 0 || res.Confidence > 1 || math.IsNaN(res.Confidence) {
			t.Fatalf("confidence %v", res.Confidence)
		}
	})
}

// FuzzTranscript feeds arbitrary transcription JSON to the confidence
// and hallucination logic.
func FuzzTranscript(f *testing.F) {
	for _, c := range loadFixtures(f).Transcriptions {
		f.Add([]byte(c.Body))
	}
	f.Add([]byte(`{"text":"x","segments":[{"start":1e308,"end":-1e308,"avg_logprob":1e9,"no_speech_prob":-5,"compression_ratio":9}]}`))
	tr := &Transcriber{cfg: STTConfig{JSONConfidence: DefaultJSONConfidence}}
	f.Fuzz(func(t *testing.T, body []byte) {
		var resp goopenai.AudioResponse
		if json.Unmarshal(body, &resp) != nil {
			return
		}
		got := tr.transcript(resp)
		if got.Confidence < 0 || got.Confidence > 1 || math.IsNaN(got.Confidence) {
			t.Fatalf("confidence %v for %s", got.Confidence, body)
		}
		if got.Text != strings.TrimSpace(got.Text) || (got.Text == "" && got.Confidence != 0) {
			t.Fatalf("transcript %+v", got)
		}
	})
}
