package media

import (
	"fmt"
	"math"
	"sync"
)

// Resampler design: a polyphase windowed-sinc filter (Kaiser window,
// beta 7.0, about 70 dB stopband) evaluated on the exact rational ratio
// L/M = outRate/inRate reduced by their GCD. Each output sample at input
// time t = n*M/L is the dot product of the input around t with the filter
// phase for t's fractional part. The cutoff sits at 0.93 of the lower of
// the two Nyquist frequencies, so the passband is flat to about 0.86 of it
// (3.4 kHz at 8 kHz) and everything above the output Nyquist is at least
// 60 dB down. When L is small (every usual telephony pair) the filter keeps
// one coefficient set per phase; for unusual ratios with huge L it keeps
// resamplerInterpPhases sets and interpolates linearly between them.
// Filter tables are immutable and shared between resamplers with the same
// ratio, so a call that creates a resampler per leg pays for them once.
const (
	resamplerZeroCrossings = 32   // half width of the kernel, in samples of the lower rate
	resamplerCutoff        = 0.93 // of the lower Nyquist frequency
	resamplerKaiserBeta    = 7.0
	resamplerMaxPhases     = 1024 // exact polyphase up to this many phases
	resamplerInterpPhases  = 512  // phases kept for interpolated ratios
	// resamplerMaxCoefs bounds one filter table (4 MiB of float32), so an
	// odd pair of rates from a hostile file cannot exhaust memory: beyond
	// it the table keeps fewer phases and interpolates.
	resamplerMaxCoefs = 1 << 20
	// resamplerMaxCached bounds the tables kept for reuse; bigger ones
	// (extreme ratios) belong to their resampler alone.
	resamplerMaxCached = 1 << 17
)

// resampleFilter is the shared, read-only coefficient table for one ratio.
type resampleFilter struct {
	l, m   int       // output/input step after GCD reduction
	taps   int       // coefficients per phase (even)
	half   int       // taps/2: input samples needed on each side
	phases int       // coefficient sets stored (plus one extra when interp)
	interp bool      // phases < l: interpolate between neighbouring sets
	coef   []float32 // (phases+1)*taps, phase-major
}

// resampleFilters caches tables by reduced ratio {l, m}. It holds at most
// resamplerMaxPairs of them: the usual telephony pairs are few, and rates
// read from outside files must not grow it without bound.
var resampleFilters struct {
	sync.Mutex
	m map[[2]int]*resampleFilter
}

const resamplerMaxPairs = 64

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func getResampleFilter(l, m int) *resampleFilter {
	key := [2]int{l, m}
	resampleFilters.Lock()
	f, ok := resampleFilters.m[key]
	resampleFilters.Unlock()
	if ok {
		return f
	}
	f = newResampleFilter(l, m)
	if len(f.coef) > resamplerMaxCached {
		return f
	}
	resampleFilters.Lock()
	defer resampleFilters.Unlock()
	if shared, ok := resampleFilters.m[key]; ok {
		return shared // built concurrently by another caller
	}
	if resampleFilters.m == nil {
		resampleFilters.m = make(map[[2]int]*resampleFilter)
	}
	if len(resampleFilters.m) < resamplerMaxPairs {
		resampleFilters.m[key] = f
	}
	return f
}

func newResampleFilter(l, m int) *resampleFilter {
	scale := 1.0 // ratio of the lower rate to the input rate
	if l < m {
		scale = float64(l) / float64(m)
	}
	half := int(math.Ceil(resamplerZeroCrossings / scale))
	f := &resampleFilter{l: l, m: m, half: half, taps: 2 * half, phases: l}
	if l > resamplerMaxPhases || l*f.taps > resamplerMaxCoefs {
		f.interp = true
		f.phases = max(16, min(resamplerInterpPhases, resamplerMaxCoefs/f.taps-1))
	}
	fc := 0.5 * scale * resamplerCutoff // cutoff in cycles per input sample
	i0beta := besselI0(resamplerKaiserBeta)
	f.coef = make([]float32, (f.phases+1)*f.taps)
	for p := 0; p <= f.phases; p++ {
		frac := float64(p) / float64(f.phases)
		row := f.coef[p*f.taps : (p+1)*f.taps]
		var sum float64
		vals := make([]float64, f.taps)
		for j := range row {
			// Tap j multiplies input sample base-half+1+j; output time is base+frac.
			d := frac + float64(half-1-j)
			var v float64
			if x := d / float64(half); x > -1 && x < 1 {
				w := besselI0(resamplerKaiserBeta*math.Sqrt(1-x*x)) / i0beta
				v = 2 * fc * sinc(2*fc*d) * w
			}
			vals[j] = v
			sum += v
		}
		// Normalise every phase to unit DC gain so a constant input stays
		// constant whatever the fractional position.
		for j := range row {
			row[j] = float32(vals[j] / sum)
		}
	}
	return f
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the zeroth-order modified Bessel function of the first kind,
// by its power series (converges fast for the arguments used here).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < 200; k++ {
		term *= q / float64(k*k)
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

// Resampler converts a stream of 16-bit samples from one rate to another.
// It keeps the filter history across calls, so feeding 20 ms frames one at
// a time gives exactly the same samples as converting the whole signal at
// once, without clicks at frame boundaries. Output is aligned with the
// input (no delay) once Flush has been called: Process holds back the
// last few milliseconds it cannot compute yet. A Resampler is not safe for
// concurrent use.
type Resampler struct {
	inRate, outRate int
	f               *resampleFilter // nil when the rates are equal
	buf             []float32       // history + pending input
	base            int             // index in buf of the sample at or before the next output time
	phase           int             // next output time's fraction, in 1/l input samples
	in, out         int64           // samples consumed and produced since Reset
}

// NewResampler returns a resampler from inRate to outRate Hz. Both rates
// must be positive; a non-positive rate is a programming error and panics.
func NewResampler(inRate, outRate int) *Resampler {
	if inRate <= 0 || outRate <= 0 {
		panic(fmt.Sprintf("media: NewResampler(%d, %d): rates must be positive", inRate, outRate))
	}
	r := &Resampler{inRate: inRate, outRate: outRate}
	if inRate != outRate {
		g := gcd(inRate, outRate)
		r.f = getResampleFilter(outRate/g, inRate/g)
	}
	r.Reset()
	return r
}

// InRate is the rate of the samples passed to Process.
func (r *Resampler) InRate() int { return r.inRate }

// OutRate is the rate of the samples Process returns.
func (r *Resampler) OutRate() int { return r.outRate }

// Reset drops all history so the next Process starts a new signal.
func (r *Resampler) Reset() {
	r.in, r.out, r.phase = 0, 0, 0
	if r.f == nil {
		r.buf = r.buf[:0]
		return
	}
	// Prime with half-1 zeros so the first output (time 0) is centred on
	// the first input sample.
	n := r.f.half - 1
	if cap(r.buf) < n {
		r.buf = make([]float32, n, n+2*r.f.taps+1024)
	}
	r.buf = r.buf[:n]
	clear(r.buf)
	r.base = n
}

// Process appends the resampled src to dst and returns it. It allocates
// only when dst's capacity is too small or src is longer than any earlier
// src (the internal buffer grows once).
func (r *Resampler) Process(dst, src []int16) []int16 {
	if r.f == nil {
		r.in += int64(len(src))
		r.out += int64(len(src))
		return append(dst, src...)
	}
	for _, s := range src {
		r.buf = append(r.buf, float32(s))
	}
	r.in += int64(len(src))
	return r.drain(dst, -1)
}

// Flush appends the output still held back by the filter delay, as if the
// input were followed by silence, and resets the resampler for a new
// signal. The total output after Flush is ceil(input*outRate/inRate).
func (r *Resampler) Flush(dst []int16) []int16 {
	if r.f == nil {
		r.Reset()
		return dst
	}
	want := (r.in*int64(r.f.l) + int64(r.f.m) - 1) / int64(r.f.m)
	for i := 0; i <= r.f.half; i++ {
		r.buf = append(r.buf, 0)
	}
	dst = r.drain(dst, want)
	r.Reset()
	return dst
}

// drain produces every output whose kernel window lies inside buf, up to
// limit total outputs when limit >= 0, then drops consumed history.
func (r *Resampler) drain(dst []int16, limit int64) []int16 {
	f := r.f
	taps := f.taps
	for r.base+f.half < len(r.buf) {
		if limit >= 0 && r.out >= limit {
			break
		}
		win := r.buf[r.base-f.half+1 : r.base+f.half+1]
		var acc float32
		if !f.interp {
			row := f.coef[r.phase*taps : (r.phase+1)*taps]
			acc = dot(win, row)
		} else {
			pos := float64(r.phase) * float64(f.phases) / float64(f.l)
			p0 := int(pos)
			mu := float32(pos - float64(p0))
			a := dot(win, f.coef[p0*taps:(p0+1)*taps])
			b := dot(win, f.coef[(p0+1)*taps:(p0+2)*taps])
			acc = a + (b-a)*mu
		}
		dst = append(dst, float32ToInt16(acc))
		r.out++
		r.phase += f.m
		r.base += r.phase / f.l
		r.phase %= f.l
	}
	// Keep the half-1 samples before base that future outputs still need.
	drop := r.base - (f.half - 1)
	if drop > 0 {
		if drop > len(r.buf) {
			drop = len(r.buf)
		}
		n := copy(r.buf, r.buf[drop:])
		r.buf = r.buf[:n]
		r.base -= drop
	}
	return dst
}

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func float32ToInt16(v float32) int16 {
	if v >= 32767 {
		return 32767
	}
	if v <= -32768 {
		return -32768
	}
	if v >= 0 {
		return int16(v + 0.5)
	}
	return int16(v - 0.5)
}

// Resample converts a whole signal from inRate to outRate in one call
// (including the filter tail), returning a new slice.
func Resample(pcm []int16, inRate, outRate int) []int16 {
	r := NewResampler(inRate, outRate)
	n := (int64(len(pcm))*int64(outRate) + int64(inRate) - 1) / int64(inRate)
	out := make([]int16, 0, n)
	out = r.Process(out, pcm)
	return r.Flush(out)
}
