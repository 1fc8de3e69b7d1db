package flite

import (
	"strings"
)

// Limits on what reaches flite in one utterance. flite's internal errors
// call exit(), and its synthesis time (and time to first audio) grows with
// the utterance, so every utterance is short and made of plain words.
const (
	// MaxUtteranceChars bounds one utterance (one flite call).
	MaxUtteranceChars = 300
	// maxTokenChars bounds one word; longer letter runs (hashes, base64,
	// keyboard mashing) are cut into pieces of tokenPieceChars.
	maxTokenChars   = 24
	tokenPieceChars = 12
)

// sentenceAbbrevs are words whose trailing period does not end a sentence
// when the next word starts with a capital (titles before names).
var sentenceAbbrevs = map[string]bool{"mr": true, "mrs": true, "ms": true, "mx": true, "dr": true, "prof": true,
	"st": true, "capt": true, "gen": true, "lt": true, "sgt": true, "rev": true, "hon": true, "mt": true, "ft": true,
	"gov": true, "sen": true, "rep": true, "pres": true, "vs": true, "no": true, "e.g": true, "i.e": true,
	"jan": true, "feb": true, "mar": true, "apr": true, "jun": true, "jul": true, "aug": true, "sep": true,
	"sept": true, "oct": true, "nov": true, "dec": true, "approx": true, "dept": true, "ext": true, "ave": true,
	"blvd": true, "rd": true, "apt": true, "ste": true, "fig": true, "vol": true, "tel": true}

// SplitSentences cuts text into sentences for speaking one at a time. A
// sentence ends at ". ", "? " or "! " (with closing quotes or brackets kept
// on the sentence), or at a line break. A period after a title or a common
// abbreviation ("Dr.", "e.g.", "Jan."), after a single initial ("J.") or
// inside a number ("3.5", "$1,234.56") does not end a sentence, and neither
// does a period followed by a lower-case word. Sentences longer than
// MaxUtteranceChars are cut further at clause punctuation (, ; : -), then
// before a conjunction, then between words. Empty pieces are dropped.
func SplitSentences(text string) []string {
	var out []string
	start := 0
	emit := func(end int) {
		if s := strings.TrimSpace(text[start:end]); s != "" && hasWordChar(s) {
			out = append(out, splitLong(s, MaxUtteranceChars)...)
		}
		start = end
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '\n' || c == '\r' {
			emit(i)
			continue
		}
		if c != '.' && c != '?' && c != '!' {
			continue
		}
		// Take the whole run of terminal punctuation and closing marks.
		j := i + 1
		for j < len(text) && strings.IndexByte(".?!\"')]", text[j]) >= 0 {
			j++
		}
		if j < len(text) && text[j] != ' ' && text[j] != '\t' && text[j] != '\n' && text[j] != '\r' {
			i = j - 1
			continue // "3.5", "e.g.x", "a.m.," : not an end
		}
		if c == '.' && j == i+1 && !periodEnds(text, i, j) {
			continue
		}
		emit(j)
		i = j - 1
	}
	emit(len(text))
	return out
}

// periodEnds decides whether the single period at text[i] (followed by
// white space at j, or the end) ends a sentence.
func periodEnds(text string, i, j int) bool {
	// The word before the period.
	k := i
	for k > 0 && (isLetterAt(text, k-1) || text[k-1] == '.') {
		k--
	}
	word := strings.ToLower(text[k:i])
	// The next word.
	n := j
	for n < len(text) && (text[n] == ' ' || text[n] == '\t') {
		n++
	}
	if n >= len(text) || text[n] == '\n' {
		return true
	}
	next := text[n]
	if next >= 'a' && next <= 'z' {
		return false // "approx. five", "e.g. this"
	}
	if sentenceAbbrevs[word] {
		return false
	}
	if len(word) == 1 && k < i && text[k] >= 'A' && text[k] <= 'Z' && isLetterAt(text, n) {
		// An initial before a name: "J. Smith". A single letter word at the
		// end of a sentence ("plan B.") is rare enough to accept.
		return !(text[n] >= 'A' && text[n] <= 'Z')
	}
	return true
}

// hasWordChar reports whether s contains a letter or digit.
func hasWordChar(s string) bool {
	for i := 0; i < len(s); i++ {
		if isLetterAt(s, i) || isDigitAt(s, i) {
			return true
		}
	}
	return false
}

// clauseConjunctions are words a long sentence may be cut before.
var clauseConjunctions = []string{" and ", " but ", " or ", " because ", " so ", " which ", " while ", " then ", " although ", " unless ", " until ", " when ", " where ", " that "}

// splitLong cuts s into pieces of at most limit bytes, preferring clause
// punctuation, then conjunctions, then spaces, and cutting inside a word
// only when one word is longer than limit.
func splitLong(s string, limit int) []string {
	var out []string
	for len(s) > limit {
		cut := -1
		// Clause punctuation followed by a space, as late as possible but
		// not in the first third (avoid tiny fragments).
		for i := limit - 1; i > limit/3; i-- {
			if strings.IndexByte(",;:", s[i]) >= 0 && i+1 < len(s) && s[i+1] == ' ' {
				cut = i + 1
				break
			}
		}
		if cut < 0 {
			best := -1
			for _, c := range clauseConjunctions {
				if k := strings.LastIndex(s[:limit], c); k > limit/3 && k > best {
					best = k
				}
			}
			if best > 0 {
				cut = best
			}
		}
		if cut < 0 {
			if k := strings.LastIndexByte(s[:limit], ' '); k > 0 {
				cut = k
			} else {
				cut = limit
			}
		}
		if piece := strings.TrimSpace(s[:cut]); piece != "" {
			out = append(out, piece)
		}
		s = strings.TrimSpace(s[cut:])
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}

// sanitize reduces one utterance to what flite reads safely: ASCII letters,
// in-word apostrophes and hyphens, and the punctuation , . ? ! (in runs of
// at most one mark). Digits that survived normalization are spelled out,
// over-long words are cut, and the result is at most MaxUtteranceChars. It
// returns "" when nothing speakable is left.
func sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	word := 0       // length of the current word (piece)
	run := 0        // letters left in the current word from its piece start
	pend := byte(0) // pending punctuation between words, strongest wins
	space := false
	flushSep := func() {
		if b.Len() == 0 {
			pend, space = 0, false
			return
		}
		if pend != 0 {
			b.WriteByte(pend)
			b.WriteByte(' ')
		} else if space {
			b.WriteByte(' ')
		}
		pend, space = 0, false
	}
	rank := map[byte]int{',': 1, '.': 2, '!': 3, '?': 4}
	addPunct := func(c byte) {
		if rank[c] > rank[pend] {
			pend = c
		}
		word = 0
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isLetterAt(s, i):
			if pend != 0 || space {
				flushSep()
			}
			if word == 0 {
				run = letterRun(s, i)
			} else if word >= tokenPieceChars && run > maxTokenChars {
				// An endless "word" (a hash, keyboard mashing): cut it into
				// pieces flite can spell in bounded time.
				b.WriteByte(' ')
				run -= word
				word = 0
			}
			b.WriteByte(c)
			word++
		case c >= '0' && c <= '9':
			if b.Len() > 0 {
				space = true
			}
			flushSep()
			b.WriteString(smallWords[c-'0'])
			space = true
			word = 0
		case (c == '\'' || c == '-') && word > 0 && isLetterAt(s, i+1) && pend == 0 && !space:
			b.WriteByte(c)
			word = 0
		case c == ',' || c == ';' || c == ':' || c == '(' || c == ')':
			addPunct(',')
		case c == '.' || c == '!' || c == '?':
			addPunct(c)
		default:
			space = true
			word = 0
		}
	}
	if pend == '.' || pend == '!' || pend == '?' {
		b.WriteByte(pend)
	}
	out := strings.TrimSpace(b.String())
	if len(out) > MaxUtteranceChars {
		cut := strings.LastIndexByte(out[:MaxUtteranceChars], ' ')
		if cut <= 0 {
			cut = MaxUtteranceChars
		}
		out = strings.TrimRight(out[:cut], " ,'-")
	}
	if !hasWordChar(out) {
		return ""
	}
	return out
}

// letterRun counts the ASCII letters starting at s[i].
func letterRun(s string, i int) int {
	n := 0
	for j := i; j < len(s) && isLetterAt(s, j); j++ {
		n++
	}
	return n
}

// firstUtteranceChars bounds the first utterance of a call. flite's
// clustergen voices (slt, rms, awb) compute a whole utterance's parameters
// before the first audio streams out, so the time to first audio grows with
// the first utterance; later utterances are ready long before they play.
const firstUtteranceChars = 80

// phraseBreaks are words a long first utterance may be cut before.
var phraseBreaks = []string{" and ", " but ", " or ", " because ", " so ", " as ", " for ", " on ", " at ", " in ",
	" with ", " from ", " to ", " which ", " that ", " if ", " when ", " while ", " after ", " before ", " until "}

// splitFirst cuts an utterance longer than firstUtteranceChars in two at a
// phrase boundary (a comma, else the latest conjunction or preposition), so
// the first part is short. It returns u unchanged when there is no good
// boundary, or none that leaves both parts a reasonable length.
func splitFirst(u string) []string {
	if len(u) <= firstUtteranceChars {
		return []string{u}
	}
	const minPart = 20
	cut := -1
	for i := firstUtteranceChars - 1; i >= minPart; i-- {
		if u[i] == ',' && i+1 < len(u) && u[i+1] == ' ' {
			cut = i + 1
			break
		}
	}
	if cut < 0 {
		for _, w := range phraseBreaks {
			k := strings.LastIndex(u[:min(len(u), firstUtteranceChars+len(w))], w)
			if k < minPart || k <= cut {
				continue
			}
			if w == " and " && nextIsNumberWord(u, k+len(w)) {
				continue // inside an amount: "thirty four dollars and fifty six cents"
			}
			cut = k
		}
	}
	if cut < 0 || len(u)-cut < minPart/2 {
		return []string{u}
	}
	return []string{strings.TrimSpace(u[:cut]), strings.TrimSpace(u[cut:])}
}

// prepare turns text into the sanitized utterances to speak, within
// maxChars in total. truncated reports that some of the text was dropped.
func prepare(norm Normalizer, text string, maxChars int) (utts []string, truncated bool) {
	// Normalizing expands text (digits become words), so bound the raw input
	// generously before doing any work on it.
	if limit := 4*maxChars + 256; len(text) > limit {
		cut := strings.LastIndexAny(text[:limit], " \n\t")
		if cut <= 0 {
			cut = limit
		}
		text, truncated = text[:cut], true
	}
	var sents []string
	for _, sent := range SplitSentences(norm.Normalize(text)) {
		if u := sanitize(sent); u != "" {
			sents = append(sents, u)
		}
	}
	if len(sents) > 0 {
		sents = append(splitFirst(sents[0]), sents[1:]...)
	}
	total := 0
	for _, u := range sents {
		if total+len(u) > maxChars {
			truncated = true
			if len(utts) == 0 {
				// Even the first sentence is too long: speak what fits.
				if cut := strings.LastIndexByte(u[:maxChars], ' '); cut > 0 {
					utts = append(utts, u[:cut])
				}
			}
			break
		}
		utts = append(utts, u)
		total += len(u) + 1
	}
	return utts, truncated
}
