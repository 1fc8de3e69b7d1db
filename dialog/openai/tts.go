package openai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"
	goopenai "github.com/sashabaranov/go-openai"

	"github.com/parley-ai/parley/dialog"
)

// Defaults of TTSConfig.
const (
	// DefaultTTSSampleRate is the rate of OpenAI's pcm format: 24 kHz
	// signed 16-bit little-endian mono without a header.
	DefaultTTSSampleRate      = 24000
	DefaultFirstAudioDeadline = 2 * time.Second
	DefaultVoice              = "alloy"
	// ttsReadBytes is how much audio one read takes from the response
	// (50 ms at 24 kHz), the size of the chunks handed to emit.
	ttsReadBytes = 2400
)

// TTSConfig configures the text-to-speech Synthesizer.
type TTSConfig struct {
	// BaseURL is the API root including its version path (see LLMConfig).
	BaseURL string
	// Model is tts-1, tts-1-hd, gpt-4o-mini-tts or a compatible server's model.
	Model  string
	APIKey string
	// AzureAPIVersion selects an Azure OpenAI resource (see LLMConfig).
	AzureAPIVersion string
	// Voice (DefaultVoice).
	Voice string
	// Instructions steer tone (gpt-4o-mini-tts only); sent when set.
	Instructions string
	// Speed 0.25..4; 0 leaves the provider default.
	Speed float64
	// SampleRate of the provider's pcm output (24000 for OpenAI; other
	// compatible servers may differ).
	SampleRate int
	// FirstAudioDeadline bounds the wait for the first audio bytes of a
	// sentence, retries included (2 s); missing it returns ErrDeadline.
	FirstAudioDeadline time.Duration
	// Timeout is the longest the audio may pause mid-sentence (10 s);
	// missing it returns ErrStalled.
	Timeout time.Duration
	// Retries of a transient failure before any audio arrived (2;
	// negative disables) and the longest single wait (2 s).
	Retries      int
	MaxRetryWait time.Duration
	// Breaker, when set, is shared with the other engines on the same
	// provider; nil gives this engine its own (3 failures, 30 s).
	Breaker    *Breaker
	HTTPClient *http.Client
	Log        zerolog.Logger
}

// String describes the configuration without its API key.
func (c TTSConfig) String() string {
	return fmt.Sprintf("TTSConfig{BaseURL:%s Model:%s Voice:%s APIKey:%s}", redactString(c.BaseURL, c.APIKey), c.Model, c.Voice, maskKey(c.APIKey))
}

// Synthesizer is a dialog.Synthesizer over an OpenAI-compatible
// /audio/speech endpoint with response_format pcm: audio is handed to
// emit as it arrives, so the first words play before the sentence is
// fully synthesized.
type Synthesizer struct {
	cfg     TTSConfig
	client  *goopenai.Client
	breaker *Breaker
	log     zerolog.Logger
	sleep   func(ctx context.Context, d time.Duration) error
}

var _ dialog.Synthesizer = (*Synthesizer)(nil)

// NewSynthesizer checks cfg and returns a Synthesizer. It sends no request.
func NewSynthesizer(cfg TTSConfig) (*Synthesizer, error) {
	if cfg.Voice == "" {
		cfg.Voice = DefaultVoice
	}
	if cfg.SampleRate <= 0 {
		cfg.SampleRate = DefaultTTSSampleRate
	}
	if cfg.FirstAudioDeadline <= 0 {
		cfg.FirstAudioDeadline = DefaultFirstAudioDeadline
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultStallTimeout
	}
	if cfg.Retries == 0 {
		cfg.Retries = DefaultRetries
	} else if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = DefaultMaxRetryWait
	}
	if cfg.Speed != 0 && (cfg.Speed < 0.25 || cfg.Speed > 4) {
		return nil, fmt.Errorf("openai: tts: speed %v outside 0.25..4", cfg.Speed)
	}
	client, err := newClient(endpoint{baseURL: cfg.BaseURL, model: cfg.Model, apiKey: cfg.APIKey,
		azureVersion: cfg.AzureAPIVersion, httpClient: cfg.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("openai: tts: %w", err)
	}
	warnBaseURL(cfg.Log, cfg.BaseURL, cfg.AzureAPIVersion)
	if cfg.Breaker == nil {
		cfg.Breaker = NewBreaker(0, 0)
	}
	return &Synthesizer{cfg: cfg, client: client, breaker: cfg.Breaker,
		log: cfg.Log.With().Str("component", "openai.tts").Str("model", cfg.Model).Logger(), sleep: sleepCtx}, nil
}

// SampleRate implements dialog.Synthesizer.
func (s *Synthesizer) SampleRate() int { return s.cfg.SampleRate }

// Healthy reports whether the provider's circuit breaker lets requests through.
func (s *Synthesizer) Healthy() bool { return s.breaker.Healthy() }

// Synthesize implements dialog.Synthesizer.
func (s *Synthesizer) Synthesize(ctx context.Context, text string, emit func(pcm []int16) error) error {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil
	}
	if !s.breaker.Allow() {
		return ErrUnavailable
	}
	req := goopenai.CreateSpeechRequest{
		Model:          goopenai.SpeechModel(s.cfg.Model),
		Input:          text,
		Voice:          goopenai.SpeechVoice(s.cfg.Voice),
		Instructions:   s.cfg.Instructions,
		ResponseFormat: goopenai.SpeechResponseFormatPcm,
		Speed:          s.cfg.Speed,
	}
	deadlineAt := time.Now().Add(s.cfg.FirstAudioDeadline)
	for attempt := 0; ; attempt++ {
		actx, info := withAttempt(ctx)
		emitted, err := s.attempt(actx, req, emit, time.Until(deadlineAt))
		if err == nil {
			s.breaker.Success()
			return nil
		}
		if errors.Is(err, errSay) {
			s.breaker.Release()
			return errors.Unwrap(err)
		}
		kind := classify(ctx, err, info)
		if kind == failCaller {
			s.breaker.Release()
			return redact("openai: tts", err, s.cfg.APIKey)
		}
		if kind == failTransient && !emitted && attempt < s.cfg.Retries {
			wait, ok := retryWait(attempt, info, s.cfg.MaxRetryWait)
			if ok && time.Now().Add(wait).Before(deadlineAt) {
				if err := s.sleep(ctx, wait); err != nil {
					s.breaker.Release()
					return fmt.Errorf("openai: tts: %w", err)
				}
				continue
			}
		}
		s.breaker.Failure()
		return redact("openai: tts", err, s.cfg.APIKey)
	}
}

// attempt makes one speech request and streams its audio to emit.
func (s *Synthesizer) attempt(ctx context.Context, req goopenai.CreateSpeechRequest, emit func([]int16) error, firstWithin time.Duration) (emitted bool, err error) {
	if firstWithin <= 0 {
		return false, ErrDeadline
	}
	wd := newWatchdog(ctx, firstWithin, s.cfg.Timeout)
	defer wd.close()
	body, err := s.client.CreateSpeech(wd.ctx, req)
	if err != nil {
		return false, wd.cause(err)
	}
	defer body.Close()
	var dec pcmDecoder
	raw := make([]byte, ttsReadBytes)
	samples := make([]int16, 0, ttsReadBytes/2+1)
	for {
		n, rerr := body.Read(raw)
		wd.pause()
		if n > 0 {
			wd.got()
			samples = dec.decode(samples[:0], raw[:n])
			if len(samples) > 0 {
				if err := emit(samples); err != nil {
					return true, &sayError{err: err}
				}
				emitted = true
			}
		}
		if errors.Is(rerr, io.EOF) {
			return emitted, nil
		}
		if rerr != nil {
			return emitted, wd.cause(rerr)
		}
		wd.rearm()
	}
}

// pcmDecoder turns a little-endian s16 byte stream into samples; a read
// may end in the middle of a sample, whose first byte is kept for the
// next one.
type pcmDecoder struct {
	carry    byte
	hasCarry bool
}

// decode appends the complete samples of b (after any carried byte) to out.
func (d *pcmDecoder) decode(out []int16, b []byte) []int16 {
	if len(b) == 0 {
		return out
	}
	if d.hasCarry {
		out = append(out, int16(uint16(d.carry)|uint16(b[0])<<8))
		b = b[1:]
		d.hasCarry = false
	}
	for len(b) >= 2 {
		out = append(out, int16(uint16(b[0])|uint16(b[1])<<8))
		b = b[2:]
	}
	if len(b) == 1 {
		d.carry, d.hasCarry = b[0], true
	}
	return out
}
