package sphinx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-ai/parley/dialog"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// requireFlite fails (never skips) when the flite CLI is missing: the test
// command installs it, and a skipped test would count as passed.
func requireFlite(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("flite"); err != nil {
		t.Fatalf("flite CLI not found (apt-get install flite): %v", err)
	}
}

// phone speaks text with a voice through the phone channel (8 kHz).
func phone(t testing.TB, voice, text string, snrDB float64) []int16 {
	t.Helper()
	pcm, rate := synth(t, voice, text)
	return phoneChannel(pcm, rate, snrDB, 1)
}

// TestGoldenPhrases gives each phrase a new recognizer: a decoder's live
// cepstral mean adapts to what it heard before, so exact strings need a
// fixed history (speech-stack.md §7).
func TestGoldenPhrases(t *testing.T) {
	requireFlite(t)
	tests := []struct {
		voice, text string
		mode        dialog.Mode
		want        string
	}{
		{"kal", "My card was stolen.", dialog.ModeOpen, "my card was stolen"},
		{"kal", "I forgot my pin.", dialog.ModeOpen, "i forgot my pin"},
		{"kal", "I want to speak to an agent.", dialog.ModeOpen, "i want to speak to an agent"},
		{"slt", "Please block my card right now.", dialog.ModeOpen, "please block my card right now"},
		{"kal", "1 2 3 4", dialog.ModeDigits, "one two three four"},
		{"kal", "Yes.", dialog.ModeYesNo, "yes"},
		{"kal", "No thank you.", dialog.ModeYesNo, "no thank you"},
		{"kal", "I lost my card.", dialog.ModeYesNo, "i lost my card"},
	}
	for _, tt := range tests {
		t.Run(tt.voice+"/"+tt.want, func(t *testing.T) {
			t.Parallel()
			r := newTestRecognizer(t, 1)
			tr, err := r.TranscribePCM(context.Background(), phone(t, tt.voice, tt.text, 0), 8000, tt.mode)
			if err != nil {
				t.Fatalf("TranscribePCM: %v", err)
			}
			if tr.Text != tt.want {
				t.Fatalf("got %q (confidence %.2f), want %q", tr.Text, tr.Confidence, tt.want)
			}
			if len(tr.Words) != len(strings.Fields(tt.want)) {
				t.Fatalf("got %d words, want %d", len(tr.Words), len(strings.Fields(tt.want)))
			}
			for i, w := range tr.Words {
				if w.Confidence < 0 || w.Confidence > 1 || w.End <= w.Start || (i > 0 && w.Start < tr.Words[i-1].End) {
					t.Fatalf("bad word %d: %+v", i, w)
				}
			}
		})
	}
}

// TestStreaming feeds a phrase the way a call does: 20 ms chunks of 16 kHz
// audio, upsampled frame by frame.
func TestStreaming(t *testing.T) {
	requireFlite(t)
	r := newTestRecognizer(t, 1)
	pcm8 := phone(t, "kal", "I lost my credit card.", 0)
	st, err := r.Start(context.Background(), dialog.ModeOpen)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	up := newUpsampler()
	silence := make([]int16, 160)
	for range 10 { // 200 ms of line silence before the caller speaks
		if err := st.Write(up(silence)); err != nil {
			t.Fatal(err)
		}
	}
	for off := 0; off < len(pcm8); off += 160 {
		if err := st.Write(up(pcm8[off:min(off+160, len(pcm8))])); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		if err := st.Write(up(silence)); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := st.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if tr.Text != "i lost my credit card" {
		t.Fatalf("got %q", tr.Text)
	}
	if err := st.Write(silence); err == nil {
		t.Fatal("Write after Finish succeeded")
	}
	if _, err := st.Finish(); err == nil {
		t.Fatal("second Finish succeeded")
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close after Finish: %v", err)
	}
}

func TestConfidenceOrdering(t *testing.T) {
	requireFlite(t)
	r := newTestRecognizer(t, 2)
	ctx := context.Background()
	conf := func(t *testing.T, pcm8 []int16) (float64, string) {
		t.Helper()
		tr, err := r.TranscribePCM(ctx, pcm8, 8000, dialog.ModeOpen)
		if err != nil {
			t.Fatal(err)
		}
		return tr.Confidence, tr.Text
	}
	var inVocab []float64
	for _, s := range []string{"My card was stolen.", "I forgot my PIN.", "What is my account balance?", "I want to make a payment."} {
		c, text := conf(t, phone(t, "kal", s, 0))
		t.Logf("in-vocabulary %q -> %q %.2f", s, text, c)
		inVocab = append(inVocab, c)
	}
	lowest := slices.Min(inVocab)
	rng := rand.New(rand.NewPCG(3, 4))
	cases := map[string][]int16{}
	for i, amp := range []float64{300, 3000} {
		n := make([]int16, 12000+4000*i)
		for j := range n {
			n[j] = clip16(rng.NormFloat64() * amp)
		}
		cases["white noise "+strings.Repeat("loud", i)] = n
	}
	for _, s := range []string{"The quick brown fox jumps over the lazy dog.", "My grandmother grows tomatoes in her garden."} {
		cases["out of vocabulary: "+s] = phone(t, "kal", s, 0)
		rev := phone(t, "kal", s, 0)
		slices.Reverse(rev)
		cases["mumbling (reversed): "+s] = rev
	}
	for name, pcm := range cases {
		c, text := conf(t, pcm)
		t.Logf("%s -> %q %.2f", name, text, c)
		if c >= lowest {
			t.Errorf("%s: confidence %.2f not below the lowest in-vocabulary %.2f (%q)", name, c, lowest, text)
		}
		if c > 0.3 {
			t.Errorf("%s: confidence %.2f, want <= 0.3", name, c)
		}
	}
	if lowest < 0.4 {
		t.Errorf("in-vocabulary confidences %v, want all >= 0.4", inVocab)
	}
}

// TestWordTimesOnReusedDecoder decodes one recording three times on the
// same pooled decoder: pocketsphinx numbers frames from the start of the
// decoder's stream, and the words must still be timed from the start of
// their own utterance.
func TestWordTimesOnReusedDecoder(t *testing.T) {
	requireFlite(t)
	r := newTestRecognizer(t, 1)
	pcm := phone(t, "kal", "What are your opening hours?", 0)
	dur := time.Duration(len(pcm)) * time.Second / 8000
	var first dialog.Transcript
	for i := range 3 {
		tr, err := r.TranscribePCM(context.Background(), pcm, 8000, dialog.ModeOpen)
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.Words) == 0 {
			t.Fatalf("utterance %d: no words", i)
		}
		last := tr.Words[len(tr.Words)-1]
		// prepareUtterance keeps or pads 0.2 s of silence at each end.
		if last.End > dur+600*time.Millisecond {
			t.Fatalf("utterance %d: last word ends at %v, the audio lasts %v", i, last.End, dur)
		}
		if i == 0 {
			first = tr
			continue
		}
		if len(tr.Words) != len(first.Words) {
			t.Fatalf("utterance %d: %q, first was %q", i, tr.Text, first.Text)
		}
		for j, w := range tr.Words {
			if d := w.Start - first.Words[j].Start; d < -30*time.Millisecond || d > 30*time.Millisecond {
				t.Fatalf("utterance %d: %q starts at %v, %v in the first decoding", i, w.Text, w.Start, first.Words[j].Start)
			}
		}
	}
}

func TestPool(t *testing.T) {
	r, err := New(Config{DataDir: t.TempDir(), Sentences: []string{"check my balance"}, MaxDecoders: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	s1, err := r.start(ctx, dialog.ModeOpen, false)
	if err != nil {
		t.Fatal(err)
	}
	if s1.d == nil {
		t.Fatal("first stream got no decoder although one was idle")
	}
	// The second stream finds no idle decoder: it buffers while the spare
	// is made in the background, and takes it on a later Write.
	s2, err := r.start(ctx, dialog.ModeDigits, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; s2.attached() == nil; i++ {
		if i == 1000 {
			t.Fatal("no spare decoder after 1000 writes")
		}
		if err := s2.Write(make([]int16, 320)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Both decoders are taken: a third stream starts at once, buffers its
	// audio, and its Finish waits for a decoder.
	s3, err := r.start(ctx, dialog.ModeOpen, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.Write(make([]int16, 1600)); err != nil {
		t.Fatal(err)
	}
	if s3.attached() != nil || len(s3.backlog) == 0 {
		t.Fatalf("third stream: decoder %v, backlog %d; want none and buffered audio", s3.attached(), len(s3.backlog))
	}
	if p, err := s3.Partial(); p != "" || err != nil {
		t.Fatalf("Partial while waiting: %q, %v", p, err)
	}
	// A waiting stream whose context ends fails in Finish.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	s4, err := r.start(short, dialog.ModeOpen, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s4.Finish(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Finish without a decoder: got %v, want deadline exceeded", err)
	}
	// A waiting stream whose context lives on still fails after
	// finishWait rather than waiting for good.
	defer func(w time.Duration) { finishWait = w }(finishWait)
	finishWait = 50 * time.Millisecond
	s6, err := r.start(ctx, dialog.ModeOpen, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s6.Write(make([]int16, 1600)); err != nil {
		t.Fatal(err)
	}
	if _, err := s6.Finish(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Finish without a decoder past finishWait: got %v, want deadline exceeded", err)
	}
	finishWait = time.Minute
	// A waiting stream buffers at most maxBacklog.
	s5, err := r.start(ctx, dialog.ModeOpen, false)
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		err = s5.Write(make([]int16, 16000))
	}
	if !errors.Is(err, errNoDecoder) || s5.samples > maxBacklog+16000 {
		t.Fatalf("after %d samples without a decoder: %v", s5.samples, err)
	}
	if err := s5.Close(); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if _, err := r.Start(cctx, dialog.ModeOpen); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with canceled ctx: got %v", err)
	}
	// The waiting Finish gets the decoder as soon as a stream finishes.
	got := make(chan error, 1)
	go func() {
		_, err := s3.Finish()
		got <- err
	}()
	if err := s1.Write(make([]int16, 1600)); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("waiting Finish: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	r.poolMu.Lock()
	idle, made := len(r.idle), r.made
	r.poolMu.Unlock()
	if idle != 2 || made != 2 || len(r.sem) != 0 {
		t.Fatalf("after all streams: %d idle decoders of %d, %d taken; want 2 idle of 2, 0 taken", idle, made, len(r.sem))
	}
	// Many goroutines share the pool without exceeding it.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := r.Start(ctx, dialog.Mode(i%3))
			if err != nil {
				t.Error(err)
				return
			}
			if n := len(r.sem); n > 2 {
				t.Errorf("%d decoders in use, max 2", n)
			}
			r.poolMu.Lock()
			made := r.made
			r.poolMu.Unlock()
			if made > 2 {
				t.Errorf("%d decoders made, max 2", made)
			}
			_ = s.Write(make([]int16, 320))
			if _, err := s.Finish(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.Start(ctx, dialog.ModeOpen); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: got %v, want ErrClosed", err)
	}
	if err := r.Rebuild([]string{"x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Rebuild after Close: got %v, want ErrClosed", err)
	}
}

func TestPreload(t *testing.T) {
	r, err := New(Config{DataDir: t.TempDir(), Sentences: []string{"check my balance"}, MaxDecoders: 3, Preload: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The background loads fill the pool up to MaxDecoders, not Preload.
	r.poolMu.Lock()
	for len(r.idle) < 3 {
		r.poolCond.Wait()
	}
	made := r.made
	r.poolMu.Unlock()
	if made != 3 {
		t.Fatalf("%d decoders made, want 3", made)
	}
	for range 3 {
		s, err := r.start(context.Background(), dialog.ModeOpen, false)
		if err != nil {
			t.Fatal(err)
		}
		if s.attached() == nil {
			t.Fatal("a stream found no preloaded decoder")
		}
		defer s.Close()
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCloseWithActiveStream frees a decoder that is still in use when its
// stream ends after the recognizer closed.
func TestCloseWithActiveStream(t *testing.T) {
	r, err := New(Config{DataDir: t.TempDir(), MaxDecoders: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Start(context.Background(), dialog.ModeOpen)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(make([]int16, 320)); err != nil {
		t.Fatalf("Write on a stream started before Close: %v", err)
	}
	if _, err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	if len(r.idle) != 0 {
		t.Fatalf("%d decoders kept after Close", len(r.idle))
	}
}

func TestRebuild(t *testing.T) {
	requireFlite(t)
	dir := t.TempDir()
	// Without the caller corpus, which knows "mortgage" already.
	r, err := New(Config{DataDir: dir, Sentences: []string{"what is my balance", "i lost my card"}, MaxDecoders: 1, NoCallerCorpus: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	pcm8 := phone(t, "kal", "I need a mortgage for my house.", 0)
	before, err := r.TranscribePCM(ctx, pcm8, 8000, dialog.ModeOpen)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(before.Text, "mortgage") {
		t.Fatalf("mortgage recognized before Rebuild: %q", before.Text)
	}
	// A stream started before Rebuild finishes with the old model.
	old, err := r.Start(ctx, dialog.ModeOpen)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Rebuild([]string{"i need a mortgage for my house", "what is my mortgage rate"}); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if err := old.Write(make([]int16, 1600)); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Finish(); err != nil {
		t.Fatal(err)
	}
	after, err := r.TranscribePCM(ctx, pcm8, 8000, dialog.ModeOpen)
	if err != nil {
		t.Fatal(err)
	}
	if after.Text != "i need a mortgage for my house" {
		t.Fatalf("after Rebuild got %q", after.Text)
	}
	// Two generations at most stay on disk.
	for range 3 {
		if err := r.Rebuild([]string{"what is my mortgage rate"}); err != nil {
			t.Fatal(err)
		}
	}
	gens, err := filepath.Glob(filepath.Join(dir, "sphinx", "model-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(gens) != 2 {
		t.Fatalf("model generations on disk: %v, want 2", gens)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if gens, _ := filepath.Glob(filepath.Join(dir, "sphinx", "model-*")); len(gens) != 0 {
		t.Fatalf("model files left after Close: %v", gens)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no data dir", Config{}},
		{"missing model", Config{DataDir: t.TempDir(), ModelDir: filepath.Join(t.TempDir(), "nope")}},
		{"bad cmninit", Config{DataDir: t.TempDir(), CMNInit: "1,2,3"}},
		{"cmninit not numbers", Config{DataDir: t.TempDir(), CMNInit: "a,b,c,d,e,f,g,h,i,j,k,l,m"}},
		{"noise floor one", Config{DataDir: t.TempDir(), NoiseReduction: 1}},
		{"noise floor NaN", Config{DataDir: t.TempDir(), NoiseReduction: math.NaN()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, err := New(tt.cfg); err == nil {
				r.Close()
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestTranscribePCMEdges(t *testing.T) {
	r, err := New(Config{DataDir: t.TempDir(), MaxDecoders: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if _, err := r.TranscribePCM(ctx, make([]int16, 100), 0, dialog.ModeOpen); err == nil {
		t.Fatal("rate 0 accepted")
	}
	for _, n := range []int{0, 1, 159, 8000} {
		tr, err := r.TranscribePCM(ctx, make([]int16, n), 8000, dialog.ModeOpen)
		if err != nil {
			t.Fatalf("%d samples of silence: %v", n, err)
		}
		if tr.Text != "" || tr.Confidence != 0 {
			t.Fatalf("%d samples of silence: got %q %.2f", n, tr.Text, tr.Confidence)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.TranscribePCM(cctx, make([]int16, 8000), 8000, dialog.ModeOpen); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled ctx: got %v", err)
	}
	if r.SampleRate() != 16000 {
		t.Fatalf("SampleRate %d", r.SampleRate())
	}
}

func TestDataDirFiles(t *testing.T) {
	dir := t.TempDir()
	r, err := New(Config{DataDir: dir, Sentences: []string{"Where's my cashback?", "I need an OTP for autopay", "xqzzyv"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	gen := filepath.Join(dir, "sphinx", "model-1")
	fp, err := os.ReadFile(filepath.Join(gen, "feat.params"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fp), "-cmninit "+phoneCMNInit) || strings.Count(string(fp), "-cmninit") != 1 {
		t.Fatalf("feat.params lacks the phone cmninit:\n%s", fp)
	}
	if !slices.Equal(r.Dropped(), []string{"xqzzyv"}) {
		t.Fatalf("Dropped %v", r.Dropped())
	}
	for _, w := range []string{"cashback", "otp", "autopay"} {
		if !slices.Contains(r.Guessed(), w) {
			t.Errorf("Guessed %v lacks %q", r.Guessed(), w)
		}
	}
	arpa, err := os.ReadFile(filepath.Join(gen, "domain.arpa"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(arpa), "xqzzyv") {
		t.Fatal("dropped word in the language model")
	}
}

// BenchmarkStreamWrite measures one 20 ms frame through the front end and
// the decoder in steady state (the per-frame hot path); it must not allocate.
func BenchmarkStreamWrite(b *testing.B) {
	requireFlite(b)
	r := newTestRecognizer(b, 1)
	up := newUpsampler()
	var pcm16 []int16
	for _, v := range phone(b, "kal", "I want to transfer money to my savings account.", 0) {
		pcm16 = append(pcm16, up([]int16{v})...)
	}
	frames := len(pcm16) / 320
	b.ReportAllocs()
	st, err := r.Start(context.Background(), dialog.ModeOpen)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if i == frames { // a new utterance every time the phrase ends
			if _, err := st.Finish(); err != nil {
				b.Fatal(err)
			}
			if st, err = r.Start(context.Background(), dialog.ModeOpen); err != nil {
				b.Fatal(err)
			}
			i = 0
		}
		if err := st.Write(pcm16[i*320 : (i+1)*320]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	st.Close()
}

// BenchmarkFrontEnd measures the per-frame signal processing alone,
// without and with the noise reduction.
func BenchmarkFrontEnd(b *testing.B) {
	for _, floor := range []float64{0, 0.3} {
		b.Run(fmt.Sprintf("noise-floor-%g", floor), func(b *testing.B) {
			s := defaultFrontEnd(floor).newState()
			frame := make([]int16, 320)
			for i := range frame {
				frame[i] = int16(i * 37 % 2000)
			}
			s.process(frame)
			b.ReportAllocs()
			for b.Loop() {
				s.process(frame)
			}
		})
	}
}
