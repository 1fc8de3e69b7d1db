package nlu

import (
	"encoding/json"
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
		tr, te := stratifiedSplit(b77, 0.2, 1)
		runs = append(runs, run{"banking77 80/20", tr, te})
	}
	if os.Getenv("NLU_EVAL") != "banking" {
		runs = append(runs, run{"clinc150 train→val", loadDataset(t, "clinc150/train.jsonl"), loadDataset(t, "clinc150/val.jsonl")})
	}
	for _, r := range runs {
		start := time.Now()
		opt := Options{}
		if v := os.Getenv("NLU_C"); v != "" {
			opt.C, _ = strconv.ParseFloat(v, 64)
		}
		m, err := Train(r.train, opt)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		mt := Evaluate(m, r.test)
		js, _ := json.Marshal(mt)
		gate := []float64(nil)
		if m.gate != nil {
			gate = m.gate.w
		}
		t.Logf("%s: train %d ex in %v (GOMAXPROCS %d), threshold %.3f, mix %.3f, gate %.3f: %s", r.name, len(r.train), took.Round(time.Millisecond), runtime.GOMAXPROCS(0), m.Threshold(), m.mix, gate, js)
	}
}
