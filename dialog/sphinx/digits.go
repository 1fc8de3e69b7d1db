package sphinx

/*
#cgo pkg-config: pocketsphinx sphinxbase
#include <stdlib.h>
#include <pocketsphinx.h>

static double parley_ps_get_float(ps_decoder_t *ps, const char *key) {
	return cmd_ln_float_r(ps_get_config(ps), key);
}
static void parley_ps_set_float(ps_decoder_t *ps, const char *key, double v) {
	cmd_ln_set_float_r(ps_get_config(ps), key, v);
}
*/
import "C"

import (
	"sort"
	"strings"
	"unsafe"
)

// oneDigitMaxSpan is the longest speech (first to last word) that two or
// more digits found by the any-length grammar may span and still be read again
// as one digit: the any-length grammar splits long single digits ("six" ->
// "two eight"; on the recorded digits such splits spanned 0.28-0.61 s),
// while two digits really spoken take longer (flite's fast kal voice:
// 0.64 s). Path scores of the two grammars cannot decide it: their
// insertion penalties differ, and the one-digit path always scored better.
const oneDigitMaxSpan = 60 // frames of 10 ms

// digitVariantSuffix marks the words that carry a digit's extra
// pronunciations in the one-digit grammar: "four-v" reads "four".
const digitVariantSuffix = "-v"

// oneDigitVariants are pronunciations of digits that only the one-digit
// second pass hears (as the words "<digit>-v", so neither the any-length
// digits grammar nor the open language model sees them). Measured on the
// recorded digits (FSDD jackson, US, and nicolas, Belgian French; go test
// ./dialog/sphinx -run TestDigitsAccuracy -args -sphinx.full), together
// with digitPIP: 77.6 % -> 82.7 % (jackson 94.8 -> 96.4 %, nicolas 60.4 ->
// 69.0 %).
//
//   - "six" with its /s/ heard as a stop: the phone band keeps only the
//     low end of the hiss, which a phone recognizer reads as T (nicolas
//     "T EY D", jackson "S T IH R"); alone +1.0 point, both speakers;
//   - "zero" with its /z/ as a D (the voicing without the frication) and
//     no /r/ (an r that is not English, uvular or vocalized, is heard as
//     L, D or nothing): zero -> two 33 -> 15 errors;
//   - a rhotic "four" with the vowel of "go".
//
// Tried and left out: "D IH R OW" / "D IY R OW" for zero and the
// non-rhotic "F AO" / "F OW" for four (+1 point each on nicolas, but a
// recorded "three" of jackson's read zero, and a spoken "oh" read four:
// with the /f/ gone in the phone band, F OW is "oh"), a French six (S IY
// S, IY S: 0), a vowel and a stop for six (T IH T, T IH D: three, seven
// and two read six, -3 points), zero as Z EH R OW / Z EY R OW (+0.2), an
// r-less four (AO R, OW R, P AO R: 0). Most of four -> zero (47 left, all
// nicolas) is "oh": a weight of 0.1 or 0.001 on "oh" in the grammar did
// nothing, and only taking "oh" out (+1.1 points) removed it, which would
// make a caller's lone "oh" read as another digit.
var oneDigitVariants = map[string][]string{
	"six":  {"T IH K S", "T IH K", "T IY K"},
	"zero": {"D IY OW"},
	"four": {"F OW R"},
}

// digitPIP is the phone insertion penalty of the one-digit search (a
// factor on the path probability per phone; the decoder's default is 1):
// above 1 it favours digits with more phones over the short ones ("oh",
// "two", "eight") that a clipped or accented digit decays to. All
// recorded digits, first tried with a wider variant set: 1: 79.3 %, 2:
// 81.3 %, 3: 81.7 %, 5: 82.0 %; with the final set 2: 82.3 %, 3: 82.8 %,
// 5: 83.1 %. 3 was best or tied for jackson (96.2-96.6 %) and is chosen
// there; 10 and 100 cost 1-4 points (six -> seven).
const digitPIP = 3

// digitGrammar accepts exactly one spoken digit. A caller who answers a
// digits prompt with one digit is heard better by it than by the
// any-length grammar, which splits long vowels into two digits or finds
// none (recorded digits: 76 % against 69 %), so short digit answers are
// decoded a second time with it (secondPass). With variants it lists the
// "-v" words of oneDigitVariants too.
func digitGrammar(variants bool) string {
	alts := []string{"zero", "oh"}
	alts = append(alts, digitWords[1:]...)
	if variants {
		var vs []string
		for w := range oneDigitVariants {
			vs = append(vs, w+digitVariantSuffix)
		}
		sort.Strings(vs)
		alts = append(alts, vs...)
	}
	return "#JSGF V1.0;\ngrammar digit;\npublic <digit> = " + strings.Join(alts, " | ") + ";\n"
}

// addDigitVariants adds the one-digit pass's variant words to the lexicon.
func addDigitVariants(lx *lexicon) {
	for w, vs := range oneDigitVariants {
		lx.prons[w+digitVariantSuffix] = append([]string(nil), vs...)
	}
}

// setDigitSearch adds the one-digit search with its own phone insertion
// penalty: a search reads -pip from the decoder's configuration when it is
// created, so the value is set for the creation and restored afterwards.
func setDigitSearch(d *decoder, variants bool) error {
	key := C.CString("-pip")
	defer C.free(unsafe.Pointer(key))
	old := C.parley_ps_get_float(d.ps, key)
	C.parley_ps_set_float(d.ps, key, digitPIP)
	defer C.parley_ps_set_float(d.ps, key, old)
	return d.setJSGF(searchDigit, digitGrammar(variants), 0)
}

// secondPass decodes a short digits answer (no digit, one, or several
// within oneDigitMaxSpan) again with the one-digit grammar and takes its
// reading: on recorded single digits this raised accuracy from 69 % to
// 76 % (eval_test.go). Three or more digits within the span (a long digit
// split in three, "zero" -> "two zero eight"; no one speaks three digits
// in 0.6 s) were left alone at first; reading them again took the
// recorded digits from 82.7 % to 83.0 %.
func (s *stream) secondPass(d *decoder, h hypothesis) (hypothesis, error) {
	n, first, last := 0, 0, 0
	for _, sg := range h.words {
		if !isFiller(sg.word) {
			if n == 0 {
				first = sg.start
			}
			last = sg.end
			n++
		}
	}
	if (n >= 2 && last-first > oneDigitMaxSpan) || len(s.keep) == 0 {
		return h, nil
	}
	if err := d.setSearch(searchDigit); err != nil {
		return h, err
	}
	if err := d.start(s.cmn); err != nil {
		return h, err
	}
	if err := d.process(s.keep, false); err != nil {
		d.abort()
		return h, err
	}
	one, err := d.end()
	if err != nil {
		return h, err
	}
	if one.text == "" {
		return h, nil
	}
	one.text = strings.ReplaceAll(one.text, digitVariantSuffix, "")
	for i, sg := range one.words {
		one.words[i].word = strings.TrimSuffix(baseWord(sg.word), digitVariantSuffix)
	}
	return one, nil
}
