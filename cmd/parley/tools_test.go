package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChatBalanceByKeypad(t *testing.T) {
	var out, errb bytes.Buffer
	in := strings.NewReader("what is my balance\n4821\n")
	if err := chat(context.Background(), []string{"-v"}, in, &out, &errb); err != nil {
		t.Fatalf("chat: %v\n%s", err, errb.String())
	}
	got := out.String()
	for _, want := range []string{"Thanks for calling Northwind Pay", "last four digits", "4 8 2 1", "intent=balance"} {
		if !strings.Contains(got, want) {
			t.Fatalf("chat output lacks %q:\n%s", want, got)
		}
	}
}

func TestSayThenTranscribe(t *testing.T) {
	dir := t.TempDir()
	wav := filepath.Join(dir, "q.wav")
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"say", "I", "want", "to", "check", "my", "balance", "-o", wav, "--rate", "8000"}, &out, &errb); err != nil {
		t.Fatalf("say: %v %s", err, errb.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"transcribe", wav}, &out, &errb); err != nil {
		t.Fatalf("transcribe: %v %s", err, errb.String())
	}
	var res struct {
		File       string  `json:"file"`
		Text       string  `json:"text"`
		Confidence float64 `json:"confidence"`
		MS         float64 `json:"ms"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("transcribe output %q: %v", out.String(), err)
	}
	if res.File != wav || !strings.Contains(res.Text, "balance") || res.Confidence <= 0 || res.MS <= 0 {
		t.Fatalf("transcribe result %+v", res)
	}
	// A missing file is reported, and the command fails.
	if err := run(context.Background(), []string{"transcribe", filepath.Join(dir, "nope.wav")}, &out, &errb); err == nil {
		t.Fatal("transcribe of a missing file succeeded")
	}
}

func TestNLUEvalPrintsMetrics(t *testing.T) {
	dir := t.TempDir()
	train := filepath.Join(dir, "train.csv")
	test := filepath.Join(dir, "test.csv")
	var tr, te strings.Builder
	tr.WriteString("text,category\n")
	te.WriteString("text,category\n")
	for _, r := range []struct{ label, words string }{
		{"card_lost", "i lost my card|my card is missing|cannot find my card|card lost somewhere|lost the card yesterday|my card was lost"},
		{"balance", "what is my balance|how much money do i have|check my balance|balance please|tell me my balance|account balance"},
		{"fees", "what are your fees|how much do you charge|is there a fee|why was i charged|monthly fee|fees for transfers"},
	} {
		ex := strings.Split(r.words, "|")
		for _, e := range ex[:5] {
			tr.WriteString(e + "," + r.label + "\n")
		}
		te.WriteString(ex[5] + "," + r.label + "\n")
	}
	os.WriteFile(train, []byte(tr.String()), 0o600)
	os.WriteFile(test, []byte(te.String()), 0o600)
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"nlu", "eval", "--train", train, "--test", test}, &out, &errb); err != nil {
		t.Fatalf("nlu eval: %v %s", err, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var m map[string]float64
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	for _, k := range []string{"n", "accuracy", "macro_f1", "oos_recall", "oos_precision", "in_scope_accuracy", "ece"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("metrics lack %q: %v", k, m)
		}
	}
	if m["n"] != 3 || m["accuracy"] < 2.0/3 {
		t.Fatalf("metrics %v", m)
	}
}

func TestUnknownCommandFails(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"frobnicate"}, &out, &errb); err == nil || !strings.Contains(errb.String(), "commands:") {
		t.Fatalf("unknown command: %v %q", err, errb.String())
	}
}

// With PARLEY_LLM_* set, chat talks to the OpenAI-compatible server.
func TestChatUsesTheConfiguredLLM(t *testing.T) {
	var asked bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		asked = true
		w.Header().Set("Content-Type", "text/event-stream")
		for _, piece := range []string{"You can freeze", " your card in the app. ", "Anything else?"} {
			b, _ := json.Marshal(map[string]any{"id": "c1", "object": "chat.completion.chunk", "model": "m",
				"choices": []map[string]any{{"index": 0, "delta": map[string]string{"content": piece}}}})
			fmt.Fprintf(w, "data: %s\n\n", b)
		}
		fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	defer srv.Close()
	t.Setenv("PARLEY_LLM_BASE_URL", srv.URL+"/v1")
	t.Setenv("PARLEY_LLM_MODEL", "test-model")
	t.Setenv("PARLEY_LLM_API_KEY", "sk-secret-test-key")
	var out, errb bytes.Buffer
	if err := chat(context.Background(), nil, strings.NewReader("I lost my card\n"), &out, &errb); err != nil {
		t.Fatalf("chat: %v %s", err, errb.String())
	}
	if !asked || !strings.Contains(out.String(), "AI: You can freeze your card in the app.") {
		t.Fatalf("LLM not used (asked=%v):\n%s", asked, out.String())
	}
	if strings.Contains(out.String()+errb.String(), "sk-secret-test-key") {
		t.Fatal("API key printed")
	}
}

// A webhook tool declared in the config file is offered to the LLM; its
// call reaches the operator's URL and the answer goes back to the model.
func TestConfiguredWebhookToolIsCalled(t *testing.T) {
	var hookBody string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hookBody = string(b)
		fmt.Fprint(w, `{"status":"shipped on Monday"}`)
	}))
	defer hook.Close()
	var calls int
	var sawTool, sawResult bool
	llm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		calls++
		sawTool = sawTool || strings.Contains(string(body), `"order_status"`)
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := func(delta map[string]any, finish string) {
			choice := map[string]any{"index": 0, "delta": delta}
			if finish != "" {
				choice["finish_reason"] = finish
			}
			b, _ := json.Marshal(map[string]any{"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": []any{choice}})
			fmt.Fprintf(w, "data: %s\n\n", b)
		}
		if !strings.Contains(string(body), "shipped on Monday") {
			chunk(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "id": "call_1", "type": "function",
				"function": map[string]any{"name": "order_status", "arguments": `{"order":"123456"}`}}}}, "")
			chunk(map[string]any{}, "tool_calls")
		} else {
			sawResult = true
			chunk(map[string]any{"content": "Your order shipped on Monday. "}, "")
			chunk(map[string]any{}, "stop")
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer llm.Close()
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	yaml := "tools:\n  - name: order_status\n    description: Delivery status of a card order.\n    url: " + hook.URL + "\n" +
		"    parameters: {type: object, properties: {order: {type: string, pattern: '^[0-9]{6}$'}}, required: [order]}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PARLEY_LLM_BASE_URL", llm.URL+"/v1")
	t.Setenv("PARLEY_LLM_MODEL", "test-model")
	var out, errb bytes.Buffer
	if err := chat(context.Background(), []string{"--config", cfg}, strings.NewReader("where is my new card order 123456\n"), &out, &errb); err != nil {
		t.Fatalf("chat: %v %s", err, errb.String())
	}
	if !sawTool || !sawResult || hookBody != `{"order":"123456"}` || !strings.Contains(out.String(), "shipped on Monday") {
		t.Fatalf("tool offered %v, result returned %v, webhook got %q, %d LLM calls; chat:\n%s\n%s", sawTool, sawResult, hookBody, calls, out.String(), errb.String())
	}
}
