package sphinx

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"unicode"
)

// arpaDiscount is the absolute discount of the bigram and trigram estimates
// (speech-stack.md §3.2: it gave 3.3 % WER on phone-quality call phrases).
const arpaDiscount = 0.5

// normalizeSentence turns free text (a knowledge-base example, an answer
// keyword) into the lower-case word sequence a caller would say: digits are
// spelled out, punctuation is dropped, apostrophes inside words are kept
// because cmudict spells "don't" and "i'm".
func normalizeSentence(s string) []string {
	var words []string
	var cur strings.Builder
	var digits strings.Builder
	flushWord := func() {
		if cur.Len() > 0 {
			w := strings.Trim(cur.String(), "'")
			if w != "" {
				words = append(words, w)
			}
			cur.Reset()
		}
	}
	flushDigits := func() {
		if digits.Len() > 0 {
			words = append(words, numberWords(digits.String())...)
			digits.Reset()
		}
	}
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			flushWord()
			digits.WriteRune(r)
		case unicode.IsLetter(r) && r < unicode.MaxASCII:
			flushDigits()
			cur.WriteRune(unicode.ToLower(r))
		case r == '\'' || r == '’':
			if cur.Len() > 0 {
				cur.WriteRune('\'')
			}
		case r == ',' && digits.Len() > 0:
			// "1,200": a thousands separator stays inside the number.
		default:
			flushWord()
			flushDigits()
		}
	}
	flushWord()
	flushDigits()
	return words
}

var (
	onesWords = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
		"ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"}
	tensWords = []string{"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}
)

// numberWords says a digit run the way callers do: as a number up to 9999,
// digit by digit for longer runs and for runs with a leading zero (account
// numbers, PINs).
func numberWords(d string) []string {
	if len(d) > 4 || (len(d) > 1 && d[0] == '0') {
		out := make([]string, 0, len(d))
		for _, c := range d {
			out = append(out, onesWords[c-'0'])
		}
		return out
	}
	n := 0
	for _, c := range d {
		n = n*10 + int(c-'0')
	}
	return cardinal(n)
}

// cardinal spells 0..9999.
func cardinal(n int) []string {
	if n < 20 {
		return []string{onesWords[n]}
	}
	var out []string
	if n >= 1000 {
		out = append(out, onesWords[n/1000], "thousand")
		n %= 1000
		if n == 0 {
			return out
		}
	}
	if n >= 100 {
		out = append(out, onesWords[n/100], "hundred")
		n %= 100
		if n == 0 {
			return out
		}
	}
	if n < 20 {
		return append(out, onesWords[n])
	}
	out = append(out, tensWords[n/10])
	if n%10 != 0 {
		out = append(out, onesWords[n%10])
	}
	return out
}

// ngramCounts holds the counts of a trigram model.
type ngramCounts struct {
	c1 map[string]float64
	c2 map[[2]string]float64
	c3 map[[3]string]float64
}

// countNgrams counts the sentences (already normalized word lists) with
// sentence boundary markers.
func countNgrams(sents [][]string) ngramCounts {
	n := ngramCounts{c1: map[string]float64{}, c2: map[[2]string]float64{}, c3: map[[3]string]float64{}}
	for _, s := range sents {
		if len(s) == 0 {
			continue
		}
		t := make([]string, 0, len(s)+2)
		t = append(append(append(t, "<s>"), s...), "</s>")
		for i := range t {
			n.c1[t[i]]++
			if i >= 1 {
				n.c2[[2]string{t[i-1], t[i]}]++
			}
			if i >= 2 {
				n.c3[[3]string{t[i-2], t[i-1], t[i]}]++
			}
		}
	}
	return n
}

// writeARPA writes a back-off trigram model in ARPA text format: add-one
// unigrams, absolutely discounted bigrams and trigrams with back-off weights
// that make every distribution sum to one (speech-stack.md §3.2). Keys are
// written in sorted order so that the same sentences give the same file.
func writeARPA(w io.Writer, sents [][]string) error {
	const D = arpaDiscount
	n := countNgrams(sents)
	if len(n.c1) == 0 {
		return fmt.Errorf("sphinx: language model has no sentences")
	}
	var N float64
	V := 0
	for k, c := range n.c1 {
		if k != "<s>" {
			N += c
			V++
		}
	}
	p1 := map[string]float64{}
	for k, c := range n.c1 {
		if k != "<s>" {
			p1[k] = (c + 1) / (N + float64(V))
		}
	}
	h1, n1 := map[string]float64{}, map[string]float64{}
	seen1 := map[string]float64{}
	for k, c := range n.c2 {
		h1[k[0]] += c
		n1[k[0]]++
		seen1[k[0]] += p1[k[1]]
	}
	p2 := map[[2]string]float64{}
	for k, c := range n.c2 {
		p2[k] = (c - D) / h1[k[0]]
	}
	bow1 := map[string]float64{}
	for h := range h1 {
		bow1[h] = backoff(D*n1[h]/h1[h], seen1[h])
	}
	h2, n2 := map[[2]string]float64{}, map[[2]string]float64{}
	seen2 := map[[2]string]float64{}
	for k, c := range n.c3 {
		h := [2]string{k[0], k[1]}
		h2[h] += c
		n2[h]++
		seen2[h] += p2[[2]string{k[1], k[2]}]
	}
	bow2 := map[[2]string]float64{}
	for h := range h2 {
		bow2[h] = backoff(D*n2[h]/h2[h], seen2[h])
	}

	k1 := make([]string, 0, len(n.c1))
	for k := range n.c1 {
		k1 = append(k1, k)
	}
	sort.Strings(k1)
	k2 := make([][2]string, 0, len(n.c2))
	for k := range n.c2 {
		k2 = append(k2, k)
	}
	sort.Slice(k2, func(i, j int) bool {
		if k2[i][0] != k2[j][0] {
			return k2[i][0] < k2[j][0]
		}
		return k2[i][1] < k2[j][1]
	})
	k3 := make([][3]string, 0, len(n.c3))
	for k := range n.c3 {
		k3 = append(k3, k)
	}
	sort.Slice(k3, func(i, j int) bool {
		for x := 0; x < 3; x++ {
			if k3[i][x] != k3[j][x] {
				return k3[i][x] < k3[j][x]
			}
		}
		return false
	})

	bw := bufio.NewWriter(w)
	lg := math.Log10
	fmt.Fprintf(bw, "\\data\\\nngram 1=%d\nngram 2=%d\nngram 3=%d\n\n\\1-grams:\n", len(k1), len(k2), len(k3))
	for _, k := range k1 {
		p := -99.0
		if k != "<s>" {
			p = lg(p1[k])
		}
		if b, ok := bow1[k]; ok {
			fmt.Fprintf(bw, "%.4f %s %.4f\n", p, k, lg(b))
		} else {
			fmt.Fprintf(bw, "%.4f %s\n", p, k)
		}
	}
	fmt.Fprintf(bw, "\n\\2-grams:\n")
	for _, k := range k2 {
		if b, ok := bow2[k]; ok {
			fmt.Fprintf(bw, "%.4f %s %s %.4f\n", lg(p2[k]), k[0], k[1], lg(b))
		} else {
			fmt.Fprintf(bw, "%.4f %s %s\n", lg(p2[k]), k[0], k[1])
		}
	}
	fmt.Fprintf(bw, "\n\\3-grams:\n")
	for _, k := range k3 {
		fmt.Fprintf(bw, "%.4f %s %s %s\n", lg((n.c3[k]-D)/h2[[2]string{k[0], k[1]}]), k[0], k[1], k[2])
	}
	fmt.Fprintf(bw, "\n\\end\\\n")
	return bw.Flush()
}

// backoff is the weight that gives the left-over mass to the lower order.
// When the seen continuations already take (nearly) all the lower-order
// mass, a tiny floor keeps the log finite.
func backoff(left, seenLower float64) float64 {
	rest := 1 - seenLower
	if rest < 1e-6 {
		rest = 1e-6
	}
	b := left / rest
	if b < 1e-9 {
		b = 1e-9
	}
	return b
}
