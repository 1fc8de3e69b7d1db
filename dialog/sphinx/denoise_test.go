package sphinx

import (
	"context"
	"math"
	"strings"

	"github.com/parley-ai/parley/dialog"
	"math/rand/v2"
	"testing"
)

// runDenoiser feeds pcm in chunks of n and returns all output.
func runDenoiser(d *denoiser, pcm []int16, n int) []int16 {
	var out []int16
	for off := 0; off < len(pcm); off += n {
		out = append(out, d.process(pcm[off:min(off+n, len(pcm))])...)
	}
	return append(out, d.flush()...)
}

func power(p []int16) float64 {
	var s float64
	for _, v := range p {
		s += float64(v) * float64(v)
	}
	return s / float64(max(len(p), 1))
}

// TestDenoiser checks that the filter keeps length and timing, passes a
// tone in silence almost unchanged, and takes most of steady white noise
// away while keeping a tone that stands above it.
func TestDenoiser(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 16000
	tone := func(i int) float64 { return 8000 * math.Sin(2*math.Pi*440*float64(i)/16000) }
	tests := []struct {
		name        string
		noise       float64 // white noise standard deviation
		toneFrom    int     // the tone starts here (after noise only)
		chunk       int
		minToneKeep float64 // output/input power of the tone part
		maxNoiseOut float64 // output/input power of the noise-only part
	}{
		{"clean tone", 0, 4000, 320, 0.9, 1.01},
		{"tone in noise", 800, 6000, 320, 0.8, 0.15},
		{"odd chunks", 800, 6000, 97, 0.8, 0.15},
		{"one sample chunks", 800, 6000, 1, 0.8, 0.15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := make([]int16, n)
			for i := range in {
				v := rng.NormFloat64() * tt.noise
				if i >= tt.toneFrom {
					v += tone(i)
				}
				in[i] = clip16(v)
			}
			out := runDenoiser(newDenoiser(0.1), in, tt.chunk)
			if len(out) != len(in) {
				t.Fatalf("output has %d samples, input %d", len(out), len(in))
			}
			noiseIn, noiseOut := power(in[2000:tt.toneFrom]), power(out[2000:tt.toneFrom])
			if tt.noise > 0 && noiseOut > tt.maxNoiseOut*noiseIn {
				t.Errorf("noise power %.0f -> %.0f, want at most x%.2f", noiseIn, noiseOut, tt.maxNoiseOut)
			}
			seg := in[tt.toneFrom+1000 : n-1000]
			oseg := out[tt.toneFrom+1000 : n-1000]
			if r := power(oseg) / power(seg); r < tt.minToneKeep || r > 1.1 {
				t.Errorf("tone power ratio %.3f, want %.2f..1.1", r, tt.minToneKeep)
			}
			// Timing: the output tone lines up with the input (correlation at lag 0).
			var c, a, b float64
			for i := range seg {
				c += float64(seg[i]) * float64(oseg[i])
				a += float64(seg[i]) * float64(seg[i])
				b += float64(oseg[i]) * float64(oseg[i])
			}
			if r := c / math.Sqrt(a*b); r < 0.9 {
				t.Errorf("output not aligned with input: correlation %.3f", r)
			}
		})
	}
	if out := newDenoiser(0.1).flush(); len(out) != 0 {
		t.Errorf("flush of an unused denoiser gave %d samples", len(out))
	}
}

// BenchmarkDenoiser measures one 20 ms chunk (320 samples at 16 kHz).
func BenchmarkDenoiser(b *testing.B) {
	d := newDenoiser(0.1)
	rng := rand.New(rand.NewPCG(1, 2))
	pcm := make([]int16, 320)
	for i := range pcm {
		pcm[i] = int16(rng.NormFloat64() * 1000)
	}
	d.process(pcm)
	b.ReportAllocs()
	for b.Loop() {
		d.process(pcm)
	}
}

// TestNoiseReductionRecognizer runs a recognizer with the noise reduction
// on: the lagging front end must still hand the decoder every sample
// (Finish flushes it), so clean speech comes out whole.
func TestNoiseReductionRecognizer(t *testing.T) {
	requireFlite(t)
	r, err := New(Config{DataDir: t.TempDir(), Sentences: kbSentences(t), MaxDecoders: 1, NoiseReduction: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		text string
		mode dialog.Mode
		want string
	}{
		{"I lost my credit card.", dialog.ModeOpen, "i lost my credit card"},
		// The last digit is only heard if Finish flushes the filter; a
		// leading insertion ("two seven ...") is tolerated here.
		{"7 3 1 9", dialog.ModeDigits, "seven three one nine"},
	} {
		pcm8 := phone(t, "kal", tc.text, 0)
		tr, err := r.TranscribePCM(context.Background(), pcm8, 8000, tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Text != tc.want && !strings.HasSuffix(tr.Text, " "+tc.want) {
			t.Errorf("got %q, want %q", tr.Text, tc.want)
		}
	}
}

// TestNoiseReductionDefault: the noise reduction is on by default and a
// negative NoiseReduction turns it off.
func TestNoiseReductionDefault(t *testing.T) {
	for _, tc := range []struct {
		set, want float64
	}{{0, DefaultNoiseReduction}, {-1, 0}, {0.3, 0.3}} {
		r, err := New(Config{DataDir: t.TempDir(), MaxDecoders: 1, NoiseReduction: tc.set})
		if err != nil {
			t.Fatal(err)
		}
		got := r.open.fe.denoise
		r.Close()
		if got != tc.want || r.digits.fe.denoise != tc.want {
			t.Errorf("NoiseReduction %g: gain floor %g, want %g", tc.set, got, tc.want)
		}
	}
}

// TestPadWithLineNoise: a recording that starts right on its speech is
// padded with its own background when that is white line noise, and with
// digital silence when the background is quiet.
func TestPadWithLineNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	make16 := func(noise float64) []int16 {
		// 0.05 s of background, 1 s of a loud modulated tone, 0.05 s of background.
		pcm := make([]int16, 17600)
		for i := range pcm {
			v := rng.NormFloat64() * noise
			if i >= 800 && i < 16800 {
				v += 6000 * math.Sin(2*math.Pi*300*float64(i)/16000) * (1 + math.Sin(2*math.Pi*3*float64(i)/16000))
			}
			pcm[i] = clip16(v)
		}
		return pcm
	}
	lead := func(p []int16) float64 { return power(p[:1600]) }
	noisy := prepareUtterance(make16(600))
	if len(noisy) < 17600+2*1600 {
		t.Fatalf("noisy: %d samples, want padding", len(noisy))
	}
	if lead(noisy) < 1e4 {
		t.Errorf("noisy recording padded with silence (lead power %.0f)", lead(noisy))
	}
	clean := prepareUtterance(make16(2))
	if lead(clean) > 100 {
		t.Errorf("clean recording padded with noise (lead power %.0f)", lead(clean))
	}
}

// TestTrimKeepsWeakSpeechInNoise: trimming keeps a weak word that stands
// 12 dB over the line noise before the loud part of the speech.
func TestTrimKeepsWeakSpeechInNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const noise = 300.0
	// 0.5 s noise, 0.3 s weak tone (12 dB over the noise), 0.2 s noise, 1 s loud tone, 0.5 s noise.
	pcm := make([]int16, 40000)
	for i := range pcm {
		v := rng.NormFloat64() * noise
		switch {
		case i >= 8000 && i < 12800:
			v += noise * 4 * math.Sqrt2 * math.Sin(2*math.Pi*250*float64(i)/16000)
		case i >= 16000 && i < 32000:
			v += 8000 * math.Sin(2*math.Pi*300*float64(i)/16000)
		}
		pcm[i] = clip16(v)
	}
	out := prepareUtterance(pcm)
	// The weak tone starts 0.5 s in: with it kept, the output starts at
	// most the 0.2 s margin before it, so it is longer than 1.9 s.
	if len(out) < 30400 {
		t.Fatalf("trimmed to %d samples: the weak speech was cut", len(out))
	}
}
