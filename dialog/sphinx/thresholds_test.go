package sphinx

// Accuracy floors asserted by the default (subset) test run: a margin below
// what was measured there, so a regression fails but scheduling noise and
// flite's random voices do not. Measured on the subsets: digits 75.7 % (334
// files), clean WER 4.2 %, 15 dB WER 33.8 % (216 words each). Full figures
// (-sphinx.full): digits 76.3 % (jackson 95.2 %, nicolas 57.6 %), clean WER
// 7.0 %, 15 dB WER 42.5 %.
const (
	minDigitAccuracy = 0.70
	maxWERClean      = 0.10
	maxWERNoisy      = 0.42
)
