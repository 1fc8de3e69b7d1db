package nlu

import (
	"math"
	"math/rand/v2"
	"sync"
)

// trainSVM fits one L2-regularised, squared-hinge-loss linear SVM per class
// (one-vs-rest) by dual coordinate descent with shrinking, the LIBLINEAR
// algorithm (Hsieh et al., ICML 2008). Classes are independent, so they are
// spread over workers; each class has its own seeded shuffle, which keeps the
// result identical for any number of workers. The weights come back
// feature-major (w[j*k+c]) for fast sparse scoring; the bias is learnt as the
// weight of a constant feature of value 1.
func trainSVM(xs []sparse, ys []int, k, dim int, c float64, epochs int, seed uint64, workers int) (w, bias []float32) {
	w = make([]float32, dim*k)
	bias = make([]float32, k)
	qd := make([]float64, len(xs))
	for i, x := range xs {
		s := 1.0 // the bias feature
		for _, v := range x.val {
			s += float64(v) * float64(v)
		}
		qd[i] = s + 0.5/c
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wk := make([]float64, dim)
			for cls := range jobs {
				clear(wk)
				b := dcdBinary(xs, ys, cls, qd, c, epochs, seed, wk)
				mu.Lock()
				for j, v := range wk {
					w[j*k+cls] = float32(v)
				}
				bias[cls] = float32(b)
				mu.Unlock()
			}
		}()
	}
	for cls := range k {
		jobs <- cls
	}
	close(jobs)
	wg.Wait()
	return w, bias
}

// dcdBinary solves the dual of the squared-hinge SVM for "class cls against
// the rest" into w and returns the bias.
func dcdBinary(xs []sparse, ys []int, cls int, qd []float64, c float64, epochs int, seed uint64, w []float64) float64 {
	const eps = 0.1
	n := len(xs)
	diag := 0.5 / c
	alpha := make([]float64, n)
	index := make([]int, n)
	for i := range index {
		index[i] = i
	}
	rng := rand.New(rand.NewPCG(seed, uint64(cls)*0x9e3779b97f4a7c15+1))
	bias := 0.0
	active := n
	pgMaxOld := math.Inf(1)
	for iter := 0; iter < epochs; iter++ {
		rng.Shuffle(active, func(a, b int) { index[a], index[b] = index[b], index[a] })
		pgMax, pgMin := math.Inf(-1), math.Inf(1)
		for s := 0; s < active; s++ {
			i := index[s]
			y := -1.0
			if ys[i] == cls {
				y = 1
			}
			x := xs[i]
			dot := bias
			for t, j := range x.idx {
				dot += w[j] * float64(x.val[t])
			}
			g := y*dot - 1 + diag*alpha[i]
			pg := 0.0
			if alpha[i] == 0 {
				if g > pgMaxOld {
					active--
					index[s], index[active] = index[active], index[s]
					s--
					continue
				}
				if g < 0 {
					pg = g
				}
			} else {
				pg = g
			}
			pgMax = max(pgMax, pg)
			pgMin = min(pgMin, pg)
			if math.Abs(pg) > 1e-12 {
				old := alpha[i]
				alpha[i] = math.Max(old-g/qd[i], 0)
				d := (alpha[i] - old) * y
				for t, j := range x.idx {
					w[j] += d * float64(x.val[t])
				}
				bias += d
			}
		}
		if pgMax-pgMin <= eps {
			if active == n {
				break
			}
			active = n
			pgMaxOld = math.Inf(1)
			continue
		}
		pgMaxOld = pgMax
		if pgMaxOld <= 0 {
			pgMaxOld = math.Inf(1)
		}
	}
	return bias
}
