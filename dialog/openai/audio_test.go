package openai

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/parley-ai/parley/dialog"
)

func newTestTranscriber(t testing.TB, p *fakeProvider, cfg STTConfig) *Transcriber {
	t.Helper()
	cfg.BaseURL = p.baseURL()
	if cfg.Model == "" {
		cfg.Model = "whisper-1"
	}
	cfg.HTTPClient = testClient(t)
	tr, err := NewTranscriber(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	return tr
}

// utterance is a second of a 300 Hz tone at 16 kHz.
func utterance() []int16 {
	pcm := make([]int16, STTSampleRate)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*300*float64(i)/STTSampleRate))
	}
	return pcm
}

func TestTranscriberFixtures(t *testing.T) {
	f := loadFixtures(t)
	vj := f.transcription(t, "verbose-json-doc")
	tail := f.transcription(t, "verbose-json-hallucinated-tail")
	json := f.transcription(t, "json-whisper")
	gpt := f.transcription(t, "json-gpt-4o-transcribe-doc")
	tests := []struct {
		name       string
		fx         transcriptionFixture
		cfg        STTConfig
		mode       dialog.Mode
		wantFormat string
		wantText   string
		wantConf   float64
		wantPrompt string
	}{
		{"verbose_json", vj, STTConfig{Language: "en"}, dialog.ModeOpen, "verbose_json",
			normalizeTranscript(vj.Expect.Text), math.Exp(-0.2860786020755768) * (1 - 0.00985979475080967), ""},
		{"hallucinated tail dropped", tail, STTConfig{}, dialog.ModeOpen, "verbose_json",
			"i want to cancel my subscription.", math.Exp(-0.18) * (1 - 0.012), ""},
		{"json on whisper", json, STTConfig{ResponseFormat: "json"}, dialog.ModeDigits, "json",
			"hello, i'd like to check my order status.", DefaultJSONConfidence, "The caller reads out a number digit by digit, for example: 4 8 2 1."},
		{"gpt-4o-transcribe picks json", gpt, STTConfig{Model: "gpt-4o-transcribe", JSONConfidence: 0.9, Prompt: "Acme"}, dialog.ModeYesNo, "json",
			normalizeTranscript(gpt.Expect.Text), 0.9, "Acme The caller answers yes or no."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProvider(t, step{body: tt.fx.Body, header: map[string]string{"Content-Type": tt.fx.ContentType}})
			tr := newTestTranscriber(t, p, tt.cfg)
			if tr.SampleRate() != 16000 {
				t.Fatalf("SampleRate = %d", tr.SampleRate())
			}
			s, err := tr.Start(context.Background(), tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			pcm := utterance()
			for i := 0; i < len(pcm); i += 320 {
				if err := s.Write(pcm[i : i+320]); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if got.Text != tt.wantText || math.Abs(got.Confidence-tt.wantConf) > 1e-9 {
				t.Errorf("transcript = %q %v, want %q %v", got.Text, got.Confidence, tt.wantText, tt.wantConf)
			}
			req := p.requests()[0]
			if req.path != "/v1/audio/transcriptions" || req.form["response_format"] != tt.wantFormat || req.form["prompt"] != tt.wantPrompt {
				t.Errorf("request %s form %v", req.path, req.form)
			}
			w := req.file
			if len(w) != 44+2*len(pcm) || string(w[:4]) != "RIFF" || string(w[8:16]) != "WAVEfmt " ||
				binary.LittleEndian.Uint32(w[24:]) != 16000 || binary.LittleEndian.Uint32(w[40:]) != uint32(2*len(pcm)) ||
				int16(binary.LittleEndian.Uint16(w[44+2*100:])) != pcm[100] {
				t.Errorf("uploaded file is not the utterance as 16 kHz mono WAV (%d bytes)", len(w))
			}
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestTranscriberFailures(t *testing.T) {
	f := loadFixtures(t)
	tests := []struct {
		name     string
		steps    []step
		cfg      STTConfig
		wantErr  error
		requests int
	}{
		{"deadline", []step{{holdPre: true}}, STTConfig{Deadline: 100 * time.Millisecond}, ErrDeadline, 1},
		{"retry then success", []step{{status: 503, body: `{"error":{"message":"busy","type":"server_error"}}`}, {body: `{"text":"Yes."}`}}, STTConfig{ResponseFormat: "json"}, nil, 2},
		{"quota not retried", []step{{status: 429, body: f.httpError(t, "429-insufficient-quota").Body}}, STTConfig{}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProvider(t, tt.steps...)
			tr := newTestTranscriber(t, p, tt.cfg)
			s, _ := tr.Start(context.Background(), dialog.ModeOpen)
			_ = s.Write(utterance())
			got, err := s.Finish()
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			case tt.name == "retry then success" && (err != nil || got.Text != "yes."):
				t.Fatalf("got %+v %v", got, err)
			case tt.name == "quota not retried" && err == nil:
				t.Fatal("want an error")
			}
			if tt.wantErr == ErrDeadline {
				p.waitLeft(t)
			}
			if n := len(p.requests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
		})
	}
}

func TestTranscriberShortAndLong(t *testing.T) {
	p := newFakeProvider(t, step{body: `{"text":"hi"}`})
	tr := newTestTranscriber(t, p, STTConfig{MaxUtterance: time.Second, ResponseFormat: "json"})
	s, _ := tr.Start(context.Background(), dialog.ModeOpen)
	_ = s.Write(make([]int16, 800)) // 50 ms
	got, err := s.Finish()
	if err != nil || got.Text != "" || len(p.requests()) != 0 {
		t.Fatalf("short utterance: %+v %v, %d requests; want empty and none", got, err, len(p.requests()))
	}
	s, _ = tr.Start(context.Background(), dialog.ModeOpen)
	for range 3 {
		_ = s.Write(utterance())
	}
	if _, err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	if n := len(p.requests()[0].file); n != 44+2*STTSampleRate {
		t.Errorf("uploaded %d bytes, want MaxUtterance (1 s) of audio", n)
	}
	if _, err := s.Finish(); err == nil {
		t.Error("Finish after Finish should fail")
	}
}

func newTestSynthesizer(t testing.TB, p *fakeProvider, cfg TTSConfig) *Synthesizer {
	t.Helper()
	cfg.BaseURL = p.baseURL()
	if cfg.Model == "" {
		cfg.Model = "gpt-4o-mini-tts"
	}
	cfg.HTTPClient = testClient(t)
	s, err := NewSynthesizer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	return s
}

// TestSynthesizerStreamsPCM serves the fixture PCM in odd-sized pieces and
// holds the body after the first piece until emit has seen audio.
func TestSynthesizerStreamsPCM(t *testing.T) {
	f := loadFixtures(t)
	raw := f.pcm(t)
	var want []int16
	for i := 0; i+1 < len(raw); i += 2 {
		want = append(want, int16(binary.LittleEndian.Uint16(raw[i:])))
	}
	for i, s := range f.Speech.PCM.First4 {
		if want[i] != s {
			t.Fatalf("fixture decode: sample %d = %d, want %d", i, want[i], s)
		}
	}
	for _, sizes := range [][]int{{1, 3, 7, 949}, {961}, {2, 2, 2, 954}, {5, 955}} {
		var chunks [][]byte
		off := 0
		for _, n := range sizes {
			n = min(n, len(raw)-off)
			chunks = append(chunks, raw[off:off+n])
			off += n
		}
		gate := make(chan struct{})
		st := step{chunks: chunks, gate: gate, gateAt: len(chunks) - 1}
		if len(chunks) == 1 {
			st.gate = nil
		}
		p := newFakeProvider(t, st)
		s := newTestSynthesizer(t, p, TTSConfig{Voice: "coral", Instructions: "Warm.", Speed: 1.1})
		if s.SampleRate() != 24000 {
			t.Fatalf("SampleRate = %d", s.SampleRate())
		}
		var got []int16
		var opened bool
		err := s.Synthesize(context.Background(), "One moment please.", func(pcm []int16) error {
			got = append(got, pcm...)
			if !opened {
				opened = true
				close(gate) // audio arrived before the body ended
			}
			if len(pcm) == 0 {
				t.Error("emit called without audio")
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%v: %v", sizes, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%v: %d samples, want %d", sizes, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%v: sample %d = %d, want %d", sizes, i, got[i], want[i])
			}
		}
		body := string(p.requests()[0].body)
		for _, w := range []string{`"response_format":"pcm"`, `"voice":"coral"`, `"input":"One moment please."`, `"instructions":"Warm."`, `"model":"gpt-4o-mini-tts"`} {
			if !strings.Contains(body, w) {
				t.Errorf("request %s lacks %s", body, w)
			}
		}
	}
}

func TestSynthesizerFailures(t *testing.T) {
	f := loadFixtures(t)
	raw := f.pcm(t)
	tests := []struct {
		name     string
		steps    []step
		emitErr  error
		wantErr  error
		requests int
	}{
		{"first audio deadline", []step{{holdPre: true}}, nil, ErrDeadline, 1},
		{"emit error stops and closes", []step{{chunks: [][]byte{raw[:480], raw[480:]}, gate: make(chan struct{}), gateAt: 1}}, dialog.ErrInterrupted, dialog.ErrInterrupted, 1},
		{"retry on 500 before audio", []step{{status: 500, body: f.httpError(t, "500-server-error").Body}, {chunks: [][]byte{raw}}}, nil, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProvider(t, tt.steps...)
			s := newTestSynthesizer(t, p, TTSConfig{FirstAudioDeadline: 200 * time.Millisecond})
			if tt.wantErr == ErrDeadline {
				s.cfg.FirstAudioDeadline = 100 * time.Millisecond
			} else {
				s.cfg.FirstAudioDeadline = 10 * time.Second
			}
			err := s.Synthesize(context.Background(), "Hello.", func([]int16) error { return tt.emitErr })
			if !errors.Is(err, tt.wantErr) && (err != nil || tt.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				p.waitLeft(t)
			}
			if n := len(p.requests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
		})
	}
}
