package sphinx

import (
	"math"
	"math/cmplx"
)

// Short-time spectral noise reduction (a decision-directed Wiener filter).
//
// pocketsphinx's own -remove_noise works on 25 wide mel bands; with 15 dB
// of line noise the quiet parts of speech (fricatives, word ends) stay
// buried and the open model guesses. This filter works on 31 Hz bins
// before the decoder: frames of 32 ms, half overlapped, with square-root
// Hann windows for analysis and synthesis (their product sums to one, so
// clean audio comes back unchanged up to the gain), the noise spectrum
// estimated from the first frames and then tracked in frames that are not
// louder than the noise, and a gain floor that keeps some noise rather than
// leaving the "musical" holes that hurt recognition more than noise does.
const (
	dnSize      = 512 // frame length (32 ms at 16 kHz), a power of two
	dnHop       = dnSize / 2
	dnBins      = dnSize/2 + 1
	dnInitN     = 6    // frames averaged for the first noise estimate
	dnTrack     = 0.95 // smoothing of the noise estimate in noise-like frames
	dnSpeechFac = 3.0  // a frame this much above the noise is not used to track it
	// Decision-directed smoothing of the a-priori SNR and noise
	// over-estimation, tuned on synthesized phone speech in 15 dB white
	// noise (eval_test.go; 2 voices x 30 questions): 0.98 and 1.0 gave
	// 50 % WER, 0.8 and 1.5 with a 0.1 floor 44 % (0.9: 45-46 %, 0.7: 46 %;
	// over-estimation 2-3 with 0.98: 59-61 %).
	dnDD   = 0.8
	dnOver = 1.5
)

// denoiser is the per-stream state of the noise reduction. Its output lags
// the input by up to dnSize samples; flush returns the rest at the end, so
// the output has exactly as many samples as the input.
type denoiser struct {
	floor  float64 // gain floor (0..1)
	win    [dnSize]float64
	in     [dnSize]float64 // last dnSize input samples
	fill   int             // new samples in in since the last frame
	ola    [dnSize]float64 // overlap-add accumulator
	noise  [dnBins]float64 // noise power per bin
	prevS  [dnBins]float64 // previous frame's estimated clean power
	frames int
	spec   [dnSize]complex128
	tw     [dnSize / 2]complex128
	out    []int16
	nIn    int // samples taken in
	nOut   int // samples given out
}

// newDenoiser prepares a denoiser with gain floor floor.
func newDenoiser(floor float64) *denoiser {
	d := &denoiser{floor: floor}
	for i := range d.win {
		d.win[i] = math.Sqrt(0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/dnSize))
	}
	for i := range d.tw {
		d.tw[i] = cmplx.Exp(complex(0, -2*math.Pi*float64(i)/dnSize))
	}
	return d
}

// process filters pcm and returns the output that is ready (reusing an
// internal buffer: valid until the next call).
func (d *denoiser) process(pcm []int16) []int16 {
	d.out = d.out[:0]
	d.nIn += len(pcm)
	for len(pcm) > 0 {
		n := min(dnHop-d.fill, len(pcm))
		copy(d.in[:], d.in[n:])
		for i, v := range pcm[:n] {
			d.in[dnSize-n+i] = float64(v)
		}
		d.fill += n
		pcm = pcm[n:]
		if d.fill == dnHop {
			d.fill = 0
			d.frame()
		}
	}
	return d.out
}

// flush pushes the buffered tail out by feeding silence.
func (d *denoiser) flush() []int16 {
	want := d.nIn - d.nOut
	if want <= 0 {
		return nil
	}
	var z [dnHop]int16
	out := make([]int16, 0, want+dnSize)
	for len(out) < want {
		out = append(out, d.process(z[:dnHop-d.fill])...)
	}
	return out[:want]
}

// frame filters the window in d.in and emits dnHop samples.
func (d *denoiser) frame() {
	for i := range d.spec {
		d.spec[i] = complex(d.in[i]*d.win[i], 0)
	}
	fft(d.spec[:], d.tw[:])
	var pw [dnBins]float64
	var e, en float64
	for k := 0; k < dnBins; k++ {
		c := d.spec[k]
		pw[k] = real(c)*real(c) + imag(c)*imag(c)
		e += pw[k]
		en += d.noise[k]
	}
	d.frames++
	switch {
	case d.frames <= dnInitN:
		for k := range pw {
			d.noise[k] += (pw[k] - d.noise[k]) / float64(d.frames)
		}
	case e < dnSpeechFac*en:
		for k := range pw {
			d.noise[k] = dnTrack*d.noise[k] + (1-dnTrack)*pw[k]
		}
	}
	for k := 0; k < dnBins; k++ {
		nk := dnOver*d.noise[k] + 1e-3
		post := pw[k] / nk
		prio := dnDD*d.prevS[k]/nk + (1-dnDD)*math.Max(post-1, 0)
		g := prio / (1 + prio)
		if g < d.floor {
			g = d.floor
		}
		d.prevS[k] = g * g * pw[k]
		d.spec[k] *= complex(g, 0)
		if k > 0 && k < dnSize/2 {
			d.spec[dnSize-k] = cmplx.Conj(d.spec[k])
		}
	}
	// Inverse transform as the forward one of the conjugate: only the real
	// part is used, which conjugation leaves alone.
	for i := range d.spec {
		d.spec[i] = cmplx.Conj(d.spec[i])
	}
	fft(d.spec[:], d.tw[:])
	for i := range d.ola {
		d.ola[i] += real(d.spec[i]) / dnSize * d.win[i]
	}
	// The first frame's first half lies before the stream began.
	if d.frames > 1 {
		for i := 0; i < dnHop; i++ {
			d.out = append(d.out, clip16(d.ola[i]))
		}
		d.nOut += dnHop
	}
	copy(d.ola[:], d.ola[dnHop:])
	clear(d.ola[dnSize-dnHop:])
}

// fft is an in-place iterative radix-2 forward FFT of len(x) (a power of
// two) with twiddles tw[i] = exp(-2πi·i/len(x)).
func fft(x []complex128, tw []complex128) {
	n := len(x)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		half, step := size/2, n/size
		for start := 0; start < n; start += size {
			blk := x[start : start+size]
			for k := 0; k < half; k++ {
				a, b := blk[k], blk[k+half]*tw[k*step]
				blk[k], blk[k+half] = a+b, a-b
			}
		}
	}
}
