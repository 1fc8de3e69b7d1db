package nlu

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
)

// embedding holds word vectors learnt from the training utterances alone
// (no outside data): the positive pointwise mutual information of stems
// occurring in the same utterance, reduced by a truncated SVD (Levy &
// Goldberg 2014). Stems that share contexts get similar vectors, so an
// utterance's vector carries evidence from words its intent's training
// examples use in the same company even when the words themselves differ.
type embedding struct {
	index map[uint64]int32 // stem feature key → row
	dim   int
	vecs  []float32 // row-major, unit-length rows
}

// Embedding settings: a stem needs embMinCount occurrences to get a vector;
// context counts are smoothed by the power embAlpha (Levy et al. 2015); the
// randomized SVD (Halko et al. 2011) uses embOversamp extra dimensions and
// embPower power iterations.
const (
	embMinCount = 2
	embAlpha    = 0.75
	embOversamp = 16
	embPower    = 3
)

// embDims is the number of embedding dimensions (at most a quarter of the
// stems with vectors).
var embDims = 100

// buildEmbedding learns stem vectors from the stem features of docs.
func buildEmbedding(docs [][]termCount, seed uint64) *embedding {
	count := map[uint64]int{}
	for _, d := range docs {
		for _, t := range d {
			if t.stem {
				count[t.key]++
			}
		}
	}
	keys := make([]uint64, 0, len(count))
	for k, n := range count {
		if n >= embMinCount {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	v := len(keys)
	d := min(embDims, v/4)
	if d < 2 {
		return nil
	}
	e := &embedding{index: make(map[uint64]int32, v), dim: d}
	for i, k := range keys {
		e.index[k] = int32(i)
	}
	// Co-occurrence counts of distinct stems within one utterance.
	co := make([]map[int32]float64, v)
	for i := range co {
		co[i] = map[int32]float64{}
	}
	rows := make([]int32, 0, 64)
	for _, doc := range docs {
		rows = rows[:0]
		for _, t := range doc {
			if r, ok := e.index[t.key]; ok && t.stem {
				rows = append(rows, r)
			}
		}
		for a, ra := range rows {
			for b, rb := range rows {
				if a != b {
					co[ra][rb]++
				}
			}
		}
	}
	rowSum := make([]float64, v)
	ctx := make([]float64, v)
	var total, ctxTotal float64
	for i, m := range co {
		for j, c := range m {
			rowSum[i] += c
			total += c
			ctx[j] += c
		}
	}
	for j := range ctx {
		ctx[j] = math.Pow(ctx[j], embAlpha)
		ctxTotal += ctx[j]
	}
	// PPMI as a sparse matrix (CSR).
	start := make([]int32, v+1)
	var col []int32
	var val []float64
	for i, m := range co {
		js := make([]int32, 0, len(m))
		for j := range m {
			js = append(js, j)
		}
		slices.Sort(js)
		for _, j := range js {
			pmi := math.Log(m[j] * ctxTotal / (rowSum[i] * ctx[j]))
			if pmi > 0 {
				col = append(col, j)
				val = append(val, pmi)
			}
		}
		start[i+1] = int32(len(col))
	}
	mul := func(x []float64, p int, transpose bool) []float64 {
		// returns M·x (v×p) or Mᵀ·x; x is v×p row-major.
		out := make([]float64, v*p)
		for i := range v {
			for t := start[i]; t < start[i+1]; t++ {
				j, a := int(col[t]), val[t]
				if transpose {
					dst, src := out[j*p:j*p+p], x[i*p:i*p+p]
					for c := range p {
						dst[c] += a * src[c]
					}
				} else {
					dst, src := out[i*p:i*p+p], x[j*p:j*p+p]
					for c := range p {
						dst[c] += a * src[c]
					}
				}
			}
		}
		return out
	}
	p := min(d+embOversamp, v)
	rng := rand.New(rand.NewPCG(seed, 0xe3bed))
	omega := make([]float64, v*p)
	for i := range omega {
		omega[i] = rng.NormFloat64()
	}
	q := orthonormalize(mul(omega, p, false), v, p)
	for range embPower {
		z := orthonormalize(mul(q, p, true), v, p)
		q = orthonormalize(mul(z, p, false), v, p)
	}
	// B = Qᵀ M; eigenvectors of B Bᵀ give the left singular vectors.
	bt := mul(q, p, true) // Mᵀ Q = Bᵀ, v×p
	g := make([]float64, p*p)
	for i := range v {
		r := bt[i*p : i*p+p]
		for a := range p {
			for b := a; b < p; b++ {
				g[a*p+b] += r[a] * r[b]
			}
		}
	}
	for a := range p {
		for b := a + 1; b < p; b++ {
			g[b*p+a] = g[a*p+b]
		}
	}
	eig, vec := jacobiEigen(g, p)
	order := make([]int, p)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(eig[b], eig[a]) })
	e.vecs = make([]float32, v*d)
	for i := range v {
		qi := q[i*p : i*p+p]
		var norm float64
		row := make([]float64, d)
		for c := range d {
			k := order[c]
			var u float64
			for a := range p {
				u += qi[a] * vec[a*p+k]
			}
			// singular value weighting exponent 0.5: σ^0.5 = eig^0.25
			u *= math.Pow(math.Max(eig[k], 0), 0.25)
			row[c] = u
			norm += u * u
		}
		if norm > 0 {
			norm = 1 / math.Sqrt(norm)
		}
		for c := range d {
			e.vecs[i*d+c] = float32(row[c] * norm)
		}
	}
	return e
}

// embed returns the IDF-weighted sum of the vectors of the stems among
// terms (v gives the IDF), or nil if e is nil or none of them has a vector.
func (e *embedding) embed(terms []termCount, v *vocabulary) []float64 {
	if e == nil {
		return nil
	}
	var acc []float64
	d := e.dim
	for _, t := range terms {
		r, ok := e.index[t.key]
		if !ok || !t.stem {
			continue
		}
		wt := 1.0
		if j, ok := v.index[t.key]; ok {
			wt = float64(v.idf[j])
		}
		if acc == nil {
			acc = make([]float64, d)
		}
		for c, x := range e.vecs[int(r)*d : int(r)*d+d] {
			acc[c] += wt * float64(x)
		}
	}
	return acc
}

// orthonormalize turns the p columns of the v×p row-major matrix x into an
// orthonormal basis (modified Gram-Schmidt), in place.
func orthonormalize(x []float64, v, p int) []float64 {
	for c := range p {
		for prev := range c {
			var dot float64
			for i := range v {
				dot += x[i*p+c] * x[i*p+prev]
			}
			for i := range v {
				x[i*p+c] -= dot * x[i*p+prev]
			}
		}
		var norm float64
		for i := range v {
			norm += x[i*p+c] * x[i*p+c]
		}
		norm = math.Sqrt(norm)
		if norm < 1e-12 {
			for i := range v {
				x[i*p+c] = 0
			}
			continue
		}
		for i := range v {
			x[i*p+c] /= norm
		}
	}
	return x
}

// jacobiEigen returns the eigenvalues and eigenvectors (columns of the
// row-major n×n result) of the symmetric matrix a, by cyclic Jacobi sweeps.
func jacobiEigen(a []float64, n int) ([]float64, []float64) {
	a = slices.Clone(a)
	v := make([]float64, n*n)
	for i := range n {
		v[i*n+i] = 1
	}
	for sweep := 0; sweep < 50; sweep++ {
		var off float64
		for i := range n {
			for j := i + 1; j < n; j++ {
				off += a[i*n+j] * a[i*n+j]
			}
		}
		if off < 1e-22 {
			break
		}
		for pp := 0; pp < n; pp++ {
			for qq := pp + 1; qq < n; qq++ {
				apq := a[pp*n+qq]
				if math.Abs(apq) < 1e-300 {
					continue
				}
				theta := (a[qq*n+qq] - a[pp*n+pp]) / (2 * apq)
				t := 1 / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				if theta < 0 {
					t = -t
				}
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := range n {
					akp, akq := a[k*n+pp], a[k*n+qq]
					a[k*n+pp] = c*akp - s*akq
					a[k*n+qq] = s*akp + c*akq
				}
				for k := range n {
					apk, aqk := a[pp*n+k], a[qq*n+k]
					a[pp*n+k] = c*apk - s*aqk
					a[qq*n+k] = s*apk + c*aqk
				}
				for k := range n {
					vkp, vkq := v[k*n+pp], v[k*n+qq]
					v[k*n+pp] = c*vkp - s*vkq
					v[k*n+qq] = s*vkp + c*vkq
				}
			}
		}
	}
	eig := make([]float64, n)
	for i := range n {
		eig[i] = a[i*n+i]
	}
	return eig, v
}
