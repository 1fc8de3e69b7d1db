package flite

import (
	"context"
	"errors"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newSynth returns a Synthesizer without the audio cache, so every call
// exercises flite itself.
func newSynth(t testing.TB, voice string) *Synthesizer {
	t.Helper()
	s, err := New(Config{Voice: voice, CacheBytes: -1})
	if err != nil {
		t.Fatalf("New(%q): %v", voice, err)
	}
	return s
}

// collect synthesizes text and returns the chunks.
func collect(t testing.TB, s *Synthesizer, text string) [][]int16 {
	t.Helper()
	var chunks [][]int16
	if err := s.Synthesize(context.Background(), text, func(pcm []int16) error {
		chunks = append(chunks, pcm)
		return nil
	}); err != nil {
		t.Fatalf("Synthesize(%q): %v", text, err)
	}
	return chunks
}

func flatten(chunks [][]int16) []int16 {
	var all []int16
	for _, c := range chunks {
		all = append(all, c...)
	}
	return all
}

func rms(pcm []int16) float64 {
	if len(pcm) == 0 {
		return 0
	}
	var sum float64
	for _, v := range pcm {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(pcm)))
}

func TestNewVoices(t *testing.T) {
	tests := []struct {
		voice string
		rate  int
	}{
		{"", 16000}, {"slt", 16000}, {"kal", 8000}, {"kal16", 16000}, {"rms", 16000}, {"awb", 16000},
	}
	for _, tt := range tests {
		s := newSynth(t, tt.voice)
		if s.SampleRate() != tt.rate {
			t.Errorf("voice %q: SampleRate %d, want %d", tt.voice, s.SampleRate(), tt.rate)
		}
		if tt.voice == "" && s.Voice() != DefaultVoice {
			t.Errorf("default voice %q, want %q", s.Voice(), DefaultVoice)
		}
	}
	for _, bad := range []Config{{Voice: "nope"}, {MaxConcurrent: -1}, {MaxChars: -5}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) succeeded", bad)
		}
	}
}

func TestSynthesizeAudio(t *testing.T) {
	short := "My card was stolen."
	long := "I want to check my account balance, and then I would like to pay my bill for last month. " +
		"After that, please tell me when the branch on Main Street opens tomorrow morning."
	for _, voice := range []string{"slt", "kal"} {
		t.Run(voice, func(t *testing.T) {
			s := newSynth(t, voice)
			shortPCM := flatten(collect(t, s, short))
			longChunks := collect(t, s, long)
			longPCM := flatten(longChunks)

			sec := float64(len(shortPCM)) / float64(s.SampleRate())
			if sec < 0.7 || sec > 4 {
				t.Errorf("%q lasts %.2fs, want about 1.5s", short, sec)
			}
			if r := rms(shortPCM); r < 300 {
				t.Errorf("%q RMS %.0f: too quiet to be speech", short, r)
			}
			// Duration grows roughly with text length (the long text is
			// about 9 times longer).
			ratio := float64(len(longPCM)) / float64(len(shortPCM))
			if ratio < 4 || ratio > 20 {
				t.Errorf("long/short duration ratio %.1f, want about 9", ratio)
			}
			if len(longChunks) < 10 {
				t.Errorf("long text came in %d chunks; want streaming", len(longChunks))
			}
		})
	}
}

func TestKalIsDeterministic(t *testing.T) {
	s := newSynth(t, "kal")
	a := flatten(collect(t, s, "Your balance is $1,234.56 as of March 3rd."))
	b := flatten(collect(t, s, "Your balance is $1,234.56 as of March 3rd."))
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("lengths %d and %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("kal output differs at sample %d", i)
		}
	}
}

func TestSynthesizeStreams(t *testing.T) {
	// Audio comes in many small chunks, the first one a small part of the
	// first sentence (so it was handed out before the sentence was done;
	// TestSynthesizeCancel shows flite stops when emit says so).
	s := newSynth(t, "slt")
	text := "Thank you for calling. Your payment of $45.20 was received on 03/12/2024. Is there anything else I can help you with today?"
	var order []int
	err := s.Synthesize(context.Background(), text, func(pcm []int16) error {
		order = append(order, len(pcm))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	utts, _ := s.Utterances(text)
	if len(utts) != 3 {
		t.Fatalf("utterances %q, want 3", utts)
	}
	if len(order) < 3*5 {
		t.Errorf("%d chunks for 3 sentences; want several per sentence", len(order))
	}
	total := 0
	for i, n := range order {
		total += n
		if n <= 0 || n > s.SampleRate()/10 {
			t.Fatalf("chunk %d has %d samples; want small streamed chunks", i, n)
		}
	}
	if order[0]*20 > total {
		t.Errorf("first chunk %d of %d samples", order[0], total)
	}
}

func TestSynthesizeCancel(t *testing.T) {
	s := newSynth(t, "slt")
	long := strings.Repeat("This sentence is here to make the text long. ", 20)
	full := len(flatten(collect(t, s, long)))

	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		got := 0
		err := s.Synthesize(ctx, long, func(pcm []int16) error {
			got += len(pcm)
			if got > 4000 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
		if got >= full/4 {
			t.Errorf("emitted %d of %d samples after cancel", got, full)
		}
	})
	t.Run("emit error", func(t *testing.T) {
		stop := errors.New("barge-in")
		calls, got := 0, 0
		err := s.Synthesize(context.Background(), long, func(pcm []int16) error {
			calls++
			got += len(pcm)
			if calls == 3 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) {
			t.Fatalf("err %v, want the emit error", err)
		}
		if calls != 3 {
			t.Errorf("emit called %d times after returning an error at call 3", calls)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := s.Synthesize(ctx, "Hello.", func([]int16) error {
			t.Error("emit called with a cancelled context")
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	})
	t.Run("panic in emit", func(t *testing.T) {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v, want the emit panic", v)
			}
		}()
		_ = s.Synthesize(context.Background(), "Hello there.", func([]int16) error { panic("boom") })
		t.Error("Synthesize returned after emit panicked")
	})
}

func TestSynthesizeEdgeInputs(t *testing.T) {
	s := newSynth(t, "kal")
	for _, in := range []string{"", "   ", "...", "日本語", "\x00\x01", "?!"} {
		called := false
		if err := s.Synthesize(context.Background(), in, func([]int16) error { called = true; return nil }); err != nil {
			t.Errorf("Synthesize(%q): %v", in, err)
		}
		if called {
			t.Errorf("Synthesize(%q) emitted audio for nothing speakable", in)
		}
	}
	if err := s.Synthesize(context.Background(), "hi", nil); err == nil {
		t.Error("nil emit accepted")
	}
}

func TestSynthesizeAllTruncates(t *testing.T) {
	s, err := New(Config{Voice: "kal", MaxChars: 200})
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("Please hold while I look that up. ", 20)
	pcm, err := s.SynthesizeAll(context.Background(), text)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err %v, want ErrTruncated", err)
	}
	full, err := New(Config{Voice: "kal"})
	if err != nil {
		t.Fatal(err)
	}
	all, err := full.SynthesizeAll(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	if len(pcm) == 0 || len(pcm) >= len(all)/2 {
		t.Errorf("truncated audio %d samples, full %d", len(pcm), len(all))
	}
}

func TestConcurrent(t *testing.T) {
	phrases := []string{
		"Your balance is $1,234.56 as of March 3rd.",
		"Please say or enter your account number.",
		"I am transferring you to an agent now.",
		"Our office is open 9am-5pm Mon-Fri.",
	}
	for _, voice := range []string{"slt", "kal"} {
		s, err := New(Config{Voice: voice, MaxConcurrent: 3, CacheBytes: -1})
		if err != nil {
			t.Fatal(err)
		}
		// Serial reference lengths: slt varies sample by sample between runs
		// but not in length; kal is bit-exact.
		want := make([][]int16, len(phrases))
		for i, p := range phrases {
			want[i] = flatten(collect(t, s, p))
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8*len(phrases))
		for g := range 8 {
			wg.Go(func() {
				for k := range phrases {
					i := (g + k) % len(phrases)
					got, err := s.SynthesizeAll(context.Background(), phrases[i])
					if err != nil {
						errs <- err
						return
					}
					if len(got) != len(want[i]) {
						errs <- errors.New(voice + ": length differs from the serial run: " + phrases[i])
						return
					}
					if voice == "kal" {
						for j := range got {
							if got[j] != want[i][j] {
								errs <- errors.New("kal: samples differ from the serial run: " + phrases[i])
								return
							}
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

func TestMaxConcurrentBounds(t *testing.T) {
	// emit runs inside flite's callback, so it runs while a slot is held:
	// no more than MaxConcurrent emits can be in flight at any moment.
	s, err := New(Config{Voice: "kal", MaxConcurrent: 2, CacheBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	active, peak := 0, 0
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			_ = s.Synthesize(context.Background(), "One moment please. Let me check that for you.", func([]int16) error {
				mu.Lock()
				active++
				peak = max(peak, active)
				mu.Unlock()
				runtime.Gosched()
				mu.Lock()
				active--
				mu.Unlock()
				return nil
			})
		})
	}
	wg.Wait()
	if peak > 2 {
		t.Errorf("%d syntheses ran at once with MaxConcurrent 2", peak)
	}
}

func TestUtterancesUseConfig(t *testing.T) {
	tests := []struct {
		cfg  Config
		in   string
		want []string
	}{
		{Config{Voice: "kal"}, "Due 12/03/2024.", []string{"Due December third, twenty twenty four."}},
		{Config{Voice: "kal", DayFirstDates: true}, "Due 12/03/2024.", []string{"Due March twelfth, twenty twenty four."}},
		{Config{Voice: "kal"}, "Your balance is $1,234.56 as of March 3rd. Anything else?", []string{
			"Your balance is one thousand two hundred thirty four dollars and fifty six cents",
			"as of March third.", "Anything else?"}},
	}
	for _, tt := range tests {
		s, err := New(tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, truncated := s.Utterances(tt.in)
		if truncated || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("Utterances(%q) with %+v = %q (truncated %v), want %q", tt.in, tt.cfg, got, truncated, tt.want)
		}
	}
}

func TestChunkSamples(t *testing.T) {
	for _, voice := range []string{"kal", "slt"} {
		s, err := New(Config{Voice: voice, ChunkSamples: 1600})
		if err != nil {
			t.Fatal(err)
		}
		chunks := collect(t, s, "Hello there, how are you doing today?")
		if len(chunks) < 3 {
			t.Fatalf("%s: %d chunks", voice, len(chunks))
		}
		for i, c := range chunks[:len(chunks)-1] {
			if len(c) < 1600 || len(c) > 2*1600 {
				t.Errorf("%s: chunk %d has %d samples, want about 1600", voice, i, len(c))
			}
		}
	}
}
