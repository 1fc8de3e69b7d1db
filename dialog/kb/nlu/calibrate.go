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

// fitMixture fits the weights that mix the component scores (numComponents
// blocks of k per example) into softmax logits by minimising the negative
// log-likelihood of held-out labels. With one component this is temperature
// scaling (Guo et al. 2017); with several it also learns how much to trust
// each. The loss is convex in the weights, so damped Newton steps converge
// in a few iterations. A ridge penalty of |a|²/2n keeps the weights finite
// when the held-out scores separate the classes perfectly, as they can for
// a small training set, where unbounded weights would claim certainty.
func fitMixture(scores [][]float64, ys []int, k int) []float64 {
	const nc = numComponents
	a := make([]float64, nc)
	a[compSVM] = 1
	if len(scores) == 0 {
		return a
	}
	ridge := 1 / float64(len(scores))
	loss := func(a []float64) float64 {
		var sum float64
		z := make([]float64, k)
		for i, s := range scores {
			mixLogits(s, a, k, z)
			sum += logSumExp(z) - z[ys[i]]
		}
		var norm float64
		for _, v := range a {
			norm += v * v
		}
		return sum/float64(len(scores)) + ridge*norm/2
	}
	f := loss(a)
	z := make([]float64, k)
	for range 50 {
		g := make([]float64, nc)
		h := make([][]float64, nc)
		for m := range h {
			h[m] = make([]float64, nc)
		}
		for i, s := range scores {
			p := softmax(mixLogits(s, a, k, z), 1)
			var e [nc]float64
			for m := range nc {
				for c, v := range s[m*k : m*k+k] {
					e[m] += p[c] * v
				}
				g[m] += e[m] - s[m*k+ys[i]]
			}
			for m := range nc {
				for n := m; n < nc; n++ {
					var e2 float64
					sm, sn := s[m*k:m*k+k], s[n*k:n*k+k]
					for c := range k {
						e2 += p[c] * sm[c] * sn[c]
					}
					h[m][n] += e2 - e[m]*e[n]
				}
			}
		}
		var gnorm float64
		for m := range nc {
			g[m] = g[m]/float64(len(scores)) + ridge*a[m]
			gnorm += g[m] * g[m]
			for n := m; n < nc; n++ {
				h[m][n] /= float64(len(scores))
				h[n][m] = h[m][n]
			}
			h[m][m] += ridge
		}
		if gnorm < 1e-14 {
			break
		}
		step, ok := solveDense(h, g)
		if !ok {
			break
		}
		improved := false
		for t := 1.0; t > 1e-4; t /= 2 {
			b := make([]float64, nc)
			for m := range nc {
				b[m] = a[m] - t*step[m]
			}
			if fb := loss(b); fb < f {
				a, f, improved = b, fb, true
				break
			}
		}
		if !improved {
			break
		}
	}
	return a
}

// solveDense returns x with h·x = g by Gaussian elimination with partial
// pivoting, on copies; ok is false if h is singular.
func solveDense(h [][]float64, g []float64) (x []float64, ok bool) {
	n := len(g)
	a := make([][]float64, n)
	for r := range a {
		a[r] = slices.Clone(h[r])
	}
	b := slices.Clone(g)
	for col := range n {
		piv := col
		for r := col + 1; r < n; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[piv][col]) {
				piv = r
			}
		}
		if math.Abs(a[piv][col]) < 1e-15 {
			return nil, false
		}
		a[col], a[piv] = a[piv], a[col]
		b[col], b[piv] = b[piv], b[col]
		for r := col + 1; r < n; r++ {
			f := a[r][col] / a[col][col]
			for c := col; c < n; c++ {
				a[r][c] -= f * a[col][c]
			}
			b[r] -= f * b[col]
		}
	}
	x = make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		v := b[r]
		for c := r + 1; c < n; c++ {
			v -= a[r][c] * x[c]
		}
		x[r] = v / a[r][r]
	}
	return x, true
}

func logSumExp(z []float64) float64 {
	mx := math.Inf(-1)
	for _, v := range z {
		mx = max(mx, v)
	}
	var s float64
	for _, v := range z {
		s += math.Exp(v - mx)
	}
	return mx + math.Log(s)
}

// chooseThreshold picks the out-of-scope threshold on held-out in-scope
// scores: the lowest threshold that rejects at least the share recall of the
// out-of-scope examples (rejecting as few in-scope ones as possible). It
// returns 0 without out-of-scope examples.
func chooseThreshold(inScore []float64, isOOS []bool, recall float64) float64 {
	var oos []float64
	for i, s := range inScore {
		if isOOS[i] {
			oos = append(oos, s)
		}
	}
	if len(oos) == 0 {
		return 0
	}
	slices.Sort(oos)
	// Rejecting "score < t" catches oos[:need] when t is just above oos[need-1].
	need := min(len(oos), int(math.Ceil(recall*float64(len(oos))-1e-9)))
	if need <= 0 {
		return 0
	}
	return math.Nextafter(oos[need-1], math.Inf(1))
}

// Out-of-scope signals: the calibrated probability of the best in-scope
// intent, its lead over the runner-up and the probability of the oos class,
// the SVM margin of the best intent, the similarity of the nearest training
// utterance of the best intent, the vocabulary coverage of the utterance's
// words, the logit of the oos class's probability, and the similarity of the
// nearest training utterance of the best intent in pretrained-vector space.
const (
	sigTop = iota
	sigLead
	sigOOS
	sigMargin
	sigNearest
	sigCoverage
	sigLogitOOS
	sigNearestPre
	numSignals
)

// logit is log(p/(1-p)) with p clamped away from 0 and 1. On the logit scale
// the oos class's probability separates out-of-scope requests from in-scope
// ones far better than on the probability scale, where everything in scope
// is squeezed against 0.
func logit(p float64) float64 {
	p = min(max(p, 1e-6), 1-1e-6)
	return math.Log(p / (1 - p))
}

// oosSignals gathers the out-of-scope signals of one utterance.
func (m *Model) oosSignals(probs, comp []float64, best int, coverage float64) []float64 {
	k := len(m.intents)
	f := make([]float64, numSignals)
	f[sigTop] = probs[best]
	second := 0.0
	for c, p := range probs {
		if c != best && c != m.oosClass {
			second = max(second, p)
		}
	}
	f[sigLead] = probs[best] - second
	f[sigMargin] = comp[compSVM*k+best]
	if m.oosClass >= 0 {
		f[sigOOS] = probs[m.oosClass]
		f[sigLogitOOS] = logit(probs[m.oosClass])
	}
	f[sigNearest] = comp[compKNN*k+best]
	f[sigNearestPre] = comp[compPre*k+best]
	f[sigCoverage] = coverage
	return f
}

// oosGate is a logistic regression on the out-of-scope signals that
// estimates the probability that an utterance is out of scope.
type oosGate struct {
	w []float64 // bias, then one weight per signal
}

// prob returns the estimated probability that the utterance with signals f
// is out of scope.
func (g *oosGate) prob(f []float64) float64 {
	z := g.w[0]
	for i, v := range f {
		z += g.w[i+1] * v
	}
	return 1 / (1 + math.Exp(-z))
}

// fitGate fits the gate on held-out signals by Newton's method on the
// L2-penalised log-likelihood (λ = 0.001 + 1/n, bias unpenalised, so that
// a few examples cannot drive the weights to infinity).
func fitGate(feats [][]float64, isOOS []bool) *oosGate {
	lambda := 1e-3 + 1/float64(max(len(feats), 1))
	n := numSignals + 1
	g := &oosGate{w: make([]float64, n)}
	x := make([]float64, n)
	for range 30 {
		grad := make([]float64, n)
		hess := make([][]float64, n)
		for i := range hess {
			hess[i] = make([]float64, n)
		}
		for i, f := range feats {
			x[0] = 1
			copy(x[1:], f)
			p := g.prob(f)
			y := 0.0
			if isOOS[i] {
				y = 1
			}
			for a := range n {
				grad[a] += (p - y) * x[a]
				for b := range n {
					hess[a][b] += p * (1 - p) * x[a] * x[b]
				}
			}
		}
		m := float64(len(feats))
		for a := range n {
			grad[a] /= m
			for b := range n {
				hess[a][b] /= m
			}
			if a > 0 {
				grad[a] += lambda * g.w[a]
				hess[a][a] += lambda
			}
			hess[a][a] += 1e-12
		}
		step, ok := solveDense(hess, grad)
		if !ok {
			break
		}
		var size float64
		for a := range n {
			g.w[a] -= step[a]
			size += step[a] * step[a]
		}
		if size < 1e-16 {
			break
		}
	}
	return g
}
