package openai

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxSentenceBytes bounds one sentence handed to the synthesizer: a model
// that writes a very long sentence is cut at a clause so speech starts.
const maxSentenceBytes = 240

// abbreviations are words whose trailing period does not end a sentence.
var abbreviations = map[string]bool{
	"mr": true, "mrs": true, "ms": true, "mx": true, "dr": true, "prof": true, "st": true, "sr": true, "jr": true,
	"vs": true, "approx": true, "dept": true, "ext": true, "ave": true, "blvd": true, "rd": true,
	"apt": true, "ste": true, "fig": true, "vol": true, "tel": true, "inc": true, "ltd": true, "co": true,
	"corp": true, "jan": true, "feb": true, "mar": true, "apr": true, "jun": true, "jul": true, "aug": true,
	"sep": true, "sept": true, "oct": true, "nov": true, "dec": true, "mon": true, "tue": true, "wed": true,
	"thu": true, "fri": true, "sat": true, "sun": true, "min": true, "max": true, "hr": true, "hrs": true,
}

// sentenceSplitter cuts streamed model text into sentences as soon as each
// one is complete, so the first sentence is spoken while the rest is still
// being generated. A sentence ends at '.', '?' or '!' (with closing quotes
// and brackets) followed by a space and a word that does not start in
// lower case, or at a line break. A period inside a number ("3.5",
// "$1,234.56"), after a known abbreviation ("Dr.", "approx."), after a
// single initial ("J.") or inside a dotted abbreviation ("e.g.", "p.m.")
// does not end a sentence. The zero value is ready to use.
type sentenceSplitter struct {
	buf []byte
}

// push adds streamed text and appends every sentence it completes to out.
func (s *sentenceSplitter) push(delta string, out []string) []string {
	s.buf = append(s.buf, delta...)
	for {
		end, ok := s.boundary()
		if !ok {
			if len(s.buf) <= maxSentenceBytes {
				return out
			}
			end = cutLong(s.buf, maxSentenceBytes)
		}
		if t := speakable(string(s.buf[:end])); t != "" {
			out = append(out, t)
		}
		s.buf = s.buf[:copy(s.buf, s.buf[end:])]
	}
}

// flush returns the text left after the last sentence end ("" when none)
// and resets the splitter.
func (s *sentenceSplitter) flush() string {
	t := speakable(string(s.buf))
	s.buf = s.buf[:0]
	return t
}

// reset drops any pending text.
func (s *sentenceSplitter) reset() { s.buf = s.buf[:0] }

// boundary finds the end of the first complete sentence in buf. ok is
// false when more text is needed to decide.
func (s *sentenceSplitter) boundary() (int, bool) {
	b := s.buf
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\n' {
			if strings.TrimSpace(string(b[:i])) == "" {
				continue
			}
			return i + 1, true
		}
		if c != '.' && c != '?' && c != '!' {
			continue
		}
		j := i + 1
		for j < len(b) && strings.IndexByte(".?!\"')]*_`", b[j]) >= 0 {
			j++
		}
		if j == len(b) {
			return 0, false // the next character decides
		}
		if b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			i = j - 1 // "3.5", "e.g", "a.m" keep going
			continue
		}
		if c == '.' && j == i+1 && periodIsAbbreviation(b[:i]) {
			continue
		}
		// Look at the next word: a lower-case start continues the sentence.
		k := j
		for k < len(b) && (b[k] == ' ' || b[k] == '\t') {
			k++
		}
		if k == len(b) {
			return 0, false
		}
		if r, _ := utf8.DecodeRune(b[k:]); unicode.IsLower(r) && b[k] != '\n' {
			i = k - 1
			continue
		}
		return j, true
	}
	return 0, false
}

// periodIsAbbreviation reports whether the word before a period (the end
// of before) makes the period part of an abbreviation or an initial.
func periodIsAbbreviation(before []byte) bool {
	start := len(before)
	for start > 0 && before[start-1] != ' ' && before[start-1] != '\n' && before[start-1] != '\t' && before[start-1] != '(' {
		start--
	}
	w := string(before[start:])
	if w == "" {
		return false
	}
	switch strings.ToLower(w) {
	case "a.m", "p.m", "etc":
		// Often the last word of a sentence: the case of the next word decides.
		return false
	}
	if strings.Contains(w, ".") { // e.g, i.e, p.m, U.S
		return true
	}
	lineStart := strings.TrimSpace(string(before[:start])) == "" || before[start-1] == '\n'
	if lineStart && len(w) <= 2 && strings.Trim(w, "0123456789") == "" {
		return true // a numbered list item ("2. Item")
	}
	if utf8.RuneCountInString(w) == 1 {
		r, _ := utf8.DecodeRuneInString(w)
		return unicode.IsUpper(r) // "J." as an initial; "I." and "a." are rare enough
	}
	return abbreviations[strings.ToLower(w)]
}

// cutLong picks where to cut text that is longer than limit without a
// sentence end: after the last clause mark, else the last space, else at
// a rune boundary at the limit.
func cutLong(b []byte, limit int) int {
	head := string(b[:limit])
	for _, sep := range []string{"; ", ": ", ", ", " - ", " — "} {
		if i := strings.LastIndex(head, sep); i > limit/3 {
			return i + len(sep)
		}
	}
	if i := strings.LastIndexByte(head, ' '); i > 0 {
		return i + 1
	}
	for limit > 0 && !utf8.RuneStart(b[limit]) {
		limit--
	}
	if limit == 0 {
		return len(b)
	}
	return limit
}

var (
	mdListMarker = regexp.MustCompile(`^\s*(?:[-*•+]|\d{1,2}[.)])\s+`)
	mdHeading    = regexp.MustCompile(`^\s*#{1,6}\s+`)
	mdLink       = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	mdEmphasis   = strings.NewReplacer("**", "", "__", "", "`", "", "~~", "")
	spaces       = regexp.MustCompile(`\s+`)
)

// speakable removes the markdown a model writes despite the rules (list
// markers, headings, emphasis, link syntax) and folds whitespace, so the
// synthesizer never reads out "asterisk". It returns "" for text with no
// letter or digit.
func speakable(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if strings.ContainsAny(s, "*_`#[~•+-\n\t\r") || strings.Contains(s, "  ") || (s[0] >= '0' && s[0] <= '9') {
		s = stripMarkdown(s)
	}
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return s
		}
	}
	return ""
}

// stripMarkdown is speakable's slow path, for text that may hold markup.
func stripMarkdown(s string) string {
	s = mdHeading.ReplaceAllString(s, "")
	s = mdListMarker.ReplaceAllString(s, "")
	s = mdLink.ReplaceAllString(s, "$1")
	s = mdEmphasis.Replace(s)
	return strings.TrimSpace(spaces.ReplaceAllString(s, " "))
}
