package sphinx

// Accuracy floors asserted by the tests: a margin below what was measured
// (see the package report), so a regression fails but machine noise does not.
const (
	minDigitAccuracy = 0.50
	maxWERClean      = 0.20
	maxWERNoisy      = 0.90
)
