package sphinx

import (
	"math"

	"github.com/parley-ai/parley/dialog"
)

// Confidence calibration, measured on this package's evaluation set
// (eval_test.go: flite voices through a G.711 phone channel):
//
//   - path score per frame: correctly recognized in-domain sentences score
//     -21 to -35, out-of-domain sentences and reversed speech ("mumbling")
//     -44 to -63, because the small domain model cannot explain them;
//   - mean word posterior (lattice): 0.68-1.0 for correct sentences, 0.1-0.6
//     for out-of-domain speech;
//   - dynamic range of the frame energies: speech 18-55 dB even at 15 dB
//     SNR, steady noise 2-3 dB. Noise often decodes as one confident short
//     word ("fee", "up"), which only the signal itself gives away.
const (
	scoreMid   = -42.0 // score per frame where the score factor is 0.5
	scoreSlope = 3.0   // score per frame for a factor e
	rangeLow   = 6.0   // dB of dynamic range below which audio is noise
	rangeHigh  = 14.0  // dB from which audio is fully speech-like
)

// wordConfidence is a word's lattice posterior probability.
func wordConfidence(sg segment) float64 {
	return clamp01(math.Exp(sg.logPost))
}

// utteranceConfidence combines the evidence into one 0..1 figure: the mean
// word posterior, a logistic on the path score per frame, and a
// speech-likeness factor from the dynamic range. Each alone misses a case
// (posteriors are high on noise, scores are fine on short noise words), so
// they are multiplied.
func utteranceConfidence(h hypothesis, words []dialog.Word, dynRange float64) float64 {
	if len(words) == 0 || h.frames == 0 {
		return 0
	}
	var post float64
	for _, w := range words {
		post += w.Confidence
	}
	post /= float64(len(words))
	perFrame := float64(h.score) / float64(h.frames)
	score := 1 / (1 + math.Exp(-(perFrame-scoreMid)/scoreSlope))
	speech := clamp01((dynRange - rangeLow) / (rangeHigh - rangeLow))
	return clamp01(post * score * speech)
}

// clamp01 limits v to 0..1 (NaN counts as 0).
func clamp01(v float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}
