package sphinx

// Accuracy floors asserted by the default (subset) test run: a margin below
// what was measured there, so a regression fails but scheduling noise and
// flite's random voices do not. Measured on the subsets: digits 82.6 % (334
// files), clean WER 4.2-5.1 %, 15 dB WER 27.8 % (216 words each). Full
// figures (-sphinx.full): digits 83.0 % (jackson 96.6 %, nicolas 69.4 %),
// clean WER 7.5 % (7.0-8.3 % run to run: flite's voices are random), 15 dB
// WER 34.9 %.
const (
	minDigitAccuracy = 0.78
	maxWERClean      = 0.10
	maxWERNoisy      = 0.36
)
