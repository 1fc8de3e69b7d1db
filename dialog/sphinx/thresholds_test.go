package sphinx

// Accuracy floors asserted by the default (subset) test run: a margin below
// what was measured there, so a regression fails but scheduling noise does
// not. Measured on the subsets: digits 76.0 % (334 files), clean WER 3.7 %,
// 15 dB WER 44.4 % (216 words each). Full figures (-sphinx.full): digits 76.4 % (jackson
// 95.2 %, nicolas 57.6 %), clean WER 7.7 %, 15 dB WER 61.2 %.
const (
	minDigitAccuracy = 0.70
	maxWERClean      = 0.10
	maxWERNoisy      = 0.55
)
