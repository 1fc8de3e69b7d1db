// Package nlu is a pure-Go intent classifier for caller utterances. It is
// trained at start-up from labelled examples (a few thousand utterances train
// in seconds), returns the most likely intents with calibrated confidences
// (a confidence of 0.8 is right about 80% of the time) and flags requests
// that are out of scope, so the knowledge-base responder can answer what it
// knows and hand the rest to a human.
//
// Utterances become TF-IDF vectors of word, stem and character n-grams; a
// one-vs-rest linear SVM scores the intents; a softmax with a temperature
// fitted on out-of-fold predictions turns the scores into probabilities; and
// an out-of-scope threshold on the top probability is chosen on the same
// out-of-fold predictions when the training data has out-of-scope ("oos")
// examples.
package nlu

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// OutOfScope is the intent label of utterances the classifier should not
// answer, in training data and in predictions (the CLINC150 convention).
const OutOfScope = "oos"

// Example is one labelled utterance.
type Example struct {
	Text, Intent string
}

// Options tunes training. The zero value gives good defaults.
type Options struct {
	// Seed makes training deterministic: the same examples and seed give the
	// same model.
	Seed int64
	// Workers bounds the goroutines used for training; 0 means GOMAXPROCS.
	Workers int
	// Epochs caps the optimiser's passes over the data; 0 means 60.
	Epochs int
	// OOSThreshold rejects a prediction whose calibrated top in-scope
	// confidence is below it; 0 uses the threshold chosen at training time
	// (0 when the training data has no out-of-scope examples).
	OOSThreshold float64
	// C is the SVM's inverse regularisation strength; 0 means 1.
	C float64
	// Folds is the number of cross-fitting folds whose out-of-fold scores
	// fit the calibration and the out-of-scope threshold; 0 means 3.
	Folds int
}

// Scored is an intent with its calibrated confidence.
type Scored struct {
	Intent     string
	Confidence float64
}

// Prediction is the classifier's answer for one utterance.
type Prediction struct {
	// Intent is the predicted intent, or OutOfScope.
	Intent string
	// Confidence is the calibrated probability that Intent is right.
	Confidence float64
	// OutOfScope reports that the utterance is not one of the trained
	// in-scope intents (Intent is then OutOfScope).
	OutOfScope bool
	// Top lists the most likely in-scope intents, best first, up to 5.
	Top []Scored
}

// maxTop is the length of Prediction.Top.
const maxTop = 5

// Model is a trained classifier. It is immutable and safe for concurrent use.
type Model struct {
	intents   []string // class names by class id, including OutOfScope if trained
	oosClass  int      // class id of OutOfScope, or -1
	vocab     *vocabulary
	w         []float32 // feature-major weights: w[j*k+c]
	bias      []float32
	temp      float64 // softmax temperature applied to the scores
	threshold float64 // out-of-scope threshold chosen at training time
	override  float64 // Options.OOSThreshold
}

// defaults fills in the zero fields of opt.
func (opt Options) withDefaults() Options {
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.Epochs <= 0 {
		opt.Epochs = 60
	}
	if opt.C <= 0 {
		opt.C = 1
	}
	if opt.Folds <= 0 {
		opt.Folds = 3
	}
	return opt
}

// minDF is the minimum document frequency of kept features, by group.
var minDF = [numGroups]int{groupWord: 1, groupChar: 2}

// Train fits a model to examples. It needs at least two distinct in-scope
// intents; examples labelled OutOfScope are learnt as a class of their own and
// used to choose the out-of-scope threshold.
func Train(examples []Example, opt Options) (*Model, error) {
	opt = opt.withDefaults()
	if len(examples) == 0 {
		return nil, errors.New("nlu: train: no examples")
	}
	classOf := map[string]int{}
	var names []string
	for i, ex := range examples {
		if strings.TrimSpace(ex.Text) == "" {
			return nil, fmt.Errorf("nlu: train: example %d: empty text", i)
		}
		if strings.TrimSpace(ex.Intent) == "" {
			return nil, fmt.Errorf("nlu: train: example %d (%q): empty intent", i, ex.Text)
		}
		if _, ok := classOf[ex.Intent]; !ok {
			classOf[ex.Intent] = 0
			names = append(names, ex.Intent)
		}
	}
	slices.Sort(names)
	inScope := 0
	for i, n := range names {
		classOf[n] = i
		if n != OutOfScope {
			inScope++
		}
	}
	if inScope < 2 {
		return nil, fmt.Errorf("nlu: train: need at least 2 in-scope intents, have %d", inScope)
	}
	m := &Model{intents: names, oosClass: -1, override: opt.OOSThreshold}
	if c, ok := classOf[OutOfScope]; ok {
		m.oosClass = c
	}
	ys := make([]int, len(examples))
	for i, ex := range examples {
		ys[i] = classOf[ex.Intent]
	}
	terms := make([][]termCount, len(examples))
	parallelFor(len(examples), opt.Workers, func(i int) { terms[i] = countTerms(extract(examples[i].Text)) })

	// Cross-fitting: out-of-fold scores for every example fit the temperature
	// and the threshold without touching data the scorer was trained on.
	folds := stratifiedFolds(ys, len(names), opt.Folds, uint64(opt.Seed))
	oof := make([][]float64, len(examples))
	for f := range opt.Folds {
		var trainIdx, testIdx []int
		for i, fi := range folds {
			if fi == f {
				testIdx = append(testIdx, i)
			} else {
				trainIdx = append(trainIdx, i)
			}
		}
		if len(testIdx) == 0 || len(trainIdx) == 0 {
			continue
		}
		sc := fitScorer(pick(terms, trainIdx), pick(ys, trainIdx), len(names), opt)
		parallelFor(len(testIdx), opt.Workers, func(t int) {
			i := testIdx[t]
			vec, _ := sc.vocab.vectorize(terms[i])
			oof[i] = sc.scores(vec, make([]float64, len(names)))
		})
	}
	var calScores [][]float64
	var calY []int
	for i, s := range oof {
		if s != nil {
			calScores = append(calScores, s)
			calY = append(calY, ys[i])
		}
	}
	m.temp = fitTemperature(calScores, calY)
	if m.oosClass >= 0 {
		m.threshold = chooseThreshold(calScores, calY, m.temp, m.oosClass)
	}

	sc := fitScorer(terms, ys, len(names), opt)
	m.vocab, m.w, m.bias = sc.vocab, sc.w, sc.bias
	return m, nil
}

// scorer is the linear part of a model: vocabulary and weights.
type scorer struct {
	vocab *vocabulary
	k     int
	w     []float32
	bias  []float32
}

// fitScorer builds a vocabulary from terms and trains the SVM on it.
func fitScorer(terms [][]termCount, ys []int, k int, opt Options) *scorer {
	vocab := buildVocabulary(terms, minDF)
	xs := make([]sparse, len(terms))
	parallelFor(len(terms), opt.Workers, func(i int) { xs[i], _ = vocab.vectorize(terms[i]) })
	w, b := trainSVM(xs, ys, k, len(vocab.idf), opt.C, opt.Epochs, uint64(opt.Seed), opt.Workers)
	return &scorer{vocab: vocab, k: k, w: w, bias: b}
}

// scores writes the raw class scores of vec into out and returns it.
func (s *scorer) scores(vec sparse, out []float64) []float64 {
	return linearScores(vec, s.w, s.bias, s.k, out)
}

func linearScores(vec sparse, w, bias []float32, k int, out []float64) []float64 {
	for c := range k {
		out[c] = float64(bias[c])
	}
	for t, j := range vec.idx {
		v := float64(vec.val[t])
		row := w[int(j)*k : int(j)*k+k]
		for c, wc := range row {
			out[c] += v * float64(wc)
		}
	}
	return out
}

// Intents lists the in-scope intents the model knows, sorted.
func (m *Model) Intents() []string {
	out := make([]string, 0, len(m.intents))
	for i, n := range m.intents {
		if i != m.oosClass {
			out = append(out, n)
		}
	}
	return out
}

// Threshold is the out-of-scope threshold in use: Options.OOSThreshold if it
// was set, else the one chosen at training time.
func (m *Model) Threshold() float64 {
	if m.override > 0 {
		return m.override
	}
	return m.threshold
}

// Predict classifies text. An utterance with no word the model has seen is
// out of scope whatever the threshold.
func (m *Model) Predict(text string) Prediction {
	vec, known := m.vocab.vectorize(countTerms(extract(text)))
	k := len(m.intents)
	probs := softmax(linearScores(vec, m.w, m.bias, k, make([]float64, k)), m.temp)
	return m.decide(probs, known == 0)
}

// decide turns calibrated class probabilities into a Prediction.
func (m *Model) decide(probs []float64, unknown bool) Prediction {
	order := make([]int, 0, len(probs))
	for c := range probs {
		if c != m.oosClass {
			order = append(order, c)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case probs[a] > probs[b]:
			return -1
		case probs[a] < probs[b]:
			return 1
		}
		return 0
	})
	var p Prediction
	for _, c := range order[:min(maxTop, len(order))] {
		p.Top = append(p.Top, Scored{Intent: m.intents[c], Confidence: probs[c]})
	}
	best := order[0]
	pBest := probs[best]
	oos := unknown || pBest < m.Threshold() || (m.oosClass >= 0 && probs[m.oosClass] > pBest)
	if oos {
		p.Intent, p.OutOfScope, p.Confidence = OutOfScope, true, 1-pBest
	} else {
		p.Intent, p.Confidence = m.intents[best], pBest
	}
	return p
}

// softmax returns exp(s/t) normalised, in place.
func softmax(s []float64, t float64) []float64 {
	mx := math.Inf(-1)
	for _, v := range s {
		mx = max(mx, v/t)
	}
	var sum float64
	for i, v := range s {
		s[i] = math.Exp(v/t - mx)
		sum += s[i]
	}
	for i := range s {
		s[i] /= sum
	}
	return s
}

// parallelFor runs fn(0..n-1) on up to workers goroutines.
func parallelFor(n, workers int, fn func(i int)) {
	workers = max(1, min(workers, n))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

func pick[T any](xs []T, idx []int) []T {
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = xs[j]
	}
	return out
}
