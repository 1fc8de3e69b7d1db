package sphinx

import (
	_ "embed"
	"strings"
	"sync"
)

// callerCorpusText is the text column of Banking77's training split: 10,003
// questions real bank customers asked, in their own wording (CC-BY-4.0,
// Casanueva et al. 2020; see data/SOURCE.md). The knowledge base lists what
// a caller may ask; this corpus teaches the language model how callers
// actually phrase it, which a list of expected phrases cannot (with it,
// open-wording questions went from 45 % to 14 % WER, speech-stack.md §12).
//
//go:embed data/banking77.txt
var callerCorpusText string

// callerCorpus returns the corpus as normalized word lists, parsed once per
// process; callers must not modify the result.
var callerCorpus = sync.OnceValue(func() [][]string {
	lines := strings.Split(callerCorpusText, "\n")
	out := make([][]string, 0, len(lines))
	for _, l := range lines {
		if ws := normalizeSentence(l); len(ws) > 0 {
			out = append(out, ws)
		}
	}
	return out
})

// corpusWeight decides how many times the knowledge-base sentences are
// repeated in the open-speech training text, so that the domain's own
// wording keeps weight next to a large general corpus: about
// kbShare of the word tokens come from the knowledge base.
func corpusWeight(kbTokens, corpusTokens int) int {
	if kbTokens == 0 || corpusTokens == 0 {
		return 1
	}
	w := int(kbShare / (1 - kbShare) * float64(corpusTokens) / float64(kbTokens))
	return max(1, min(w, maxKBRepeat))
}

// kbShare is the share of knowledge-base word tokens in the open-speech
// language model's training text when the caller corpus is mixed in.
const kbShare = 0.3

// maxKBRepeat bounds the repetition of a tiny knowledge base.
const maxKBRepeat = 200
