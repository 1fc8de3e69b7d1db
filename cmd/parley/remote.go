package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/configs"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/dialog/kb"
	"github.com/parley-ai/parley/dialog/openai"
)

// kbKnowledge lets the LLM retrieve knowledge-base entries: the intent
// classifier ranks the intents for the caller's words.
type kbKnowledge struct{ eng *kb.Engine }

func (k kbKnowledge) Lookup(query string, n int) []openai.Passage {
	pred := k.eng.Model().Predict(query)
	out := make([]openai.Passage, 0, n)
	for _, s := range pred.Top {
		in := k.eng.KB().Intent(s.Intent)
		if in == nil || in.Answer == "" || in.Action != "" {
			continue
		}
		out = append(out, openai.Passage{Intent: in.Name, Title: in.Title, Text: in.Answer, Score: s.Confidence})
		if len(out) == n {
			break
		}
	}
	return out
}

// storeHistory gives the LLM a caller's previous calls.
type storeHistory struct{ st parley.Store }

func (h storeHistory) PreviousCalls(ctx context.Context, number string, limit int) ([]parley.Call, error) {
	if h.st == nil {
		return nil, nil
	}
	calls, err := h.st.ListCalls(ctx, parley.CallQuery{Number: number, Limit: limit})
	if err != nil {
		return nil, err
	}
	for i := range calls {
		if full, err := h.st.GetCall(ctx, calls[i].ID); err == nil {
			calls[i] = full
		}
	}
	return calls, nil
}

// remoteEngines replaces the embedded engines with OpenAI-compatible
// providers for the stages that have one configured. The LLM falls back to
// the knowledge-base engine while its circuit breaker is open.
func remoteEngines(cfg *configs.Config, e dialog.Engines, k *kb.Engine, st parley.Store, log zerolog.Logger) (dialog.Engines, error) {
	if cfg.LLM.Enabled() {
		r, err := openai.NewResponder(openai.LLMConfig{
			BaseURL:  cfg.LLM.BaseURL,
			Model:    cfg.LLM.Model,
			APIKey:   cfg.LLM.APIKey,
			Persona:  fmt.Sprintf("You are the phone assistant of %s, answering customers' calls.", k.KB().Company.Name),
			Greeting: k.KB().Company.Greeting,
			// The deadline is per stage; the session's filler covers the wait.
			FirstTokenDeadline: cfg.LLM.Deadline,
		}, openai.Deps{Knowledge: kbKnowledge{k}, History: storeHistory{st}, Tools: webhookTools(cfg.Tools), Redact: promptRedactor(cfg), Log: log})
		if err != nil {
			return e, fmt.Errorf("llm: %w", err)
		}
		e.Responder = openai.Fallback(r, e.Responder, r.Healthy)
		log.Info().Str("model", cfg.LLM.Model).Str("base_url", cfg.LLM.BaseURL).Msg("LLM answers calls; the knowledge base is the fallback")
	}
	if cfg.STT.Enabled() {
		t, err := openai.NewTranscriber(openai.STTConfig{BaseURL: cfg.STT.BaseURL, Model: cfg.STT.Model, APIKey: cfg.STT.APIKey, Deadline: cfg.STT.Deadline, Log: log})
		if err != nil {
			return e, fmt.Errorf("stt: %w", err)
		}
		e.Transcriber = t
		log.Info().Str("model", cfg.STT.Model).Msg("remote speech recognition")
	}
	if cfg.TTS.Enabled() {
		s, err := openai.NewSynthesizer(openai.TTSConfig{BaseURL: cfg.TTS.BaseURL, Model: cfg.TTS.Model, APIKey: cfg.TTS.APIKey, Voice: cfg.TTS.Voice, FirstAudioDeadline: cfg.TTS.Deadline, Log: log})
		if err != nil {
			return e, fmt.Errorf("tts: %w", err)
		}
		e.Synthesizer = s
		log.Info().Str("model", cfg.TTS.Model).Msg("remote speech synthesis")
	}
	return e, nil
}

// webhookTools turns the configured tools into LLM tools.
func webhookTools(ts []configs.ToolConf) []openai.Tool {
	out := make([]openai.Tool, 0, len(ts))
	for _, t := range ts {
		params, err := json.Marshal(t.Parameters)
		if err != nil { // validated at load: YAML maps always marshal
			continue
		}
		out = append(out, openai.WebhookTool(t.Name, t.Description, params, t.URL, t.Timeout))
	}
	return out
}

// promptRedactor is the redaction applied to LLM prompts, when configured.
func promptRedactor(cfg *configs.Config) func(string) string {
	if !cfg.LLM.RedactPrompts {
		return nil
	}
	return pii.String
}
