package nlu

import (
	"reflect"
	"slices"
	"testing"
)

// subset keeps the examples of the first n intents in sorted order, plus
// the out-of-scope ones, so the data-driven tests stay fast under -race.
func subset(ex []Example, n int) []Example {
	var names []string
	seen := map[string]bool{}
	for _, e := range ex {
		if e.Intent != OutOfScope && !seen[e.Intent] {
			seen[e.Intent] = true
			names = append(names, e.Intent)
		}
	}
	slices.Sort(names)
	keep := map[string]bool{OutOfScope: true}
	for _, n := range names[:min(n, len(names))] {
		keep[n] = true
	}
	var out []Example
	for _, e := range ex {
		if keep[e.Intent] {
			out = append(out, e)
		}
	}
	return out
}

// TestHeldOut trains on part of the shipped data and checks accuracy,
// calibration and out-of-scope detection on held-out data. The bounds sit a
// margin below what this subset measures (see the comments); the full-size
// figures come from TestEvalFull.
func TestHeldOut(t *testing.T) {
	b77 := subset(loadDataset(t, "banking77/train.csv"), 20)
	b77train, b77test := stratifiedSplit(b77, 0.2, 3)
	clincTrain := subset(loadDataset(t, "clinc150/train.jsonl"), 25)
	clincVal := subset(loadDataset(t, "clinc150/val.jsonl"), 25)
	for _, tc := range []struct {
		name        string
		train, test []Example
		minAcc      float64 // in-scope accuracy
		minRecall   float64 // out-of-scope recall
		maxECE      float64
	}{
		// Measured: accuracy 0.952, ECE 0.023.
		{"banking77 20 intents", b77train, b77test, 0.90, 0, 0.06},
		// Measured: in-scope 0.964, oos recall 0.78, ECE 0.031.
		{"clinc150 25 intents + oos", clincTrain, clincVal, 0.92, 0.70, 0.08},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Train(tc.train, Options{Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			mt := Evaluate(m, tc.test)
			t.Logf("%+v (threshold %.3f)", mt, m.Threshold())
			if mt.InScopeAccuracy < tc.minAcc {
				t.Errorf("in-scope accuracy %.4f < %.2f", mt.InScopeAccuracy, tc.minAcc)
			}
			if mt.OOSRecall < tc.minRecall {
				t.Errorf("oos recall %.4f < %.2f", mt.OOSRecall, tc.minRecall)
			}
			if mt.ECE > tc.maxECE {
				t.Errorf("ECE %.4f > %.2f", mt.ECE, tc.maxECE)
			}
			if mt.N != len(tc.test) {
				t.Errorf("N = %d, want %d", mt.N, len(tc.test))
			}
		})
	}
}

// TestDeterministic checks that the same data and seed give the same model,
// whatever the number of workers.
func TestDeterministic(t *testing.T) {
	ex := subset(loadDataset(t, "clinc150/train.jsonl"), 8)
	a, err := Train(ex, Options{Seed: 7, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Train(ex, Options{Seed: 7, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.scorer.w, b.scorer.w) || !reflect.DeepEqual(a.mix, b.mix) ||
		!reflect.DeepEqual(a.gate, b.gate) || a.threshold != b.threshold {
		t.Fatal("same seed, different models")
	}
	for _, text := range []string{"what is my credit score", "tell me a joke", "book a flight"} {
		if pa, pb := a.Predict(text), b.Predict(text); !reflect.DeepEqual(pa, pb) {
			t.Errorf("Predict(%q): %+v vs %+v", text, pa, pb)
		}
	}
}
