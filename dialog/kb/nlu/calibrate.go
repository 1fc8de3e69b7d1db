package nlu

import (
	"math"
	"math/rand/v2"
	"slices"
)

// stratifiedFolds assigns every example to one of k folds so that each
// class is spread evenly over the folds, in a seeded random order.
func stratifiedFolds(ys []int, classes, k int, seed uint64) []int {
	byClass := make([][]int, classes)
	for i, y := range ys {
		byClass[y] = append(byClass[y], i)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	folds := make([]int, len(ys))
	next := 0
	for _, idx := range byClass {
		rng.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		for _, i := range idx {
			folds[i] = next % k
			next++
		}
	}
	return folds
}

// nll is the mean negative log-likelihood of the labels under softmax(s/t).
func nll(scores [][]float64, ys []int, t float64) float64 {
	var sum float64
	buf := make([]float64, 0, 256)
	for i, s := range scores {
		buf = append(buf[:0], s...)
		p := softmax(buf, t)
		sum -= math.Log(max(p[ys[i]], 1e-300))
	}
	return sum / float64(len(scores))
}

// fitTemperature finds the softmax temperature that minimises the negative
// log-likelihood of held-out scores (temperature scaling, Guo et al. 2017)
// by golden-section search over log t, which is unimodal for this loss.
func fitTemperature(scores [][]float64, ys []int) float64 {
	if len(scores) == 0 {
		return 1
	}
	lo, hi := math.Log(1e-3), math.Log(1e2)
	const phi = 0.6180339887498949
	a, b := hi-phi*(hi-lo), lo+phi*(hi-lo)
	fa, fb := nll(scores, ys, math.Exp(a)), nll(scores, ys, math.Exp(b))
	for range 60 {
		if fa < fb {
			hi, b, fb = b, a, fa
			a = hi - phi*(hi-lo)
			fa = nll(scores, ys, math.Exp(a))
		} else {
			lo, a, fa = a, b, fb
			b = lo + phi*(hi-lo)
			fb = nll(scores, ys, math.Exp(b))
		}
	}
	return math.Exp((lo + hi) / 2)
}

// chooseThreshold picks the out-of-scope threshold on the calibrated top
// in-scope probability that maximises in-scope accuracy plus out-of-scope
// recall on held-out scores (both count a wrongly rejected or wrongly
// accepted utterance as an error). Ties go to the lower threshold.
func chooseThreshold(scores [][]float64, ys []int, t float64, oosClass int) float64 {
	type row struct {
		p       float64
		correct bool // in scope and the top in-scope intent is right
		oos     bool // gold label is out of scope
		forced  bool // the oos class outscores every in-scope intent
	}
	rows := make([]row, len(scores))
	var nIn, nOOS int
	buf := make([]float64, 0, 256)
	for i, s := range scores {
		p := softmax(append(buf[:0], s...), t)
		best := -1
		for c, v := range p {
			if c != oosClass && (best < 0 || v > p[best]) {
				best = c
			}
		}
		rows[i] = row{p: p[best], correct: best == ys[i], oos: ys[i] == oosClass, forced: p[oosClass] > p[best]}
		if rows[i].oos {
			nOOS++
		} else {
			nIn++
		}
	}
	if nIn == 0 || nOOS == 0 {
		return 0
	}
	slices.SortFunc(rows, func(a, b row) int {
		switch {
		case a.p < b.p:
			return -1
		case a.p > b.p:
			return 1
		}
		return 0
	})
	// Threshold just above rows[i-1].p rejects rows[:i].
	var inOK, oosCaught int
	for _, r := range rows {
		if r.correct && !r.forced {
			inOK++
		}
		if r.oos && r.forced {
			oosCaught++
		}
	}
	bestJ := float64(inOK)/float64(nIn) + float64(oosCaught)/float64(nOOS)
	bestT := 0.0
	for i, r := range rows {
		if r.correct && !r.forced {
			inOK--
		}
		if r.oos && !r.forced {
			oosCaught++
		}
		if i+1 < len(rows) && rows[i+1].p == r.p {
			continue
		}
		j := float64(inOK)/float64(nIn) + float64(oosCaught)/float64(nOOS)
		if j > bestJ+1e-12 {
			bestJ = j
			if i+1 < len(rows) {
				bestT = (r.p + rows[i+1].p) / 2
			} else {
				bestT = math.Nextafter(r.p, 1)
			}
		}
	}
	return bestT
}
