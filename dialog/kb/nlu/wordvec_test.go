package nlu

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"
)

func cosine(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// TestShippedWordVectors checks that the embedded vectors decode, are unit
// length and put synonyms closer than unrelated words.
func TestShippedWordVectors(t *testing.T) {
	wv := pretrained()
	if wv == nil {
		t.Fatal("no shipped word vectors")
	}
	if n := len(wv.index); n < 10000 || wv.dim != 100 || len(wv.vecs) != n*wv.dim {
		t.Fatalf("%d words × %d dims, %d values", n, wv.dim, len(wv.vecs))
	}
	for _, w := range []string{"card", "stolen", "theft", "refund", "weather", "holiday", "vacation", "money", "cash"} {
		v := wv.vector(w)
		if v == nil {
			t.Fatalf("no vector for %q", w)
		}
		if n := cosine(v, v); math.Abs(n-1) > 1e-5 {
			t.Errorf("|%s|² = %g", w, n)
		}
	}
	for _, c := range []struct{ a, near, far string }{
		{"stolen", "theft", "weather"},
		{"holiday", "vacation", "refund"},
		{"money", "cash", "weather"},
	} {
		near, far := cosine(wv.vector(c.a), wv.vector(c.near)), cosine(wv.vector(c.a), wv.vector(c.far))
		if near <= far+0.2 {
			t.Errorf("cos(%s, %s) = %.3f, cos(%s, %s) = %.3f", c.a, c.near, near, c.a, c.far, far)
		}
	}
	if wv.vector("Card") != nil || wv.vector("<num>") != nil {
		t.Error("vectors for words the tokenizer never produces")
	}
}

func TestParseWordVectors(t *testing.T) {
	enc := func(words []string, vecs [][]int8, scale float32) []byte {
		b := []byte("PWV1")
		b = binary.LittleEndian.AppendUint32(b, uint32(len(words)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(vecs[0])))
		for i, w := range words {
			b = append(b, byte(len(w)))
			b = append(b, w...)
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(scale))
			for _, q := range vecs[i] {
				b = append(b, byte(q))
			}
		}
		return b
	}
	b := enc([]string{"ab", "cd"}, [][]int8{{3, 4}, {-127, 0}}, 0.01)
	wv, err := parseWordVectors(b)
	if err != nil {
		t.Fatal(err)
	}
	if v := wv.vector("ab"); len(v) != 2 || math.Abs(float64(v[0])-0.6) > 1e-6 || math.Abs(float64(v[1])-0.8) > 1e-6 {
		t.Errorf("ab = %v, want [0.6 0.8]", v)
	}
	if v := wv.vector("cd"); len(v) != 2 || math.Abs(float64(v[0])+1) > 1e-6 || v[1] != 0 {
		t.Errorf("cd = %v, want [-1 0]", v)
	}
	if wv.vector("ef") != nil {
		t.Error("vector for an unknown word")
	}
	for _, bad := range [][]byte{nil, []byte("PWV2\x00\x00\x00\x00\x01\x00\x00\x00"), b[:len(b)-1], append(b[:len(b):len(b)], 0)} {
		if _, err := parseWordVectors(bad); err == nil {
			t.Errorf("parseWordVectors(%q) succeeded", bad)
		}
	}
}

// TestPretrainedVectorsGeneralise trains on two intents worded identically
// but for one word, and classifies utterances whose distinguishing word never
// occurs in training: only the pretrained vectors know that "wages" is about
// pay and "forecast" about the weather.
func TestPretrainedVectorsGeneralise(t *testing.T) {
	var ex []Example
	for _, carrier := range []string{"tell me about %s", "a question about %s", "i need to know about %s", "what about %s", "%s please", "info on %s"} {
		ex = append(ex, Example{Text: fmt.Sprintf(carrier, "salary"), Intent: "pay"},
			Example{Text: fmt.Sprintf(carrier, "weather"), Intent: "weather"})
	}
	m, err := Train(ex, Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]string{
		"tell me about wages":      "pay",
		"a question about payroll": "pay",
		"tell me about forecast":   "weather",
		"what about rain":          "weather",
	} {
		if p := m.Predict(text); p.Intent != want {
			t.Errorf("Predict(%q) = %s (%.2f), want %s", text, p.Intent, p.Confidence, want)
		}
	}
}
