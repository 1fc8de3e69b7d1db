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
