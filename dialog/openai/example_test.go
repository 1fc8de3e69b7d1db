package openai_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/dialog/openai"
)

// A Responder speaks each sentence as soon as the model has finished it.
// Here a local OpenAI-compatible server streams the reply.
func ExampleNewResponder() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, piece := range []string{"Sure", "! We are open", " from 9 a.m. to 5 p.m.", " Anything else?"} {
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", piece)
		}
		_, _ = io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()

	r, err := openai.NewResponder(openai.LLMConfig{
		BaseURL: srv.URL + "/v1",
		Model:   "llama-3.1-8b-instruct",
		Persona: "You are Ada, the phone assistant of Acme.",
	}, openai.Deps{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		fmt.Println(err)
		return
	}
	conv := r.NewConversation(dialog.CallContext{CallID: "CA1"})
	res, err := conv.Respond(context.Background(), dialog.Input{Kind: dialog.InputSpeech, Text: "when are you open"},
		func(sentence string) error {
			fmt.Println("say:", sentence)
			return nil
		})
	fmt.Println(res.Confidence, err)
	// Output:
	// say: Sure!
	// say: We are open from 9 a.m. to 5 p.m.
	// say: Anything else?
	// 0.7 <nil>
}
