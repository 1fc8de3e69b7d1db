package sphinx

import (
	"context"
	"fmt"
	"math"
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
// adding silence when the recording starts or ends right on the speech, as
// the decoder needs a little context at both ends) and scales the level so
// quiet and loud recordings reach the decoder alike. It returns a new slice.
func prepareUtterance(pcm []int16) []int16 {
	if len(pcm) == 0 {
		return nil
	}
	nf := len(pcm) / trimFrame
	first, last := 0, len(pcm)
	if nf >= 3 {
		en := make([]float64, nf)
		for f := range en {
			var e float64
			for _, v := range pcm[f*trimFrame : (f+1)*trimFrame] {
				e += float64(v) * float64(v)
			}
			en[f] = e / trimFrame
		}
		sorted := append([]float64(nil), en...)
		sort.Float64s(sorted)
		floor := sorted[nf/10]
		peak := sorted[nf-1]
		// Speech: 18 dB over the noise floor and within 35 dB of the loudest frame.
		thr := math.Max(floor*63, peak/3162)
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
	return out
}
