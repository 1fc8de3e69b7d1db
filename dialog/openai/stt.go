package openai

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	goopenai "github.com/sashabaranov/go-openai"

	"github.com/parley-ai/parley/dialog"
)

// Defaults of STTConfig.
const (
	// STTSampleRate is the rate the Transcriber takes audio at; Whisper
	// models work at 16 kHz.
	STTSampleRate          = 16000
	DefaultSTTDeadline     = 4 * time.Second
	DefaultMaxUtterance    = 30 * time.Second
	DefaultJSONConfidence  = 0.8
	minUtterance           = 100 * time.Millisecond // providers reject shorter audio
	wavHeaderBytes         = 44
	hallucinationNoSpeech  = 0.6 // Whisper's no_speech_threshold
	hallucinationLogprob   = -1.0
	repetitionCompression  = 2.4 // Whisper's compression_ratio_threshold
	repetitionConfidenceX  = 0.5
	formatVerboseJSON      = "verbose_json"
	formatJSON             = "json"
	transcriptionExtension = "turn.wav"
)

// STTConfig configures the speech-to-text Transcriber.
type STTConfig struct {
	// BaseURL is the API root including its version path (see LLMConfig).
	BaseURL string
	// Model is whisper-1, gpt-4o-transcribe, gpt-4o-mini-transcribe or a
	// compatible server's model name.
	Model  string
	APIKey string
	// AzureAPIVersion selects an Azure OpenAI resource (see LLMConfig).
	AzureAPIVersion string
	// Language is the ISO-639-1 code of the caller's language ("en");
	// empty lets the provider detect it.
	Language string
	// Prompt biases recognition (product names, vocabulary). Digit and
	// yes/no turns get their own bias on top.
	Prompt string
	// ResponseFormat is "verbose_json" or "json". Empty picks
	// verbose_json (segment avg_logprob and no_speech_prob give the
	// confidence) except for gpt-*-transcribe models, which only return
	// json.
	ResponseFormat string
	// Deadline bounds one transcription from the end of the turn,
	// retries included (4 s); missing it returns ErrDeadline.
	Deadline time.Duration
	// Retries of a transient failure within the deadline (2; negative
	// disables) and the longest single wait (2 s).
	Retries      int
	MaxRetryWait time.Duration
	// JSONConfidence is the confidence reported when the response carries
	// no per-segment scores (plain json): 0.8, above the usual
	// re-prompt thresholds, since the provider returned a transcript.
	JSONConfidence float64
	// MaxUtterance bounds the audio kept for one turn (30 s); later audio
	// is dropped.
	MaxUtterance time.Duration
	// Breaker, when set, is shared with the other engines on the same
	// provider; nil gives this engine its own (3 failures, 30 s).
	Breaker    *Breaker
	HTTPClient *http.Client
	Log        zerolog.Logger
}

// String describes the configuration without its API key.
func (c STTConfig) String() string {
	return fmt.Sprintf("STTConfig{BaseURL:%s Model:%s APIKey:%s}", redactString(c.BaseURL, c.APIKey), c.Model, maskKey(c.APIKey))
}

// Transcriber is a dialog.Transcriber over an OpenAI-compatible
// /audio/transcriptions endpoint. The API is not streaming: a stream
// buffers the utterance as a WAV file while the caller speaks and uploads
// it the moment the turn ends (Finish).
type Transcriber struct {
	cfg     STTConfig
	client  *goopenai.Client
	format  string
	breaker *Breaker
	log     zerolog.Logger
	sleep   func(ctx context.Context, d time.Duration) error
	bufs    sync.Pool // *[]byte WAV buffers
}

var _ dialog.Transcriber = (*Transcriber)(nil)

// NewTranscriber checks cfg and returns a Transcriber. It sends no request.
func NewTranscriber(cfg STTConfig) (*Transcriber, error) {
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultSTTDeadline
	}
	if cfg.Retries == 0 {
		cfg.Retries = DefaultRetries
	} else if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = DefaultMaxRetryWait
	}
	if cfg.JSONConfidence <= 0 || cfg.JSONConfidence > 1 {
		cfg.JSONConfidence = DefaultJSONConfidence
	}
	if cfg.MaxUtterance <= 0 {
		cfg.MaxUtterance = DefaultMaxUtterance
	}
	client, err := newClient(endpoint{baseURL: cfg.BaseURL, model: cfg.Model, apiKey: cfg.APIKey,
		azureVersion: cfg.AzureAPIVersion, httpClient: cfg.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("openai: stt: %w", err)
	}
	warnBaseURL(cfg.Log, cfg.BaseURL, cfg.AzureAPIVersion)
	if cfg.Breaker == nil {
		cfg.Breaker = NewBreaker(0, 0)
	}
	format := cfg.ResponseFormat
	switch format {
	case "":
		format = formatVerboseJSON
		if m := strings.ToLower(cfg.Model); strings.HasPrefix(m, "gpt-") && strings.Contains(m, "transcribe") {
			format = formatJSON
		}
	case formatJSON, formatVerboseJSON:
	default:
		return nil, fmt.Errorf("openai: stt: response format %q: use json or verbose_json", format)
	}
	return &Transcriber{cfg: cfg, client: client, format: format, breaker: cfg.Breaker,
		log: cfg.Log.With().Str("component", "openai.stt").Str("model", cfg.Model).Logger(), sleep: sleepCtx}, nil
}

// SampleRate implements dialog.Transcriber.
func (t *Transcriber) SampleRate() int { return STTSampleRate }

// Healthy reports whether the provider's circuit breaker lets requests through.
func (t *Transcriber) Healthy() bool { return t.breaker.Healthy() }

// Start implements dialog.Transcriber.
func (t *Transcriber) Start(ctx context.Context, mode dialog.Mode) (dialog.TranscribeStream, error) {
	bp, _ := t.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, wavHeaderBytes+STTSampleRate*2*5)
		bp = &b
	}
	buf := append((*bp)[:0], make([]byte, wavHeaderBytes)...)
	*bp = buf
	return &sttStream{t: t, ctx: ctx, mode: mode, buf: bp,
		limit: wavHeaderBytes + int(t.cfg.MaxUtterance.Seconds()*STTSampleRate)*2}, nil
}

// sttStream buffers one utterance as 16-bit little-endian PCM behind a
// WAV header that Finish fills in.
type sttStream struct {
	t       *Transcriber
	ctx     context.Context
	mode    dialog.Mode
	buf     *[]byte
	limit   int
	dropped int
	done    bool
}

// Write implements dialog.TranscribeStream.
func (s *sttStream) Write(pcm []int16) error {
	if s.done {
		return errors.New("openai: stt: write after finish")
	}
	b := *s.buf
	room := (s.limit - len(b)) / 2
	if room < len(pcm) {
		s.dropped += len(pcm) - max(room, 0)
		pcm = pcm[:max(room, 0)]
	}
	for _, v := range pcm {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	*s.buf = b
	return nil
}

// Close implements dialog.TranscribeStream.
func (s *sttStream) Close() error {
	if !s.done {
		s.done = true
		s.t.bufs.Put(s.buf)
	}
	return nil
}

// Finish implements dialog.TranscribeStream: it uploads the utterance at
// once and waits for the transcript, at most Deadline.
func (s *sttStream) Finish() (dialog.Transcript, error) {
	if s.done {
		return dialog.Transcript{}, errors.New("openai: stt: finish after close")
	}
	defer s.Close()
	t := s.t
	wav := *s.buf
	if time.Duration(len(wav)-wavHeaderBytes)/2*time.Second/STTSampleRate < minUtterance {
		return dialog.Transcript{}, nil
	}
	putWAVHeader(wav, STTSampleRate)
	if s.dropped > 0 {
		t.log.Debug().Int("dropped_samples", s.dropped).Msg("openai: stt: utterance longer than MaxUtterance")
	}
	if !t.breaker.Allow() {
		return dialog.Transcript{}, ErrUnavailable
	}
	ctx, cancel := context.WithTimeoutCause(s.ctx, t.cfg.Deadline, ErrDeadline)
	defer cancel()
	req := goopenai.AudioRequest{
		Model:    t.cfg.Model,
		FilePath: transcriptionExtension,
		Prompt:   modePrompt(t.cfg.Prompt, s.mode),
		Language: t.cfg.Language,
		Format:   goopenai.AudioResponseFormat(t.format),
	}
	if t.format == formatVerboseJSON {
		req.TimestampGranularities = []goopenai.TranscriptionTimestampGranularity{goopenai.TranscriptionTimestampGranularitySegment}
	}
	for attempt := 0; ; attempt++ {
		actx, info := withAttempt(ctx)
		req.Reader = bytes.NewReader(wav)
		resp, err := t.client.CreateTranscription(actx, req)
		if err == nil {
			t.breaker.Success()
			return t.transcript(resp), nil
		}
		if context.Cause(ctx) == ErrDeadline && s.ctx.Err() == nil {
			err = ErrDeadline
		}
		kind := classify(s.ctx, err, info)
		if kind == failCaller {
			t.breaker.Release()
			return dialog.Transcript{}, redact("openai: stt", err, t.cfg.APIKey)
		}
		if kind == failTransient && attempt < t.cfg.Retries && !errors.Is(err, ErrDeadline) {
			wait, ok := retryWait(attempt, info, t.cfg.MaxRetryWait)
			if dl, has := ctx.Deadline(); ok && (!has || time.Now().Add(wait).Before(dl)) {
				if t.sleep(ctx, wait) == nil {
					continue
				}
				if context.Cause(ctx) == ErrDeadline && s.ctx.Err() == nil {
					err = ErrDeadline
				}
			}
		}
		t.breaker.Failure()
		return dialog.Transcript{}, redact("openai: stt", err, t.cfg.APIKey)
	}
}

// modePrompt adds a bias for what the AI asked for.
func modePrompt(base string, mode dialog.Mode) string {
	var hint string
	switch mode {
	case dialog.ModeDigits:
		hint = "The caller reads out a number digit by digit, for example: 4 8 2 1."
	case dialog.ModeYesNo:
		hint = "The caller answers yes or no."
	}
	switch {
	case base == "":
		return hint
	case hint == "":
		return base
	}
	return base + " " + hint
}

// transcript turns the provider's answer into a dialog.Transcript.
//
// With verbose_json, segments Whisper itself would treat as silence
// (no_speech_prob > 0.6 and avg_logprob < -1, the classic "Thank you for
// watching!" hallucination) are dropped, and the confidence is the
// duration-weighted mean over the kept segments of
// exp(avg_logprob)·(1 − no_speech_prob), halved for a segment whose
// compression ratio exceeds 2.4 (repetition loops). With plain json there
// are no scores and the confidence is STTConfig.JSONConfidence.
func (t *Transcriber) transcript(resp goopenai.AudioResponse) dialog.Transcript {
	if len(resp.Segments) == 0 {
		text := normalizeTranscript(resp.Text)
		if text == "" {
			return dialog.Transcript{}
		}
		return dialog.Transcript{Text: text, Confidence: t.cfg.JSONConfidence}
	}
	var kept []string
	var sum, weight float64
	text := resp.Text
	fromSegments := false
	for _, seg := range resp.Segments {
		st := strings.TrimSpace(seg.Text)
		if seg.NoSpeechProb > hallucinationNoSpeech && seg.AvgLogprob < hallucinationLogprob {
			// Cut the hallucinated words out of the full text; when they
			// cannot be found, rebuild the text from the kept segments.
			if i := strings.LastIndex(text, st); st != "" && i >= 0 {
				text = text[:i] + text[i+len(st):]
			} else {
				fromSegments = true
			}
			continue
		}
		p := math.Exp(math.Min(seg.AvgLogprob, 0)) * (1 - clamp01(seg.NoSpeechProb))
		if seg.CompressionRatio > repetitionCompression {
			p *= repetitionConfidenceX
		}
		w := seg.End - seg.Start
		if !(w > 0) || math.IsInf(w, 0) {
			w = 1
		}
		sum += p * w
		weight += w
		kept = append(kept, st)
	}
	if fromSegments {
		text = strings.Join(kept, " ")
	}
	text = normalizeTranscript(text)
	if text == "" || weight == 0 {
		return dialog.Transcript{}
	}
	return dialog.Transcript{Text: text, Confidence: clamp01(sum / weight)}
}

// normalizeTranscript lower-cases and folds whitespace, as
// dialog.Transcript asks.
func normalizeTranscript(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// putWAVHeader writes a 44-byte PCM WAV header for the 16-bit mono
// samples that follow it in b.
func putWAVHeader(b []byte, rate int) {
	data := uint32(len(b) - wavHeaderBytes)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], 36+data)
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*2))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], data)
}
