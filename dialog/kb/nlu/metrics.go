package nlu

import (
	"math"
	"runtime"
	"slices"
)

// Metrics summarises a model's predictions on labelled test data.
type Metrics struct {
	// N is the number of test examples.
	N int `json:"n"`
	// Accuracy is the share of exactly right predictions (OutOfScope counts
	// as a label).
	Accuracy float64 `json:"accuracy"`
	// MacroF1 is the unweighted mean F1 over every label that occurs in the
	// gold labels or the predictions.
	MacroF1 float64 `json:"macro_f1"`
	// OOSRecall is the share of out-of-scope examples predicted out of scope.
	OOSRecall float64 `json:"oos_recall"`
	// OOSPrecision is the share of out-of-scope predictions that are right.
	OOSPrecision float64 `json:"oos_precision"`
	// InScopeAccuracy is the accuracy on in-scope examples; rejecting one as
	// out of scope is an error.
	InScopeAccuracy float64 `json:"in_scope_accuracy"`
	// ECE is the expected calibration error of the top-1 confidence over 15
	// equal-width bins.
	ECE float64 `json:"ece"`
}

// eceBins is the number of equal-width confidence bins of Metrics.ECE.
const eceBins = 15

// Evaluate predicts every test example with m and scores the predictions.
// Ratios whose denominator is zero are reported as 0.
func Evaluate(m *Model, test []Example) Metrics {
	preds := make([]Prediction, len(test))
	parallelFor(len(test), runtime.GOMAXPROCS(0), func(_, i int) { preds[i] = m.Predict(test[i].Text) })
	return score(test, preds)
}

// score computes Metrics from gold examples and their predictions.
func score(test []Example, preds []Prediction) Metrics {
	mt := Metrics{N: len(test)}
	if len(test) == 0 {
		return mt
	}
	tp, fp, fn := map[string]int{}, map[string]int{}, map[string]int{}
	var correct, inN, inOK, oosN, oosPred, oosOK int
	var binN [eceBins]int
	var binConf, binAcc [eceBins]float64
	for i, ex := range test {
		p := preds[i]
		ok := p.Intent == ex.Intent
		if ok {
			correct++
			tp[ex.Intent]++
		} else {
			fp[p.Intent]++
			fn[ex.Intent]++
		}
		if ex.Intent == OutOfScope {
			oosN++
			if ok {
				oosOK++
			}
		} else {
			inN++
			if ok {
				inOK++
			}
		}
		if p.Intent == OutOfScope {
			oosPred++
		}
		b := min(int(p.Confidence*eceBins), eceBins-1)
		b = max(b, 0)
		binN[b]++
		binConf[b] += p.Confidence
		if ok {
			binAcc[b]++
		}
	}
	mt.Accuracy = ratio(correct, len(test))
	mt.InScopeAccuracy = ratio(inOK, inN)
	mt.OOSRecall = ratio(oosOK, oosN)
	mt.OOSPrecision = ratio(oosOK, oosPred)
	var labels []string
	for _, ex := range test {
		labels = append(labels, ex.Intent)
	}
	for _, p := range preds {
		labels = append(labels, p.Intent)
	}
	slices.Sort(labels)
	labels = slices.Compact(labels) // sorted, so the sum is deterministic
	var f1 float64
	for _, l := range labels {
		if d := 2*tp[l] + fp[l] + fn[l]; d > 0 {
			f1 += 2 * float64(tp[l]) / float64(d)
		}
	}
	mt.MacroF1 = f1 / float64(len(labels))
	for b := range eceBins {
		if binN[b] > 0 {
			mt.ECE += math.Abs(binConf[b]-binAcc[b]) / float64(len(test))
		}
	}
	return mt
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
