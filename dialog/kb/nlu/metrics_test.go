package nlu

import (
	"math"
	"testing"
)

func TestScore(t *testing.T) {
	gold := []Example{{"a", "x"}, {"b", "x"}, {"c", "y"}, {"d", OutOfScope}, {"e", OutOfScope}}
	for _, tc := range []struct {
		name  string
		preds []Prediction
		want  Metrics
	}{
		{
			name: "all right, fully confident",
			preds: []Prediction{{Intent: "x", Confidence: 1}, {Intent: "x", Confidence: 1}, {Intent: "y", Confidence: 1},
				{Intent: OutOfScope, Confidence: 1, OutOfScope: true}, {Intent: OutOfScope, Confidence: 1, OutOfScope: true}},
			want: Metrics{N: 5, Accuracy: 1, MacroF1: 1, OOSRecall: 1, OOSPrecision: 1, InScopeAccuracy: 1, ECE: 0},
		},
		{
			// x: tp 1, fp 0, fn 1 → F1 2/3; y: tp 1, fp 1 → 2/3; oos: tp 1, fp 1, fn 1 → 1/2.
			// Bins: 0.5 holds {right, wrong, right, right} → |2 - 3|; 0.9 holds {wrong} → 0.9.
			name: "mixed",
			preds: []Prediction{{Intent: "x", Confidence: 0.5}, {Intent: OutOfScope, Confidence: 0.5, OutOfScope: true},
				{Intent: "y", Confidence: 0.5}, {Intent: OutOfScope, Confidence: 0.5, OutOfScope: true}, {Intent: "y", Confidence: 0.9}},
			want: Metrics{N: 5, Accuracy: 0.6, MacroF1: (2.0/3 + 2.0/3 + 0.5) / 3, OOSRecall: 0.5, OOSPrecision: 0.5,
				InScopeAccuracy: 2.0 / 3, ECE: (1 + 0.9) / 5},
		},
	} {
		got := score(gold, tc.preds)
		for _, f := range []struct {
			name      string
			got, want float64
		}{
			{"n", float64(got.N), float64(tc.want.N)}, {"accuracy", got.Accuracy, tc.want.Accuracy},
			{"macro_f1", got.MacroF1, tc.want.MacroF1}, {"oos_recall", got.OOSRecall, tc.want.OOSRecall},
			{"oos_precision", got.OOSPrecision, tc.want.OOSPrecision},
			{"in_scope_accuracy", got.InScopeAccuracy, tc.want.InScopeAccuracy}, {"ece", got.ECE, tc.want.ECE},
		} {
			if math.Abs(f.got-f.want) > 1e-12 {
				t.Errorf("%s: %s = %v, want %v", tc.name, f.name, f.got, f.want)
			}
		}
	}
	if got := score(nil, nil); got != (Metrics{}) {
		t.Errorf("empty: %+v", got)
	}
}

func TestTokenize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Why hasn't my card ARRIVED?", "why hasnt my card arrived"},
		{"I paid £20 on 3rd May", "i paid <cur> <num> on <num> may"},
		{"'quoted' top-up", "quoted top up"},
		{"", ""},
		{"Café déjà-vu", "café déjà vu"},
	} {
		got := ""
		for i, tok := range tokenize(tc.in) {
			if i > 0 {
				got += " "
			}
			got += tok
		}
		if got != tc.want {
			t.Errorf("tokenize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStemKey(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"charge", "charged"}, {"charging", "charges"}, {"cards", "card"}, {"payments", "payment"},
		{"stopping", "stop"}, {"fees", "fee"}, {"applied", "apply"}, {"monthly", "month"},
	} {
		if stemKey(tc.a) != stemKey(tc.b) {
			t.Errorf("stemKey(%q) = %q, stemKey(%q) = %q; want equal", tc.a, stemKey(tc.a), tc.b, stemKey(tc.b))
		}
	}
}
