package sphinx

import (
	"context"
	"fmt"
	"math"
	"math/cmplx"
	"sort"

	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/media"
)

// Whole-utterance preparation used by TranscribePCM (files, the CLI, tests).
const (
	trimFrame   = 160  // 10 ms analysis frames at 16 kHz
	trimPad     = 3200 // 200 ms kept around the detected speech
	chunk       = 320  // 20 ms, what a live call feeds per Write
	targetPeak  = 0.5  // normalized peak level (of full scale)
	maxGainNorm = 30.0 // do not blow up near-silence into "speech"
)

// TranscribePCM recognizes one whole recording in mode: it converts any
// sample rate to 16 kHz, trims silence at both ends, normalizes the level
// and then feeds the audio in 20 ms chunks through the same streaming path
// a call uses. It is the convenience behind `parley transcribe`.
func (r *Recognizer) TranscribePCM(ctx context.Context, pcm []int16, rate int, mode dialog.Mode) (dialog.Transcript, error) {
	if rate <= 0 {
		return dialog.Transcript{}, fmt.Errorf("sphinx: invalid sample rate %d", rate)
	}
	if rate != sampleRate {
		pcm = media.Resample(pcm, rate, sampleRate)
	}
	pcm = prepareUtterance(pcm)
	s, err := r.start(ctx, mode, true)
	if err != nil {
		return dialog.Transcript{}, err
	}
	defer s.Close()
	if s.prime > 0 {
		// The whole recording is known: its utterance starts from the
		// recording's own cepstral mean (15 dB white noise: 45.5 -> 34 %
		// WER against the fixed phone mean; clean 9.1 -> 7.9 %).
		s.prime = min(len(pcm), maxBacklog)
	}
	for off := 0; off < len(pcm); off += chunk {
		if err := ctx.Err(); err != nil {
			return dialog.Transcript{}, fmt.Errorf("sphinx: transcribe: %w", err)
		}
		if err := s.Write(pcm[off:min(off+chunk, len(pcm))]); err != nil {
			return dialog.Transcript{}, err
		}
	}
	return s.Finish()
}

// prepareUtterance trims leading and trailing silence (keeping a margin and
// adding some when the recording starts or ends right on the speech, as
// the decoder needs a little context at both ends: the recording's own line
// noise when it has some, else digital silence) and scales the level so
// quiet and loud recordings reach the decoder alike. It returns a new slice.
func prepareUtterance(pcm []int16) []int16 {
	if len(pcm) == 0 {
		return nil
	}
	nf := len(pcm) / trimFrame
	first, last := 0, len(pcm)
	bg := lineNoise(pcm)
	if nf >= 3 {
		en, sorted := frameEnergies(pcm, nf)
		floor := sorted[nf/10]
		peak := sorted[nf-1]
		// Speech: 18 dB over the noise floor (9 dB over line noise) and
		// within 35 dB of the loudest frame. In 15 dB white noise only loud
		// vowels stand 18 dB over the floor, and trimming there cut whole
		// weak words at the ends of the speech: WER 42-46 % against 34-38 %
		// with 9 dB (6 dB: 36 %). On the recorded digits, whose quietest
		// frames are their own speech, 9 dB lost a point.
		over := 63.0
		if bg != nil {
			over = 8
		}
		thr := math.Max(floor*over, peak/3162)
		fs, fe := -1, -1
		for f, e := range en {
			if e > thr {
				if fs < 0 {
					fs = f
				}
				fe = f
			}
		}
		if fs >= 0 {
			first = max(0, fs*trimFrame-trimPad)
			last = min(len(pcm), (fe+1)*trimFrame+trimPad)
		}
	}
	body := pcm[first:last]
	var peak float64
	for _, v := range body {
		peak = math.Max(peak, math.Abs(float64(v)))
	}
	gain := 1.0
	if peak > 0 {
		gain = math.Min(targetPeak*math.MaxInt16/peak, maxGainNorm)
	}
	padStart := max(0, trimPad-first)
	padEnd := max(0, trimPad-(len(pcm)-last))
	out := make([]int16, padStart+len(body)+padEnd)
	for i, v := range body {
		out[padStart+i] = clip16(float64(v) * gain)
	}
	if padStart > 0 || padEnd > 0 {
		if len(bg) > 0 {
			for i := 0; i < padStart; i++ {
				out[i] = clip16(float64(bg[i%len(bg)]) * gain)
			}
			for i := 0; i < padEnd; i++ {
				out[padStart+len(body)+i] = clip16(float64(bg[(i+padStart)%len(bg)]) * gain)
			}
		}
	}
	return out
}

// lineNoise returns the recording's background when it is steady, white
// line noise: its quietest 10 ms frames (within 3 dB of the 10th-percentile
// energy) in order. It returns nil for a quiet background (more than 36 dB
// under the loudest frame, or near digital silence) and for one that is not
// flat like hiss (a short recording trimmed close to its speech, whose
// quietest frames are the speech's own tails, or hum).
//
// Padding a noisy recording with digital silence, as a clean one is, put a
// jump from silence to noise right before the speech: pocketsphinx's noise
// tracking and voice detection, and the noise reduction, which learn the
// noise from the first frames, saw silence there. Padding with the line's
// own noise took WER in 15 dB white noise from 58 % to 55 % (and made the
// noise reduction work: 43 %).
func lineNoise(pcm []int16) []int16 {
	nf := len(pcm) / trimFrame
	if nf < 3 {
		return nil
	}
	en, sorted := frameEnergies(pcm, nf)
	floor := sorted[nf/10]
	if floor < minLineNoise || sorted[nf-1] > 4000*floor {
		return nil
	}
	var bg []int16
	for f, e := range en {
		if e <= 2*floor {
			bg = append(bg, pcm[f*trimFrame:(f+1)*trimFrame]...)
		}
	}
	if flatness(bg) < minLineFlatness {
		return nil
	}
	return bg
}

const (
	// minLineNoise is the mean square sample value (20 dB over 1 LSB)
	// below which a background is silence.
	minLineNoise = 100
	// minLineFlatness is the spectral flatness from which a background is
	// hiss: measured 0.53-0.60 for white noise on the phone channel,
	// 0.09-0.24 for clean synthesized speech's quietest frames and at most
	// 0.36 for the recorded digits'.
	minLineFlatness = 0.45
)

// flatness is the mean spectral flatness (geometric over arithmetic mean
// of the power, 100-3800 Hz) of the 10 ms frames of pcm (16 kHz): about
// 0.56 for white noise, well below 0.3 for voiced speech and hum.
func flatness(pcm []int16) float64 {
	const n = 256
	var x [n]complex128
	var tw [n / 2]complex128
	for i := range tw {
		tw[i] = cmplx.Exp(complex(0, -2*math.Pi*float64(i)/n))
	}
	lo, hi := 100*n/sampleRate+1, 3800*n/sampleRate
	var sum float64
	frames := 0
	for off := 0; off+trimFrame <= len(pcm); off += trimFrame {
		for i := range x {
			x[i] = 0
			if i < trimFrame {
				w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/trimFrame)
				x[i] = complex(float64(pcm[off+i])*w, 0)
			}
		}
		fft(x[:], tw[:])
		var lg, ar float64
		for k := lo; k <= hi; k++ {
			p := real(x[k])*real(x[k]) + imag(x[k])*imag(x[k]) + 1e-9
			lg += math.Log(p)
			ar += p
		}
		m := float64(hi - lo + 1)
		sum += math.Exp(lg/m) / (ar / m)
		frames++
	}
	if frames == 0 {
		return 0
	}
	return sum / float64(frames)
}

// frameEnergies returns the mean energy of each of the nf trimFrame-long
// frames of pcm, in order and sorted.
func frameEnergies(pcm []int16, nf int) (en, sorted []float64) {
	en = make([]float64, nf)
	for f := range en {
		var e float64
		for _, v := range pcm[f*trimFrame : (f+1)*trimFrame] {
			e += float64(v) * float64(v)
		}
		en[f] = e / trimFrame
	}
	sorted = append([]float64(nil), en...)
	sort.Float64s(sorted)
	return en, sorted
}
