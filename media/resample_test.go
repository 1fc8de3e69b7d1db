package media

import (
	"math"
	"testing"
)

func sine(n, rate int, freq, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// toneFit returns the amplitude of freq in x (least squares over sin/cos)
// and the SNR in dB of x against that fitted tone.
func toneFit(x []int16, rate int, freq float64) (amp, snr float64) {
	var ss, cc, sc, xs, xc float64
	for i, v := range x {
		w := 2 * math.Pi * freq * float64(i) / float64(rate)
		s, c := math.Sin(w), math.Cos(w)
		ss += s * s
		cc += c * c
		sc += s * c
		xs += float64(v) * s
		xc += float64(v) * c
	}
	det := ss*cc - sc*sc
	a := (xs*cc - xc*sc) / det
	b := (xc*ss - xs*sc) / det
	var sig, noise float64
	for i, v := range x {
		w := 2 * math.Pi * freq * float64(i) / float64(rate)
		fit := a*math.Sin(w) + b*math.Cos(w)
		sig += fit * fit
		d := float64(v) - fit
		noise += d * d
	}
	return math.Hypot(a, b), 10 * math.Log10(sig/math.Max(noise, 1e-9))
}

func rms(x []int16) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(max(len(x), 1)))
}

func TestResampleKeepsTone(t *testing.T) {
	tests := []struct {
		in, out int
		freq    float64
	}{
		{8000, 16000, 1000},
		{16000, 8000, 1000},
		{8000, 48000, 3000},
		{48000, 8000, 440},
		{24000, 8000, 2500},
		{22050, 8000, 1000},
		{16000, 22050, 3000},
		{8000, 11025, 3300},
		{44100, 48000, 5000},
		{8000, 8000, 1000},
	}
	for _, tt := range tests {
		x := sine(tt.in, tt.in, tt.freq, 16000) // one second
		y := Resample(x, tt.in, tt.out)
		wantLen := (len(x)*tt.out + tt.in - 1) / tt.in
		if len(y) != wantLen {
			t.Errorf("%d->%d: %d samples, want %d", tt.in, tt.out, len(y), wantLen)
			continue
		}
		// Ignore the edges where the filter sees the start/end of the signal.
		edge := tt.out / 50
		amp, snr := toneFit(y[edge:len(y)-edge], tt.out, tt.freq)
		// toneFit's phase is relative to the slice start; shift by edge is
		// absorbed in the fitted phase, so only amplitude and SNR matter.
		if math.Abs(amp-16000) > 16000*0.01 {
			t.Errorf("%d->%d %gHz: amplitude %.0f, want 16000", tt.in, tt.out, tt.freq, amp)
		}
		t.Logf("%d->%d %gHz: amplitude %.1f SNR %.1f dB", tt.in, tt.out, tt.freq, amp, snr)
		if snr < 60 {
			t.Errorf("%d->%d %gHz: SNR %.1f dB, want >= 60", tt.in, tt.out, tt.freq, snr)
		}
	}
}

func TestResampleRoundTrip8k16k8k(t *testing.T) {
	for _, freq := range []float64{300, 1000, 2000, 3000} {
		x := sine(8000, 8000, freq, 12000)
		up := Resample(x, 8000, 16000)
		back := Resample(up, 16000, 8000)
		if len(back) != len(x) {
			t.Fatalf("round trip length %d, want %d", len(back), len(x))
		}
		// The chain has no delay, so the output must match the input
		// sample by sample away from the edges.
		var sig, noise float64
		for i := 200; i < len(x)-200; i++ {
			d := float64(back[i]) - float64(x[i])
			sig += float64(x[i]) * float64(x[i])
			noise += d * d
		}
		snr := 10 * math.Log10(sig/noise)
		t.Logf("%g Hz: 8k->16k->8k SNR %.1f dB", freq, snr)
		if snr < 50 {
			t.Errorf("%g Hz: round-trip SNR %.1f dB, want >= 50", freq, snr)
		}
		_, toneSNR := toneFit(back[200:len(back)-200], 8000, freq)
		if toneSNR < 55 {
			t.Errorf("%g Hz: tone SNR after round trip %.1f dB", freq, toneSNR)
		}
	}
}

func TestResampleAntiAliasing(t *testing.T) {
	tests := []struct {
		in, out int
		freq    float64
	}{
		{16000, 8000, 6000},
		{16000, 8000, 4300},
		{48000, 8000, 11000},
		{48000, 8000, 4400},
		{22050, 8000, 5000},
		{24000, 16000, 9000},
	}
	for _, tt := range tests {
		x := sine(tt.in, tt.in, tt.freq, 16000)
		y := Resample(x, tt.in, tt.out)
		edge := tt.out / 20
		got := rms(y[edge : len(y)-edge])
		att := 20 * math.Log10(got/(16000/math.Sqrt2))
		t.Logf("%d->%d: %g Hz alias %.1f dB", tt.in, tt.out, tt.freq, att)
		if att > -60 {
			t.Errorf("%d->%d: %g Hz tone only %.1f dB down, want <= -60", tt.in, tt.out, tt.freq, att)
		}
	}
}

func TestResampleStreamingEqualsOneShot(t *testing.T) {
	pairs := [][2]int{{8000, 16000}, {16000, 8000}, {48000, 8000}, {8000, 48000}, {22050, 8000}, {24000, 8000}, {16000, 16000}, {8000, 44101}}
	for _, p := range pairs {
		x := make([]int16, p[0]*3/2+13)
		seed := uint32(7)
		for i := range x {
			seed = seed*1664525 + 1013904223
			x[i] = int16(seed>>16) / 2
		}
		want := Resample(x, p[0], p[1])
		r := NewResampler(p[0], p[1])
		for run := 0; run < 2; run++ { // second run checks that Flush resets
			var got []int16
			frame := FrameSamples(p[0])
			for i := 0; i < len(x); i += frame {
				got = r.Process(got, x[i:min(i+frame, len(x))])
			}
			got = r.Flush(got)
			if !equalInt16(got, want) {
				t.Fatalf("%d->%d run %d: streaming (%d samples) differs from one-shot (%d)", p[0], p[1], run, len(got), len(want))
			}
		}
		// Uneven chunk sizes give the same result too.
		r.Reset()
		var got []int16
		for i, n := 0, 1; i < len(x); i, n = i+n, n%97+1 {
			got = r.Process(got, x[i:min(i+n, len(x))])
		}
		got = r.Flush(got)
		if !equalInt16(got, want) {
			t.Fatalf("%d->%d: uneven chunks differ from one-shot", p[0], p[1])
		}
	}
}

func TestResampleDCAndSilence(t *testing.T) {
	for _, p := range [][2]int{{8000, 16000}, {16000, 8000}, {22050, 8000}, {8000, 44101}} {
		x := make([]int16, p[0])
		for i := range x {
			x[i] = 10000
		}
		y := Resample(x, p[0], p[1])
		edge := p[1] / 10
		for i := edge; i < len(y)-edge; i++ {
			if y[i] < 9999 || y[i] > 10001 {
				t.Fatalf("%d->%d: DC 10000 became %d at %d", p[0], p[1], y[i], i)
			}
		}
		z := Resample(make([]int16, 1000), p[0], p[1])
		for _, v := range z {
			if v != 0 {
				t.Fatalf("%d->%d: silence became %d", p[0], p[1], v)
			}
		}
	}
	if got := Resample(nil, 8000, 16000); len(got) != 0 {
		t.Fatalf("empty input gave %d samples", len(got))
	}
}

func TestResampleClipsWithoutWrap(t *testing.T) {
	// A full-scale square wave overshoots after filtering; it must clip,
	// not wrap around to the opposite sign.
	x := make([]int16, 1600)
	for i := range x {
		if (i/20)%2 == 0 {
			x[i] = 32767
		} else {
			x[i] = -32768
		}
	}
	y := Resample(x, 8000, 16000)
	for i := 40; i < len(y)-40; i++ {
		want := x[i/2]
		if (want > 0) != (y[i] > 0) && i%40 > 4 && i%40 < 36 {
			t.Fatalf("sample %d = %d, input %d: wrapped", i, y[i], want)
		}
	}
}

func TestResampleOddRatesStayBounded(t *testing.T) {
	// An odd input rate against 1 kHz would need 1000 phases of 12800
	// taps if computed exactly; the table must stay within its bound and
	// the output must still be the right tone.
	r := NewResampler(199999, 1000)
	if n := len(r.f.coef); n > resamplerMaxCoefs+2*r.f.taps {
		t.Fatalf("filter table has %d coefficients", n)
	}
	if !r.f.interp {
		t.Fatal("huge table not switched to interpolation")
	}
	x := sine(199999/5, 199999, 100, 10000)
	y := r.Flush(r.Process(nil, x))
	if len(y) != 200 {
		t.Fatalf("%d samples, want 200", len(y))
	}
	amp, snr := toneFit(y[40:160], 1000, 100)
	if math.Abs(amp-10000) > 200 || snr < 40 {
		t.Fatalf("100 Hz tone through 199999->1000: amplitude %.0f SNR %.1f dB", amp, snr)
	}
}

func TestNewResamplerPanicsOnBadRate(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for rate 0")
		}
	}()
	NewResampler(0, 8000)
}

func benchResampler(b *testing.B, in, out int) {
	r := NewResampler(in, out)
	src := sine(FrameSamples(in), in, 1000, 10000)
	dst := make([]int16, 0, FrameSamples(out)+8)
	dst = r.Process(dst[:0], src) // warm up the internal buffer
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		dst = r.Process(dst[:0], src)
	}
}

func BenchmarkResamplerProcess8kTo16k(b *testing.B)   { benchResampler(b, 8000, 16000) }
func BenchmarkResamplerProcess16kTo8k(b *testing.B)   { benchResampler(b, 16000, 8000) }
func BenchmarkResamplerProcess48kTo8k(b *testing.B)   { benchResampler(b, 48000, 8000) }
func BenchmarkResamplerProcess24kTo8k(b *testing.B)   { benchResampler(b, 24000, 8000) }
func BenchmarkResamplerProcess22050To8k(b *testing.B) { benchResampler(b, 22050, 8000) }

// FuzzResamplerChunking checks that any split of the input into chunks
// gives the one-shot result, for a few rate pairs.
func FuzzResamplerChunking(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, uint8(0), uint8(3))
	f.Add(make([]byte, 640), uint8(2), uint8(160))
	pairs := [][2]int{{8000, 16000}, {16000, 8000}, {24000, 8000}, {22050, 16000}, {8000, 44101}}
	f.Fuzz(func(t *testing.T, raw []byte, pair, chunk uint8) {
		p := pairs[int(pair)%len(pairs)]
		x := make([]int16, len(raw)/2)
		for i := range x {
			x[i] = int16(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
		}
		want := Resample(x, p[0], p[1])
		r := NewResampler(p[0], p[1])
		var got []int16
		step := int(chunk)%200 + 1
		for i := 0; i < len(x); i += step {
			got = r.Process(got, x[i:min(i+step, len(x))])
		}
		got = r.Flush(got)
		if !equalInt16(got, want) {
			t.Fatalf("%v chunk %d: streaming differs from one-shot", p, step)
		}
	})
}
