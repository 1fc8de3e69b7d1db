// Package nlu is a pure-Go intent classifier for caller utterances. It is
// trained at start-up from labelled examples (Banking77's 10,000 utterances
// train in well under a minute on two cores), returns the most likely
// intents with calibrated confidences (of the predictions made with
// confidence 0.8, about 80% are right) and flags requests that are out of
// scope, so the knowledge-base responder can answer what it knows and hand
// the rest to a human.
//
// How it works:
//   - Text is normalised (lowercase, numbers and currency symbols become
//     placeholders, a light stemmer) and turned into word, stem, word-bigram,
//     word-trigram, content-word (skip-)bigram, content-word pair (any order,
//     up to 8 words apart) and in-word character 2–5-gram features, weighted
//     by sublinear TF-IDF and L2-normalised per group.
//   - A third group is dense: the IDF-weighted sum of stem vectors learnt
//     from the training utterances themselves (PPMI of stems sharing an
//     utterance, reduced to 100 dimensions by a randomized SVD), so words
//     used in the same company lend each other evidence.
//   - A fourth group, dense too, brings knowledge from outside the training
//     set: the IDF-weighted mean of pretrained English word vectors (GloVe
//     6B 100d for the 50,000 most frequent words, shipped in the binary;
//     see wordvec.go), so "vacation" lends evidence to "holiday" even when
//     only one of them was in the examples. Nothing is downloaded.
//   - Three scorers work on those vectors: one-vs-rest linear SVMs trained
//     by dual coordinate descent (in parallel across intents), a
//     nearest-neighbour index over the word features giving each intent the
//     similarity of its closest training utterance, and the same over the
//     pretrained sentence vectors (paraphrases without a word in common).
//   - Cross-fitting: the training data is split into folds, scorers trained
//     on the other folds score each fold, and these out-of-fold scores fit the
//     weights that mix the three scorers into softmax logits (a generalised
//     temperature scaling that calibrates the confidences).
//   - When the training data has out-of-scope examples (intent "oos"), they
//     are learnt as a class, and a logistic-regression gate over
//     out-of-scope signals (top confidence and its lead, oos probability, SVM
//     margin, nearest-neighbour similarities, share of known words, logit of
//     the oos probability) is fitted on the same out-of-fold scores; its
//     threshold is set to catch Options.OOSRecall of the held-out
//     out-of-scope examples.
//   - Finally the scorers are retrained on all the data.
//
// Training is deterministic for a given Options.Seed, whatever the number of
// workers.
package nlu

import (
	"cmp"
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
	// Epochs caps the SVM solver's passes over the data (it usually
	// converges in 10–20); 0 means 60.
	Epochs int
	// OOSThreshold overrides the out-of-scope threshold chosen at training
	// time: a prediction whose in-scope score is below it is out of scope.
	// The in-scope score is the gate's probability that the utterance is in
	// scope when the training data had out-of-scope examples, and the top
	// intent's confidence otherwise (then the trained threshold is 0: only
	// utterances without a single known word are out of scope). 0 keeps the
	// trained threshold.
	OOSThreshold float64
	// C is the SVM's inverse regularisation strength; 0 means 1.
	C float64
	// OOSRecall is the share of the held-out out-of-scope examples the
	// threshold chosen at training time must reject; it trades in-scope
	// accuracy for out-of-scope recall. 0 means 0.87: out-of-fold
	// out-of-scope examples are easier to catch than new ones (on CLINC150,
	// 0.87 out of fold gives about 0.81 on the validation split).
	OOSRecall float64
	// Folds is the number of cross-fitting folds whose out-of-fold scores
	// fit the calibration and the out-of-scope threshold; 0 means 3, and 1
	// skips cross-fitting (uncalibrated scores, no trained threshold).
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
	// Confidence is the calibrated probability that Intent is right; for an
	// out-of-scope prediction, the estimated probability that the utterance
	// is out of scope (at the out-of-scope rate of the training data).
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
	scorer    *scorer
	mix       []float64 // weight of each score component in the logits
	gate      *oosGate  // out-of-scope detector, nil without oos training data
	simPool   sync.Pool // *[]float32 scratch for nearest-neighbour scoring
	threshold float64   // out-of-scope threshold chosen at training time
	override  float64   // Options.OOSThreshold
}

// withDefaults fills in the zero fields of opt.
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
	if opt.OOSRecall <= 0 || opt.OOSRecall > 1 {
		opt.OOSRecall = 0.87
	}
	if opt.Folds <= 0 {
		opt.Folds = 3
	}
	return opt
}

// minDF is the minimum document frequency of kept features, by group.
var minDF = [numGroups]int{groupWord: 1, groupChar: 2}

// minPhraseDF is the minimum document frequency of kept word n-grams (n ≥ 2)
// when there are at least prunePhrasesFrom training examples: most n-grams
// occur once, and dropping those shrinks a Banking77 or CLINC150 model 2–3
// times (CLINC150: 146k → 63k features, 88 → 38 MB of weights) at the same
// accuracy. Smaller training sets, such as a knowledge base's examples, keep
// every n-gram.
var minPhraseDF = 2

// prunePhrasesFrom is the training-set size from which minPhraseDF applies.
const prunePhrasesFrom = 5000

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
	parallelFor(len(examples), opt.Workers, func(_, i int) { terms[i] = countTerms(extract(examples[i].Text)) })

	// The same vocabulary rule for the cross-fitted and the final scorers.
	phraseDF := 1
	if len(examples) >= prunePhrasesFrom {
		phraseDF = minPhraseDF
	}

	// Cross-fitting: out-of-fold scores for every example fit the
	// calibration and the threshold without touching data the scorer was
	// trained on.
	k := len(names)
	folds := stratifiedFolds(ys, k, opt.Folds, uint64(opt.Seed))
	oof := make([][]float64, len(examples))
	coverage := make([]float64, len(examples))
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
		sc := fitScorer(pick(terms, trainIdx), pick(ys, trainIdx), k, phraseDF, opt)
		sims := make([][]float32, opt.Workers)
		parallelFor(len(testIdx), opt.Workers, func(w, t int) {
			if sims[w] == nil {
				sims[w] = make([]float32, sc.knn.n)
			}
			i := testIdx[t]
			var vec sparse
			vec, coverage[i] = sc.vocab.vectorize(terms[i])
			oof[i] = sc.componentScores(vec, sims[w], make([]float64, numComponents*k))
		})
	}
	var calScores [][]float64
	var calY []int
	var calCov []float64
	for i, s := range oof {
		if s != nil {
			calScores = append(calScores, s)
			calY = append(calY, ys[i])
			calCov = append(calCov, coverage[i])
		}
	}
	m.mix = fitMixture(calScores, calY, k)
	if m.oosClass >= 0 {
		feats := make([][]float64, len(calScores))
		isOOS := make([]bool, len(calScores))
		inScore := make([]float64, len(calScores))
		for i, s := range calScores {
			probs := softmax(mixLogits(s, m.mix, k, make([]float64, k)), 1)
			best := m.bestInScope(probs)
			feats[i] = m.oosSignals(probs, s, best, calCov[i])
			isOOS[i] = calY[i] == m.oosClass
		}
		m.gate = fitGate(feats, isOOS)
		for i, f := range feats {
			inScore[i] = 1 - m.gate.prob(f)
		}
		m.threshold = chooseThreshold(inScore, isOOS, opt.OOSRecall)
	}

	m.scorer = fitScorer(terms, ys, k, phraseDF, opt)
	m.simPool.New = func() any { s := make([]float32, m.scorer.knn.n); return &s }
	return m, nil
}

// Score components: the linear SVM's margins and the nearest-neighbour
// similarities over word features and over pretrained sentence vectors,
// mixed into logits by weights fitted at training time.
const (
	compSVM = iota
	compKNN
	compPre
	numComponents
)

// scorer holds everything learnt from one training set: vocabulary, SVM
// weights and nearest-neighbour index.
type scorer struct {
	vocab *vocabulary
	k     int
	w     []float32 // feature-major weights: w[j*k+c]
	bias  []float32
	knn   *knnIndex
	pre   *denseIndex // nil without pretrained word vectors
}

// fitScorer builds a vocabulary from terms (keeping word n-grams seen in at
// least phraseDF of them) and trains the components on it.
func fitScorer(terms [][]termCount, ys []int, k, phraseDF int, opt Options) *scorer {
	vocab := buildVocabulary(terms, minDF, phraseDF, uint64(opt.Seed))
	xs := make([]sparse, len(terms))
	parallelFor(len(terms), opt.Workers, func(_, i int) { xs[i], _ = vocab.vectorize(terms[i]) })
	w, b := trainSVM(xs, ys, k, vocab.dim(), opt.C, opt.Epochs, uint64(opt.Seed), opt.Workers)
	sc := &scorer{vocab: vocab, k: k, w: w, bias: b, knn: newKNNIndex(xs, ys, vocab.dim(), vocab.group)}
	if vocab.pre >= 0 {
		sc.pre = newDenseIndex(xs, ys, vocab.pre, vocab.dim()-vocab.pre)
	}
	return sc
}

// componentScores writes the numComponents×k raw scores of vec into out
// (component-major) and returns it; sims is zeroed scratch of length knn.n.
func (s *scorer) componentScores(vec sparse, sims []float32, out []float64) []float64 {
	k := s.k
	linearScores(vec, s.w, s.bias, k, out[compSVM*k:compSVM*k+k])
	s.knn.scores(vec, sims, out[compKNN*k:compKNN*k+k])
	s.pre.scores(vec, out[compPre*k:compPre*k+k])
	return out
}

// mixLogits combines component scores into class logits.
func mixLogits(comp, mix []float64, k int, out []float64) []float64 {
	clear(out)
	for m, a := range mix {
		for c, v := range comp[m*k : m*k+k] {
			out[c] += a * v
		}
	}
	return out
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
	p, _ := m.predict(text)
	return p
}

// predict is Predict that also returns the in-scope score compared with the
// threshold.
func (m *Model) predict(text string) (Prediction, float64) {
	vec, coverage := m.scorer.vocab.vectorize(countTerms(extract(text)))
	k := len(m.intents)
	sims := m.simPool.Get().(*[]float32)
	comp := m.scorer.componentScores(vec, *sims, make([]float64, numComponents*k))
	m.simPool.Put(sims)
	probs := softmax(mixLogits(comp, m.mix, k, make([]float64, k)), 1)
	best := m.bestInScope(probs)

	var p Prediction
	p.Top = m.top(probs)
	// inScore is the probability that the utterance is in scope: from the
	// gate when there was out-of-scope training data, else the top intent's
	// confidence.
	inScore := probs[best]
	if m.gate != nil {
		inScore = 1 - m.gate.prob(m.oosSignals(probs, comp, best, coverage))
	}
	if coverage == 0 || inScore < m.Threshold() {
		p.Intent, p.OutOfScope, p.Confidence = OutOfScope, true, 1-inScore
	} else {
		p.Intent, p.Confidence = m.intents[best], probs[best]
	}
	if coverage == 0 {
		inScore = -1 // out of scope whatever the threshold
	}
	return p, inScore
}

// bestInScope returns the in-scope class with the highest probability.
func (m *Model) bestInScope(probs []float64) int {
	best := -1
	for c, v := range probs {
		if c != m.oosClass && (best < 0 || v > probs[best]) {
			best = c
		}
	}
	return best
}

// top lists up to maxTop in-scope intents by decreasing probability.
func (m *Model) top(probs []float64) []Scored {
	order := make([]int, 0, len(probs))
	for c := range probs {
		if c != m.oosClass {
			order = append(order, c)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(probs[b], probs[a]) })
	out := make([]Scored, 0, maxTop)
	for _, c := range order[:min(maxTop, len(order))] {
		out = append(out, Scored{Intent: m.intents[c], Confidence: probs[c]})
	}
	return out
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

// parallelFor runs fn(w, i) for i in 0..n-1 on up to workers goroutines;
// w identifies the goroutine (0..workers-1) for per-worker scratch space.
func parallelFor(n, workers int, fn func(w, i int)) {
	workers = max(1, min(workers, n))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				fn(w, i)
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
