package dialog

import (
	"strings"
	"unicode"
)

// PartialStream is implemented by a TranscribeStream that can tell its
// hypothesis so far without ending the utterance (pocketsphinx can). The
// Session uses it to hold off a barge-in while the caller's overlapping
// speech is only a backchannel ("mm-hm", "right"); streams without it
// barge in on sustained speech alone.
type PartialStream interface {
	Partial() (string, error)
}

// fillers never carry an answer.
var fillers = map[string]bool{
	"mm": true, "mmm": true, "mhm": true, "mmhm": true, "mmhmm": true, "hm": true, "hmm": true,
	"uh": true, "um": true, "uhm": true, "er": true, "erm": true, "ah": true, "oh": true,
	"aha": true, "uhhuh": true, "uh-huh": true, "mm-hm": true, "mm-hmm": true, "huh": true,
}

// acknowledgements are backchannels unless the AI asked a yes/no question,
// where they are the answer.
var acknowledgements = map[string]bool{
	"yeah": true, "yep": true, "yes": true, "okay": true, "ok": true, "right": true,
	"sure": true, "alright": true, "i": true, "see": true, "got": true, "it": true,
}

// continuations are words a finished sentence rarely ends with: articles,
// possessives, conjunctions, prepositions that need an object, subject
// pronouns and auxiliaries. A partial hypothesis ending in one promises
// more, so the turn waits for the full end-of-turn silence.
var continuations = map[string]bool{
	"a": true, "an": true, "the": true, "my": true, "your": true, "our": true, "their": true, "his": true,
	"and": true, "but": true, "or": true, "nor": true, "because": true, "cause": true, "if": true, "unless": true,
	"whether": true, "although": true, "than": true, "to": true, "of": true, "for": true, "with": true,
	"into": true, "onto": true, "from": true, "by": true, "about": true, "between": true, "during": true,
	"i": true, "we": true, "they": true, "he": true, "she": true, "i'm": true, "i'd": true, "i'll": true,
	"i've": true, "we're": true, "it's": true, "that's": true, "there's": true,
	"is": true, "are": true, "was": true, "were": true, "am": true, "be": true, "been": true,
	"would": true, "could": true, "should": true, "will": true, "shall": true, "might": true, "must": true,
	"um": true, "uh": true, "uhm": true, "er": true, "erm": true, "ah": true, "hmm": true, "mm": true, "like": true,
}

// yesNoWords answer a yes/no question.
var yesNoWords = map[string]bool{
	"yes": true, "yeah": true, "yep": true, "yup": true, "no": true, "nope": true, "nah": true,
	"sure": true, "correct": true, "right": true, "okay": true, "ok": true, "absolutely": true,
	"definitely": true, "negative": true, "affirmative": true, "wrong": true,
}

// digitWords are how a recognizer spells digits.
var digitWords = map[string]bool{
	"zero": true, "oh": true, "o": true, "one": true, "two": true, "three": true, "four": true,
	"five": true, "six": true, "seven": true, "eight": true, "nine": true,
}

// minEarlyDigits is how many digits a partial needs before a digit string
// may end at the early (not the long digits) silence.
const minEarlyDigits = 4

// splitWords lower-cases text and cuts it into words, keeping hyphens and
// apostrophes inside words ("mm-hm", "i'm").
func splitWords(text string) []string {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return unicode.IsSpace(r) || (unicode.IsPunct(r) && r != '-' && r != '\'')
	})
	for i, w := range words {
		words[i] = strings.Trim(w, "-'")
	}
	return words
}

// digitCount counts the digits in words: digit words and numerals.
func digitCount(words []string) int {
	n := 0
	for _, w := range words {
		if digitWords[w] {
			n++
			continue
		}
		for _, r := range w {
			if r >= '0' && r <= '9' {
				n++
			}
		}
	}
	return n
}

// turnLooksComplete reports whether a partial hypothesis reads as a whole
// caller turn for what the AI asked (expect), so a short pause may end it:
// open speech needs words that do not end in a continuation ("how do I
// activate my") or a digit (a number being read out); a yes/no question
// needs a yes/no word; a digit string needs at least minEarlyDigits
// digits. Fillers alone never complete a turn.
func turnLooksComplete(text string, expect Mode) bool {
	words := splitWords(text)
	// "oh" is a filler in speech but a digit in a number.
	filler := func(w string) bool { return fillers[w] && !(expect == ModeDigits && digitWords[w]) }
	content := 0
	for _, w := range words {
		if w != "" && !filler(w) {
			content++
		}
	}
	if content == 0 {
		return false
	}
	last := words[len(words)-1]
	if continuations[last] || filler(last) {
		return false
	}
	switch expect {
	case ModeDigits:
		return digitCount(words) >= minEarlyDigits
	case ModeYesNo:
		for _, w := range words {
			if yesNoWords[w] {
				return true
			}
		}
		return false
	default:
		return digitCount(words[len(words)-1:]) == 0
	}
}

// joinTexts joins the transcripts of the parts of one caller turn.
func joinTexts(a, b string) string {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " " + b
}

// isBackchannel reports whether text holds nothing but backchannel words
// ("mm-hm", "uh huh", "okay", "i see"). Under ModeYesNo only fillers count,
// since "yeah" or "okay" answers the question.
func isBackchannel(text string, expect Mode) bool {
	words := splitWords(text)
	if len(words) == 0 || len(words) > 3 {
		return false
	}
	for i, w := range words {
		switch {
		case fillers[w]:
		case w == "huh" && i > 0 && words[i-1] == "uh":
		case expect != ModeYesNo && acknowledgements[w]:
			// "i", "see", "got", "it" only as "i see" / "got it".
			if (w == "i" || w == "got") && (i+1 >= len(words) || (words[i+1] != "see" && words[i+1] != "it")) {
				return false
			}
			if (w == "see" || w == "it") && (i == 0 || (words[i-1] != "i" && words[i-1] != "got")) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// wordPrefix returns the first fraction (0..1) of text's words, rounded
// down: the part of a sentence the caller heard before a barge-in.
func wordPrefix(text string, fraction float64) string {
	if fraction >= 1 {
		return text
	}
	if fraction <= 0 {
		return ""
	}
	words := strings.Fields(text)
	n := int(fraction * float64(len(words)))
	return strings.Join(words[:n], " ")
}
