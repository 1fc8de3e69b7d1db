package nlu

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
)

// datasetDir is the shared datasets directory, relative to this package.
const datasetDir = "../../../../shared/datasets"

func loadDataset(tb testing.TB, rel string) []Example {
	tb.Helper()
	ex, err := LoadExamples(filepath.Join(datasetDir, rel))
	if err != nil {
		tb.Fatalf("load %s: %v", rel, err)
	}
	return ex
}

// stratifiedSplit puts about frac of every intent's examples into test, in a
// seeded order.
func stratifiedSplit(ex []Example, frac float64, seed uint64) (train, test []Example) {
	by := map[string][]Example{}
	var names []string
	for _, e := range ex {
		if _, ok := by[e.Intent]; !ok {
			names = append(names, e.Intent)
		}
		by[e.Intent] = append(by[e.Intent], e)
	}
	slices.Sort(names)
	rng := rand.New(rand.NewPCG(seed, 77))
	for _, n := range names {
		g := by[n]
		rng.Shuffle(len(g), func(a, b int) { g[a], g[b] = g[b], g[a] })
		k := int(float64(len(g))*frac + 0.5)
		test = append(test, g[:k]...)
		train = append(train, g[k:]...)
	}
	return train, test
}

// TestEvalFull prints the full-size figures; it runs only with NLU_EVAL=1
// because it trains on the complete datasets.
func TestEvalFull(t *testing.T) {
	if os.Getenv("NLU_EVAL") == "" {
		t.Skip("set NLU_EVAL=1 to run the full-size evaluation")
	}
	type run struct {
		name        string
		train, test []Example
	}
	var runs []run
	if os.Getenv("NLU_EVAL") != "clinc" {
		b77 := loadDataset(t, "banking77/train.csv")
		seed := uint64(1)
		if v := os.Getenv("NLU_SPLITSEED"); v != "" {
			seed, _ = strconv.ParseUint(v, 10, 64)
		}
		tr, te := stratifiedSplit(b77, 0.2, seed)
		runs = append(runs, run{"banking77 80/20", tr, te})
	}
	if os.Getenv("NLU_EVAL") != "banking" {
		runs = append(runs, run{"clinc150 train→val", loadDataset(t, "clinc150/train.jsonl"), loadDataset(t, "clinc150/val.jsonl")})
	}
	for _, r := range runs {
		start, cpu0 := time.Now(), cpuTime()
		opt := Options{}
		if v := os.Getenv("NLU_C"); v != "" {
			opt.C, _ = strconv.ParseFloat(v, 64)
		}
		if v := os.Getenv("NLU_OOSRECALL"); v != "" {
			opt.OOSRecall, _ = strconv.ParseFloat(v, 64)
		}
		m, err := Train(r.train, opt)
		if err != nil {
			t.Fatal(err)
		}
		took, cpu := time.Since(start), cpuTime()-cpu0
		mt := Evaluate(m, r.test)
		js, _ := json.Marshal(mt)
		gate := []float64(nil)
		if m.gate != nil {
			gate = m.gate.w
		}
		if m.gate != nil {
			t.Logf("%s: %s", r.name, oosDiagnostics(m, r.test))
		}
		t.Logf("%s: train %d ex in %v, %.1f CPU-s (GOMAXPROCS %d), threshold %.3f, mix %.3f, gate %.3f: %s", r.name, len(r.train), took.Round(time.Millisecond), cpu.Seconds(), runtime.GOMAXPROCS(0), m.Threshold(), m.mix, gate, js)
	}
}

// oosDiagnostics describes how well the in-scope score separates in-scope
// from out-of-scope test utterances, whatever the threshold: the top-1
// accuracy on in-scope utterances without any rejection, the area under the
// ROC curve, and the in-scope accuracy at the threshold that would give an
// out-of-scope recall of 0.80 on this test set (an oracle, for diagnosis only).
func oosDiagnostics(m *Model, test []Example) string {
	type r struct {
		score   float64
		oos, ok bool
	}
	rs := make([]r, len(test))
	parallelFor(len(test), runtime.GOMAXPROCS(0), func(_, i int) {
		p, s := m.predict(test[i].Text)
		rs[i] = r{s, test[i].Intent == OutOfScope, len(p.Top) > 0 && p.Top[0].Intent == test[i].Intent}
	})
	var in, top1 int
	var oosScores []float64
	for _, x := range rs {
		if x.oos {
			oosScores = append(oosScores, x.score)
			continue
		}
		in++
		if x.ok {
			top1++
		}
	}
	slices.Sort(oosScores)
	var pairs, wins float64
	for _, x := range rs {
		if x.oos {
			continue
		}
		for _, o := range oosScores {
			pairs++
			switch {
			case x.score > o:
				wins++
			case x.score == o:
				wins += 0.5
			}
		}
	}
	if len(oosScores) == 0 || in == 0 {
		return "no out-of-scope test data"
	}
	thr := math.Nextafter(oosScores[int(math.Ceil(0.8*float64(len(oosScores))))-1], 2)
	okAt := 0
	for _, x := range rs {
		if !x.oos && x.ok && x.score >= thr {
			okAt++
		}
	}
	return fmt.Sprintf("diag top1-in %.4f auroc %.4f in-at-oracle-0.80 %.4f", float64(top1)/float64(in), wins/pairs, float64(okAt)/float64(in))
}
