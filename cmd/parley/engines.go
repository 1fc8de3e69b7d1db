package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley/configs"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/dialog/flite"
	"github.com/parley-ai/parley/dialog/kb"
	"github.com/parley-ai/parley/dialog/sphinx"
)

// engines are the embedded speech and understanding engines a server shares
// between all its calls.
type engines struct {
	kb    *kb.Engine
	stt   *sphinx.Recognizer
	tts   *flite.Synthesizer
	close func()
}

func (e *engines) dialog() dialog.Engines {
	return dialog.Engines{Transcriber: e.stt, Responder: e.kb, Synthesizer: e.tts}
}

// loadKB loads the configured knowledge base (or the embedded sample) and
// trains the understanding engine from it.
func loadKB(cfg *configs.Config, log zerolog.Logger) (*kb.Engine, error) {
	t0 := time.Now()
	var (
		base *kb.KB
		err  error
	)
	if cfg.KB.Dir != "" {
		base, err = kb.Load(cfg.KB.Dir)
	} else {
		base, err = kb.LoadFS(configs.KB())
	}
	if err != nil {
		return nil, fmt.Errorf("knowledge base: %w", err)
	}
	// Transferred calls always reach a person or their voicemail: the queue
	// falls back to voicemail when nobody is on duty.
	eng, err := kb.New(base, kb.Options{TrainFiles: cfg.KB.TrainFiles, HumansAvailable: true})
	if err != nil {
		return nil, fmt.Errorf("knowledge base: %w", err)
	}
	log.Info().Dur("took", time.Since(t0)).Int("intents", len(base.Intents)).Msg("knowledge base loaded")
	return eng, nil
}

// newEngines builds all three engines; the recognizer's language model comes
// from the knowledge base.
func newEngines(cfg *configs.Config, log zerolog.Logger) (*engines, error) {
	k, err := loadKB(cfg, log)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	dir := filepath.Join(cfg.DataDir, "sphinx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	stt, err := sphinx.New(sphinx.Config{DataDir: dir, Sentences: k.Sentences(), MaxDecoders: cfg.Speech.MaxDecoders, Preload: cfg.Speech.MaxDecoders})
	if err != nil {
		return nil, fmt.Errorf("speech recognizer: %w", err)
	}
	tts, err := flite.New(flite.Config{Voice: cfg.Speech.Voice})
	if err != nil {
		stt.Close()
		return nil, fmt.Errorf("speech synthesizer: %w", err)
	}
	log.Info().Dur("took", time.Since(t0)).Str("voice", cfg.Speech.Voice).Msg("speech engines ready")
	// Every caller hears the greeting and the closing phrases: have them in
	// the synthesizer's cache before the first call (answers are cached as
	// callers ask for them).
	warmCtx, stopWarm := context.WithCancel(context.Background())
	warmed := make(chan struct{})
	go func() {
		defer close(warmed)
		_ = tts.Warm(warmCtx, warmTexts(k.KB())...)
	}()
	return &engines{kb: k, stt: stt, tts: tts, close: func() { stopWarm(); <-warmed; stt.Close() }}, nil
}

// warmTexts are the fixed phrases most calls hear.
func warmTexts(b *kb.KB) []string {
	c := b.Company
	return append([]string{c.Greeting, c.AnythingElse, c.Goodbye}, c.Fallback...)
}

// intentInfo gives the switchboard an intent's title and routing skill
// from the knowledge base.
func intentInfo(k *kb.Engine) func(string) (string, string) {
	return func(name string) (string, string) {
		if in := k.KB().Intent(name); in != nil {
			return in.Title, in.Skill
		}
		return "", ""
	}
}
