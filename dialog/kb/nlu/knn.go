package nlu

import "math"

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

// denseIndex finds, for each class, the training utterance whose pretrained
// sentence vector (the IDF-weighted mean of its words' pretrained vectors)
// is closest to a query's: a nearest-neighbour score in a space where
// paraphrases with no word in common still meet.
type denseIndex struct {
	from, dim int       // the dense features are vec indices from..from+dim-1
	vecs      []float32 // unit rows, zero for utterances without one
	ys        []int32
}

// newDenseIndex indexes the dense features from..from+dim-1 of xs; it
// returns nil if dim is 0.
func newDenseIndex(xs []sparse, ys []int, from, dim int) *denseIndex {
	if dim == 0 || from < 0 {
		return nil
	}
	ix := &denseIndex{from: from, dim: dim, vecs: make([]float32, len(xs)*dim), ys: make([]int32, len(ys))}
	for i, x := range xs {
		ix.ys[i] = int32(ys[i])
		ix.dense(x, ix.vecs[i*dim:i*dim+dim])
	}
	return ix
}

// dense copies the dense part of x into out, scaled to unit length, and
// reports whether it was non-zero.
func (ix *denseIndex) dense(x sparse, out []float32) bool {
	clear(out)
	var norm float64
	for t, j := range x.idx {
		if c := int(j) - ix.from; c >= 0 && c < ix.dim {
			out[c] = x.val[t]
			norm += float64(x.val[t]) * float64(x.val[t])
		}
	}
	if norm == 0 {
		return false
	}
	inv := float32(1 / math.Sqrt(norm))
	for c := range out {
		out[c] *= inv
	}
	return true
}

// scores writes each class's best cosine similarity between q and its
// training utterances into out (0 if none is positive).
func (ix *denseIndex) scores(x sparse, out []float64) []float64 {
	clear(out)
	if ix == nil {
		return out
	}
	q := make([]float32, ix.dim)
	if !ix.dense(x, q) {
		return out
	}
	d := ix.dim
	for i, c := range ix.ys {
		row := ix.vecs[i*d : i*d+d]
		var s0, s1, s2, s3 float32
		j := 0
		for ; j+4 <= d; j += 4 {
			s0 += row[j] * q[j]
			s1 += row[j+1] * q[j+1]
			s2 += row[j+2] * q[j+2]
			s3 += row[j+3] * q[j+3]
		}
		for ; j < d; j++ {
			s0 += row[j] * q[j]
		}
		if s := float64(s0 + s1 + s2 + s3); s > out[c] {
			out[c] = s
		}
	}
	return out
}
