package sphinx

// Accuracy floors asserted by the default (subset) test run: a margin below
// what was measured there, so a regression fails but scheduling noise does
// not. Measured on the subsets: digits 56-58 %, clean WER 6-14 %, 15 dB WER
// 50-53 %. The full figures come from -sphinx.full (see the package report).
const (
	minDigitAccuracy = 0.50
	maxWERClean      = 0.20
	maxWERNoisy      = 0.70
)
