package nlu

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestJacobiEigen(t *testing.T) {
	const n = 12
	rng := rand.New(rand.NewPCG(3, 4))
	a := make([]float64, n*n)
	for i := range n {
		for j := i; j < n; j++ {
			a[i*n+j] = rng.NormFloat64()
			a[j*n+i] = a[i*n+j]
		}
	}
	eig, vec := jacobiEigen(a, n)
	for k := range n {
		for i := range n {
			var av float64
			for j := range n {
				av += a[i*n+j] * vec[j*n+k]
			}
			if math.Abs(av-eig[k]*vec[i*n+k]) > 1e-9 {
				t.Fatalf("eigenpair %d: (Av)_%d = %g, λv_%d = %g", k, i, av, i, eig[k]*vec[i*n+k])
			}
		}
	}
}

func TestOrthonormalize(t *testing.T) {
	const v, p = 50, 6
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float64, v*p)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	orthonormalize(x, v, p)
	for a := range p {
		for b := range p {
			var dot float64
			for i := range v {
				dot += x[i*p+a] * x[i*p+b]
			}
			want := 0.0
			if a == b {
				want = 1
			}
			if math.Abs(dot-want) > 1e-9 {
				t.Fatalf("column %d · column %d = %g, want %g", a, b, dot, want)
			}
		}
	}
}

// TestEmbeddingSharedContexts checks that words used in the same company
// get similar vectors although they never occur together.
func TestEmbeddingSharedContexts(t *testing.T) {
	var docs [][]termCount
	add := func(text string) { docs = append(docs, countTerms(extract(text))) }
	for range 6 {
		add("when will my new card arrive")
		add("my new card did not arrive yet")
		add("when is my new card delivered")
		add("new card still not delivered")
		add("i want a refund of my money")
		add("refund the money for this purchase")
		add("please return my money for the purchase")
		add("return the money i paid")
		add("what is the exchange rate for euros")
		add("exchange rate for dollars today")
		add("which currency rate do you use for euros")
		add("what rate applies to dollars")
	}
	e := buildEmbedding(docs, 1)
	if e == nil {
		t.Fatal("no embedding")
	}
	vecOf := func(w string) []float32 {
		r, ok := e.index[uint64(newHasher(kindStem).str(stemKey(w)))]
		if !ok {
			t.Fatalf("no vector for %q", w)
		}
		return e.vecs[int(r)*e.dim : int(r)*e.dim+e.dim]
	}
	cos := func(a, b string) float64 {
		var s float64
		for i, x := range vecOf(a) {
			s += float64(x) * float64(vecOf(b)[i])
		}
		return s
	}
	t.Logf("dim %d: arrive~delivered %.2f arrive~refund %.2f refund~return %.2f refund~exchange %.2f", e.dim, cos("arrive", "delivered"), cos("arrive", "refund"), cos("refund", "return"), cos("refund", "exchange"))
	if same, other := cos("arrive", "delivered"), cos("arrive", "refund"); same <= other+0.2 {
		t.Errorf("cos(arrive, delivered) = %.2f, cos(arrive, refund) = %.2f", same, other)
	}
	if same, other := cos("refund", "return"), cos("refund", "exchange"); same <= other+0.2 {
		t.Errorf("cos(refund, return) = %.2f, cos(refund, exchange) = %.2f", same, other)
	}
}
