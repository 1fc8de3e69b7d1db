package nlu

import (
	"math"
	"testing"
)

func TestKNNScores(t *testing.T) {
	s := float32(1 / math.Sqrt2)
	xs := []sparse{
		{idx: []int32{0, 1}, val: []float32{s, s}}, // class 0
		{idx: []int32{2}, val: []float32{1}},       // class 1
		{idx: []int32{1, 2}, val: []float32{s, s}}, // class 1
		{idx: []int32{3}, val: []float32{1}},       // class 2
	}
	ix := newKNNIndex(xs, []int{0, 1, 1, 2}, 5, []uint8{groupWord, groupWord, groupWord, groupWord, groupChar})
	sims := make([]float32, ix.n)
	for _, tc := range []struct {
		q    sparse
		want []float64
	}{
		{sparse{idx: []int32{2}, val: []float32{1}}, []float64{0, 1, 0}},
		{sparse{idx: []int32{1}, val: []float32{1}}, []float64{float64(s), float64(s), 0}},
		{sparse{}, []float64{0, 0, 0}},
		{sparse{idx: []int32{4}, val: []float32{1}}, []float64{0, 0, 0}}, // character features are not indexed
	} {
		got := ix.scores(tc.q, sims, make([]float64, 3))
		for c := range got {
			if math.Abs(got[c]-tc.want[c]) > 1e-6 {
				t.Errorf("query %v: scores %v, want %v", tc.q, got, tc.want)
				break
			}
		}
		for _, v := range sims {
			if v != 0 {
				t.Fatalf("scratch not cleared: %v", sims)
			}
		}
	}
}

func TestDenseIndexScores(t *testing.T) {
	// Features 0–1 are sparse; 2–6 are the dense part (5 dims, so the
	// unrolled loop has a remainder).
	xs := []sparse{
		{idx: []int32{0, 2}, val: []float32{0.5, 2}},     // class 0: dense (1,0,0,0,0) after scaling
		{idx: []int32{1, 3, 6}, val: []float32{1, 3, 4}}, // class 1: (0,0.6,0,0,0.8)
		{idx: []int32{3}, val: []float32{-1}},            // class 1: (0,-1,0,0,0)
		{idx: []int32{0, 1}, val: []float32{1, 1}},       // class 2: no dense part
		{idx: []int32{2, 3}, val: []float32{-0.6, -0.8}}, // class 2: (-0.6,-0.8,0,0,0)
	}
	ix := newDenseIndex(xs, []int{0, 1, 1, 2, 2}, 2, 5)
	for _, tc := range []struct {
		q    sparse
		want []float64
	}{
		{sparse{idx: []int32{0, 2}, val: []float32{9, 1}}, []float64{1, 0, 0}},
		{sparse{idx: []int32{6}, val: []float32{0.1}}, []float64{0, 0.8, 0}},
		{sparse{idx: []int32{3}, val: []float32{-2}}, []float64{0, 1, 0.8}},
		{sparse{idx: []int32{0, 1}, val: []float32{1, 1}}, []float64{0, 0, 0}}, // no dense part
	} {
		got := ix.scores(tc.q, make([]float64, 3))
		for c := range got {
			if math.Abs(got[c]-tc.want[c]) > 1e-6 {
				t.Errorf("query %v: scores %v, want %v", tc.q, got, tc.want)
				break
			}
		}
	}
	var none *denseIndex
	if got := none.scores(xs[0], []float64{5, 5, 5}); got[0] != 0 || got[1] != 0 || got[2] != 0 {
		t.Errorf("nil index: %v", got)
	}
	if newDenseIndex(xs, []int{0, 1, 1, 2, 2}, -1, 5) != nil || newDenseIndex(xs, []int{0, 1, 1, 2, 2}, 2, 0) != nil {
		t.Error("index without a dense part")
	}
}
