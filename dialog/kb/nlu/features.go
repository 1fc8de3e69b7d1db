package nlu

import (
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Feature groups. Each group is TF-IDF weighted and L2-normalised on its own
// and then mixed with a fixed weight, so that the many character n-grams of a
// long utterance cannot drown out its few, more telling word n-grams.
const (
	groupWord = iota
	groupChar
	groupDense
	groupPre
	numGroups
)

// groupWeight is the share of each group in the final unit-length vector.
var groupWeight = [numGroups]float64{groupWord: 1.0, groupChar: 0.8, groupDense: 0.5, groupPre: 0.5}

// Feature kinds: the first byte hashed into a feature key, so that the same
// string in two roles (a word and a stem, say) yields two features.
const (
	kindUnigram byte = iota + 1
	kindStem
	kindBigram
	kindTrigram
	kindContentBigram
	kindSkipBigram
	kindChar
	kindPair
	kindPre
)

// pairWindow bounds the distance, in content words, between the two words
// of a word-pair feature, so a long utterance costs linear, not quadratic,
// time.
var pairWindow = 8

// Placeholder tokens stand for whole classes of surface forms that carry the
// same intent: amounts and dates ("£20", "3rd") and currency symbols.
const (
	tokNumber   = "<num>"
	tokCurrency = "<cur>"
	tokBegin    = "<s>"
	tokEnd      = "</s>"
)

// stopWords are function words dropped for the content-bigram features; the
// plain word n-grams keep them because "my card" and "a card" differ in banking.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an the i me my mine we us our you your yours he him his she her it its
		they them their this that these those is am are was were be been being do does did have has had
		to of in on at by for with from as and or but if so than then there here what which who whom
		can could would should will shall may might must just please hi hello hey thanks thank also too very
		im ive id dont cant wont didnt doesnt isnt arent wasnt ill youre`) {
		m[w] = true
	}
	return m
}()

// tokenize lowercases text and splits it into word tokens: runs of letters
// and digits, with apostrophes inside words dropped ("hasn't" → "hasnt").
// Tokens containing a digit become tokNumber and currency symbols become
// tokCurrency. The result never contains an empty token.
func tokenize(text string) []string {
	toks := make([]string, 0, 16)
	var b strings.Builder
	hasDigit := false
	flush := func() {
		if b.Len() == 0 {
			return
		}
		if hasDigit {
			toks = append(toks, tokNumber)
		} else {
			toks = append(toks, b.String())
		}
		b.Reset()
		hasDigit = false
	}
	for i, r := range text {
		switch {
		case unicode.IsLetter(r):
			b.WriteRune(unicode.ToLower(r))
		case unicode.IsDigit(r):
			hasDigit = true
			b.WriteRune(r)
		case r == '\'' || r == '\u2019' || r == '`':
			// Keep "hasn't" in one piece; a leading or trailing quote splits.
			if b.Len() == 0 || !nextIsLetter(text, i+utf8.RuneLen(r)) {
				flush()
			}
		case r == '$' || r == '£' || r == '€' || r == '¥' || unicode.Is(unicode.Sc, r):
			flush()
			toks = append(toks, tokCurrency)
		default:
			flush()
		}
	}
	flush()
	return toks
}

func nextIsLetter(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsLetter(r)
}

// stem is a light English suffix stripper (plural, -ing, -ed, -ly and a few
// derivational endings). It only has to map inflections of one word to one
// key consistently; it does not have to produce real words.
func stem(w string) string {
	if len(w) <= 3 || w[0] == '<' {
		return w
	}
	for _, r := range []struct{ suf, rep string }{
		{"ational", "ate"}, {"ization", "ize"}, {"fulness", "ful"}, {"iveness", "ive"},
		{"ments", ""}, {"ment", ""}, {"ies", "y"}, {"sses", "ss"}, {"ied", "y"},
	} {
		if strings.HasSuffix(w, r.suf) && len(w)-len(r.suf)+len(r.rep) >= 3 {
			return w[:len(w)-len(r.suf)] + r.rep
		}
	}
	switch {
	case strings.HasSuffix(w, "ing") && len(w) > 5:
		return undouble(w[:len(w)-3])
	case strings.HasSuffix(w, "ed") && len(w) > 4:
		return undouble(w[:len(w)-2])
	case strings.HasSuffix(w, "ly") && len(w) > 5 && !strings.ContainsRune("ip", rune(w[len(w)-3])):
		// "monthly" → "month", but not "apply", "family".
		return w[:len(w)-2]
	case strings.HasSuffix(w, "es") && len(w) > 4 && strings.ContainsRune("sxz", rune(w[len(w)-3])):
		return w[:len(w)-2]
	case strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us") && len(w) > 3:
		return w[:len(w)-1]
	}
	return w
}

// undouble maps "stopp" (from "stopping") to "stop" and drops a final "e"
// difference by removing it, so "charg(e)" and "charg(ing)" meet.
func undouble(w string) string {
	n := len(w)
	if n >= 3 && w[n-1] == w[n-2] && !strings.ContainsRune("aeiouls", rune(w[n-1])) {
		return w[:n-1]
	}
	return w
}

// stemKey is stem plus removal of a final "e", used for the stem features so
// that "charge", "charged" and "charging" share one key.
func stemKey(w string) string {
	s := stem(w)
	if len(s) > 3 && s[len(s)-1] == 'e' {
		s = s[:len(s)-1]
	}
	return s
}

// hasher is FNV-1a over 64 bits, fed incrementally so n-gram keys never need
// to be built as strings.
type hasher uint64

const (
	fnvOffset hasher = 14695981039346656037
	fnvPrime  hasher = 1099511628211
)

func newHasher(kind byte) hasher { return (fnvOffset ^ hasher(kind)) * fnvPrime }

func (h hasher) str(s string) hasher {
	for i := 0; i < len(s); i++ {
		h = (h ^ hasher(s[i])) * fnvPrime
	}
	return h
}

func (h hasher) sep() hasher { return (h ^ 0x1f) * fnvPrime }

// rawFeature is one occurrence of a hashed feature in an utterance.
type rawFeature struct {
	key    uint64
	group  uint8
	phrase bool  // a word n-gram (n ≥ 2), kept only if seen in minPhraseDF utterances
	stem   bool  // a stem feature, with a learnt word vector
	row    int32 // 1 + row of a kindPre feature's pretrained vector
}

// extract lists the hashed feature occurrences of text, unsorted and with
// repeats (the counts are the term frequencies).
func extract(text string) []rawFeature {
	toks := tokenize(text)
	out := make([]rawFeature, 0, 24*len(toks)+8)
	add := func(h hasher, g uint8) { out = append(out, rawFeature{key: uint64(h), group: g}) }
	addPhrase := func(h hasher) { out = append(out, rawFeature{key: uint64(h), group: groupWord, phrase: true}) }

	stems := make([]string, len(toks))
	content := make([]string, 0, len(toks))
	for i, t := range toks {
		stems[i] = stemKey(t)
		add(newHasher(kindUnigram).str(t), groupWord)
		out = append(out, rawFeature{key: uint64(newHasher(kindStem).str(stems[i])), group: groupWord, stem: true})
		if !stopWords[t] {
			content = append(content, stems[i])
			if wv := pretrained(); wv != nil {
				if r, ok := wv.index[t]; ok {
					out = append(out, rawFeature{key: uint64(newHasher(kindPre).str(t)), group: groupPre, row: r + 1})
				}
			}
		}
	}
	// Word bigrams and trigrams with sentence boundaries, over stems so that
	// inflection does not split the evidence.
	padded := make([]string, 0, len(toks)+2)
	padded = append(padded, tokBegin)
	padded = append(padded, stems...)
	padded = append(padded, tokEnd)
	for i := 0; i+1 < len(padded); i++ {
		addPhrase(newHasher(kindBigram).str(padded[i]).sep().str(padded[i+1]))
		if i+2 < len(padded) {
			addPhrase(newHasher(kindTrigram).str(padded[i]).sep().str(padded[i+1]).sep().str(padded[i+2]))
		}
	}
	// Content-word bigrams and skip-bigrams bridge the function words that
	// vary between paraphrases ("top up my card" / "top-up of the card").
	for i := 0; i+1 < len(content); i++ {
		addPhrase(newHasher(kindContentBigram).str(content[i]).sep().str(content[i+1]))
		if i+2 < len(content) {
			addPhrase(newHasher(kindSkipBigram).str(content[i]).sep().str(content[i+2]))
		}
	}
	// Unordered pairs of content words anywhere in the utterance: a linear
	// model cannot express "card and arrive" on single words, and the pair
	// tells "my card has not arrived" from "when will my card be delivered".
	for i := range content {
		for j := i + 1; j < len(content) && j-i <= pairWindow; j++ {
			a, b := content[i], content[j]
			if a == b {
				continue
			}
			if a > b {
				a, b = b, a
			}
			addPhrase(newHasher(kindPair).str(a).sep().str(b))
		}
	}
	// Character 2- to 5-grams inside each word padded with spaces: robust to
	// typos and unseen inflections.
	var buf []byte
	emit := func(buf []byte, lo, hi int) {
		for n := lo; n <= hi && n <= len(buf); n++ {
			for i := 0; i+n <= len(buf); i++ {
				h := newHasher(kindChar)
				for _, c := range buf[i : i+n] {
					h = (h ^ hasher(c)) * fnvPrime
				}
				add(h, groupChar)
			}
		}
	}
	for _, t := range toks {
		if t[0] == '<' {
			continue
		}
		buf = append(buf[:0], ' ')
		buf = append(buf, t...)
		buf = append(buf, ' ')
		emit(buf, 2, 5)
	}
	return out
}

// termCount is a distinct feature of one utterance and its count.
type termCount struct {
	key    uint64
	group  uint8
	phrase bool
	stem   bool
	row    int32
	count  int
}

// countTerms sorts and merges the occurrences returned by extract.
func countTerms(raw []rawFeature) []termCount {
	slices.SortFunc(raw, func(a, b rawFeature) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	out := make([]termCount, 0, len(raw))
	for _, f := range raw {
		if n := len(out); n > 0 && out[n-1].key == f.key {
			out[n-1].count++
			continue
		}
		out = append(out, termCount{f.key, f.group, f.phrase, f.stem, f.row, 1})
	}
	return out
}

// sparse is a sparse feature vector with strictly increasing indices.
type sparse struct {
	idx []int32
	val []float32
}

// vocabulary maps hashed features seen in training to dense indices and
// holds their inverse document frequencies.
type vocabulary struct {
	index  map[uint64]int32
	idf    []float32
	group  []uint8 // by feature index, including the dense features
	emb    *embedding
	dense  int                // index of the first dense feature (= len(idf))
	pre    int                // index of the first pretrained-vector feature, or -1
	preIDF map[uint64]float32 // IDF of the words with pretrained vectors
	preMax float32            // IDF of a word seen in no training utterance
}

// dim is the number of features: sparse ones, the learnt embedding's and the
// pretrained vectors'.
func (v *vocabulary) dim() int { return len(v.group) }

// buildVocabulary keeps the features that occur in at least minDF[group]
// training utterances, and the word n-grams that occur in at least
// minPhraseDF.
func buildVocabulary(docs [][]termCount, minDF [numGroups]int, minPhraseDF int, seed uint64) *vocabulary {
	df := map[uint64]int{}
	grp := map[uint64]uint8{}
	phrase := map[uint64]bool{}
	preDF := map[uint64]int{}
	for _, d := range docs {
		for _, t := range d {
			if t.group == groupPre {
				preDF[t.key]++
				continue
			}
			df[t.key]++
			grp[t.key] = t.group
			if t.phrase {
				phrase[t.key] = true
			}
		}
	}
	keys := make([]uint64, 0, len(df))
	for k, n := range df {
		need := minDF[grp[k]]
		if phrase[k] {
			need = max(need, minPhraseDF)
		}
		if n >= need {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // deterministic index order
	v := &vocabulary{index: make(map[uint64]int32, len(keys)), idf: make([]float32, len(keys)), group: make([]uint8, len(keys))}
	n := float64(len(docs))
	for i, k := range keys {
		v.index[k] = int32(i)
		v.idf[i] = float32(math.Log((1+n)/(1+float64(df[k]))) + 1)
		v.group[i] = grp[k]
	}
	v.dense = len(keys)
	if v.emb = buildEmbedding(docs, seed); v.emb != nil {
		for range v.emb.dim {
			v.group = append(v.group, groupDense)
		}
	}
	v.pre = -1
	if wv := pretrained(); wv != nil {
		v.pre = len(v.group)
		v.preIDF = make(map[uint64]float32, len(preDF))
		for k, c := range preDF {
			v.preIDF[k] = float32(math.Log((1+n)/(1+float64(c))) + 1)
		}
		v.preMax = float32(math.Log(1+n) + 1)
		for range wv.dim {
			v.group = append(v.group, groupPre)
		}
	}
	return v
}

// vectorize turns counted terms into a unit-length vector: TF-IDF of the
// sparse features (sublinear term frequency), the utterance's learnt
// embedding and the IDF-weighted sum of its content words' pretrained vectors,
// each group L2-normalised and the groups mixed by groupWeight.
// Terms outside the vocabulary are dropped; coverage is the share of the
// distinct word features that are in the vocabulary (0 without any), a
// telling sign of out-of-scope requests.
func (v *vocabulary) vectorize(terms []termCount) (vec sparse, coverage float64) {
	known, words := 0, 0
	vec.idx = make([]int32, 0, len(terms))
	vec.val = make([]float32, 0, len(terms))
	var norm [numGroups]float64
	var pre []float64
	for _, t := range terms {
		if t.group == groupWord {
			words++
		}
		if t.group == groupPre {
			if v.pre >= 0 {
				if pre == nil {
					pre = make([]float64, pretrained().dim)
				}
				idf, ok := v.preIDF[t.key]
				if !ok {
					idf = v.preMax
				}
				w := (1 + math.Log(float64(t.count))) * float64(idf)
				for c, x := range pretrained().vecs[int(t.row-1)*len(pre) : int(t.row)*len(pre)] {
					pre[c] += w * float64(x)
				}
			}
			continue
		}
		j, ok := v.index[t.key]
		if !ok {
			continue
		}
		w := (1 + math.Log(float64(t.count))) * float64(v.idf[j])
		vec.idx = append(vec.idx, j)
		vec.val = append(vec.val, float32(w))
		norm[t.group] += w * w
		if t.group == groupWord {
			known++
		}
	}
	if dense := v.emb.embed(terms, v); dense != nil {
		for c, x := range dense {
			vec.idx = append(vec.idx, int32(v.dense+c))
			vec.val = append(vec.val, float32(x))
			norm[groupDense] += x * x
		}
	}
	for c, x := range pre {
		vec.idx = append(vec.idx, int32(v.pre+c))
		vec.val = append(vec.val, float32(x))
		norm[groupPre] += x * x
	}
	var scale [numGroups]float64
	var total float64
	for g := range norm {
		if norm[g] > 0 {
			total += groupWeight[g] * groupWeight[g]
		}
	}
	for g := range norm {
		if norm[g] > 0 {
			scale[g] = groupWeight[g] / math.Sqrt(norm[g]*total)
		}
	}
	for i, j := range vec.idx {
		vec.val[i] *= float32(scale[v.group[j]])
	}
	// Indices must increase for the merge-style dot products; map order
	// follows hash order, not index order.
	sortSparse(&vec)
	if words > 0 {
		coverage = float64(known) / float64(words)
	}
	return vec, coverage
}

func sortSparse(v *sparse) {
	if slices.IsSorted(v.idx) {
		return
	}
	perm := make([]int, len(v.idx))
	for i := range perm {
		perm[i] = i
	}
	slices.SortFunc(perm, func(a, b int) int { return int(v.idx[a]) - int(v.idx[b]) })
	idx := make([]int32, len(perm))
	val := make([]float32, len(perm))
	for i, p := range perm {
		idx[i], val[i] = v.idx[p], v.val[p]
	}
	v.idx, v.val = idx, val
}
