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

// isBackchannel reports whether text holds nothing but backchannel words
// ("mm-hm", "uh huh", "okay", "i see"). Under ModeYesNo only fillers count,
// since "yeah" or "okay" answers the question.
func isBackchannel(text string, expect Mode) bool {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return unicode.IsSpace(r) || (unicode.IsPunct(r) && r != '-' && r != '\'')
	})
	if len(words) == 0 || len(words) > 3 {
		return false
	}
	for i, w := range words {
		w = strings.Trim(w, "-'")
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
