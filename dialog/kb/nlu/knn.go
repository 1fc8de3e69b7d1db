package nlu

// knnIndex finds the training utterances most similar to a query (dot
// product of the word-feature parts of the TF-IDF vectors) through an
// inverted index. Its class score is the similarity of the nearest training
// utterance of each class: paraphrases of a training example are recognised
// even when the linear model's weights for their rarer words are small.
// Character n-grams are left out: their postings are long (a few bigrams
// occur in most utterances), so they would dominate the cost of a query
// while adding little to finding a paraphrase.
type knnIndex struct {
	n     int
	start []int32   // postings of feature j: doc[start[j]:start[j+1]]
	doc   []int32   // training utterance ids
	val   []float32 // feature weights in those utterances
	ys    []int32   // class of each training utterance
}

// newKNNIndex indexes the word features (group[j] == groupWord) of the
// vectors xs over dim features labelled ys.
func newKNNIndex(xs []sparse, ys []int, dim int, group []uint8) *knnIndex {
	ix := &knnIndex{n: len(xs), start: make([]int32, dim+1), ys: make([]int32, len(ys))}
	for i, y := range ys {
		ix.ys[i] = int32(y)
	}
	for _, x := range xs {
		for _, j := range x.idx {
			if group[j] == groupWord {
				ix.start[j+1]++
			}
		}
	}
	for j := range dim {
		ix.start[j+1] += ix.start[j]
	}
	ix.doc = make([]int32, ix.start[dim])
	ix.val = make([]float32, ix.start[dim])
	fill := make([]int32, dim)
	copy(fill, ix.start[:dim])
	for i, x := range xs {
		for t, j := range x.idx {
			if group[j] != groupWord {
				continue
			}
			p := fill[j]
			ix.doc[p], ix.val[p] = int32(i), x.val[t]
			fill[j]++
		}
	}
	return ix
}

// scores writes, for each class, the cosine similarity of q to the class's
// nearest training utterance into out (0 for classes without overlap).
// sims is scratch space of length ix.n, returned zeroed for reuse.
func (ix *knnIndex) scores(q sparse, sims []float32, out []float64) []float64 {
	for t, j := range q.idx {
		v := q.val[t]
		lo, hi := ix.start[j], ix.start[j+1]
		docs, vals := ix.doc[lo:hi], ix.val[lo:hi]
		for p, d := range docs {
			sims[d] += v * vals[p]
		}
	}
	clear(out)
	for d, s := range sims {
		if s != 0 {
			c := ix.ys[d]
			if float64(s) > out[c] {
				out[c] = float64(s)
			}
			sims[d] = 0
		}
	}
	return out
}
