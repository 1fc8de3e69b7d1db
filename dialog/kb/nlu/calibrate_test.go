package nlu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFitMixtureRecoversTemperature samples labels from softmax(a·s) for
// known weights a and checks that fitMixture finds them again.
func TestFitMixtureRecoversTemperature(t *testing.T) {
	for _, want := range [][]float64{{4, 0}, {2, 3}, {0.5, 0}} {
		rng := rand.New(rand.NewPCG(1, 2))
		const n, k = 6000, 5
		scores := make([][]float64, n)
		ys := make([]int, n)
		for i := range scores {
			s := make([]float64, numComponents*k)
			for j := range s {
				s[j] = rng.NormFloat64()
			}
			p := softmax(mixLogits(s, want, k, make([]float64, k)), 1)
			u, y := rng.Float64(), 0
			for ; y < k-1 && u > p[y]; y++ {
				u -= p[y]
			}
			scores[i], ys[i] = s, y
		}
		got := fitMixture(scores, ys, k)
		for m := range want {
			if math.Abs(got[m]-want[m]) > 0.25 {
				t.Errorf("want %v: got %v", want, got)
				break
			}
		}
	}
}

func TestChooseThreshold(t *testing.T) {
	scores := []float64{0.9, 0.1, 0.8, 0.2, 0.95, 0.3, 0.4, 0.7}
	isOOS := []bool{false, true, false, true, false, true, true, false}
	for _, tc := range []struct {
		recall float64
		want   float64 // rejecting below it must catch this many oos
		caught int
	}{
		{0.25, 0.1, 1}, {0.5, 0.2, 2}, {0.75, 0.3, 3}, {1, 0.4, 4},
	} {
		th := chooseThreshold(scores, isOOS, tc.recall)
		caught, wrong := 0, 0
		for i, s := range scores {
			if s < th {
				if isOOS[i] {
					caught++
				} else {
					wrong++
				}
			}
		}
		if caught != tc.caught || wrong != 0 || th <= tc.want || th > tc.want+1e-9 {
			t.Errorf("recall %v: threshold %v catches %d oos and %d in scope, want just above %v catching %d",
				tc.recall, th, caught, wrong, tc.want, tc.caught)
		}
	}
	if th := chooseThreshold([]float64{0.5, 0.6}, []bool{false, false}, 0.8); th != 0 {
		t.Errorf("no oos: threshold %v, want 0", th)
	}
}

// TestLogit checks the out-of-scope signal's transform: symmetric, finite at
// the ends, increasing.
func TestLogit(t *testing.T) {
	if v := logit(0.5); v != 0 {
		t.Errorf("logit(0.5) = %v, want 0", v)
	}
	if a, b := logit(0.9), logit(0.1); math.Abs(a+b) > 1e-12 || a <= 0 {
		t.Errorf("logit(0.9) = %v, logit(0.1) = %v: want opposite, positive first", a, b)
	}
	for _, p := range []float64{0, 1, -1, 2} {
		if v := logit(p); math.IsInf(v, 0) || math.IsNaN(v) {
			t.Errorf("logit(%v) = %v, want finite", p, v)
		}
	}
	if !(logit(1e-3) < logit(1e-2) && logit(0.99) < logit(0.999)) {
		t.Error("logit is not increasing")
	}
}
