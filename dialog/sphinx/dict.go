package sphinx

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// letterNames spells letters the way callers say them ("a t m"), for the
// letter-to-sound fallback of acronyms missing from cmudict.
var letterNames = map[rune]string{
	'a': "EY", 'b': "B IY", 'c': "S IY", 'd': "D IY", 'e': "IY", 'f': "EH F", 'g': "JH IY",
	'h': "EY CH", 'i': "AY", 'j': "JH EY", 'k': "K EY", 'l': "EH L", 'm': "EH M", 'n': "EH N",
	'o': "OW", 'p': "P IY", 'q': "K Y UW", 'r': "AA R", 's': "EH S", 't': "T IY", 'u': "Y UW",
	'v': "V IY", 'w': "D AH B AH L Y UW", 'x': "EH K S", 'y': "W AY", 'z': "Z IY",
}

// lexicon is the part of cmudict a model needs, plus the words that had to
// be spelled by the fallback and those that could not be spelled at all.
type lexicon struct {
	prons   map[string][]string // word -> pronunciations (phone strings)
	guessed []string            // spelled by the letter-to-sound fallback
	dropped []string            // no pronunciation: removed from the model
}

// readLexicon reads the pronunciations of words from a cmudict-format file
// ("word PH PH", alternates as "word(2) PH PH"). Reading the 3 MB file
// costs tens of milliseconds; it only happens at start-up and on Rebuild, so
// the full dictionary is never kept in memory.
func readLexicon(path string, words map[string]bool) (*lexicon, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sphinx: read dictionary: %w", err)
	}
	return parseLexicon(data, words), nil
}

// parseLexicon finds the words in a cmudict-format text and spells the
// missing ones with the fallback.
func parseLexicon(data []byte, words map[string]bool) *lexicon {
	found := scanLexicon(data, words)
	lx := &lexicon{prons: map[string][]string{}}
	var missing []string
	for w := range words {
		if p, ok := found[w]; ok {
			lx.prons[w] = p
		} else {
			missing = append(missing, w)
		}
	}
	if len(missing) == 0 {
		return lx
	}
	// The fallback spells missing words from parts (stems, compound halves):
	// a second scan fetches just those parts.
	parts := map[string]bool{}
	for _, w := range missing {
		for i := 2; i <= len(w)-2; i++ {
			parts[w[:i]] = true
			parts[w[i:]] = true
		}
	}
	known := scanLexicon(data, parts)
	for _, w := range missing {
		if p, ok := guessPron(w, known); ok {
			lx.prons[w] = []string{p}
			lx.guessed = append(lx.guessed, w)
		} else {
			lx.dropped = append(lx.dropped, w)
		}
	}
	sort.Strings(lx.guessed)
	sort.Strings(lx.dropped)
	return lx
}

// scanLexicon returns the pronunciations of the wanted words, in file order.
func scanLexicon(data []byte, want map[string]bool) map[string][]string {
	out := map[string][]string{}
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		sp := bytes.IndexAny(line, " \t")
		if sp <= 0 {
			continue
		}
		w := line[:sp]
		if i := bytes.IndexByte(w, '('); i > 0 {
			w = w[:i]
		}
		if !want[string(w)] {
			continue
		}
		pron := strings.Join(strings.Fields(string(line[sp:])), " ")
		if pron != "" && validPron(pron) {
			out[string(w)] = append(out[string(w)], pron)
		}
	}
	return out
}

// validPron rejects lines that are not a list of upper-case phone names, so
// that a damaged dictionary file cannot make the decoder refuse to start.
func validPron(p string) bool {
	for _, r := range p {
		if r != ' ' && (r < 'A' || r > 'Z') {
			return false
		}
	}
	return true
}

// guessPron is the letter-to-sound fallback for words missing from cmudict:
// possessives and plurals of known words, compounds of two known words
// ("cashback" = "cash" + "back"), and acronyms (words of up to three
// letters, or up to five without a vowel) spelled letter by letter. Anything else is dropped rather than guessed badly,
// because a wrong pronunciation attracts false matches.
func guessPron(w string, known map[string][]string) (string, bool) {
	for _, suf := range []string{"'s", "s", "es"} {
		if stem, ok := strings.CutSuffix(w, suf); ok && len(stem) >= 2 {
			if p, ok := known[stem]; ok {
				return p[0] + " " + pluralPhone(p[0]), true
			}
		}
	}
	for i := 2; i <= len(w)-2; i++ {
		a, aok := known[w[:i]]
		b, bok := known[w[i:]]
		if aok && bok {
			return a[0] + " " + b[0], true
		}
	}
	if len(w) <= 3 || (len(w) <= 5 && !strings.ContainsAny(w, "aeiouy'")) {
		var ph []string
		for _, r := range w {
			n, ok := letterNames[r]
			if !ok {
				return "", false
			}
			ph = append(ph, n)
		}
		return strings.Join(ph, " "), true
	}
	return "", false
}

// pluralPhone picks the plural ending after a pronunciation's last phone.
func pluralPhone(pron string) string {
	f := strings.Fields(pron)
	switch f[len(f)-1] {
	case "S", "Z", "SH", "ZH", "CH", "JH":
		return "IH Z"
	case "P", "T", "K", "F", "TH":
		return "S"
	default:
		return "Z"
	}
}

// writeDict writes the lexicon in pocketsphinx dictionary format, sorted.
func (lx *lexicon) writeDict(w io.Writer) error {
	keys := make([]string, 0, len(lx.prons))
	for k := range lx.prons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	bw := bufio.NewWriter(w)
	for _, k := range keys {
		for i, p := range lx.prons[k] {
			if i == 0 {
				fmt.Fprintf(bw, "%s %s\n", k, p)
			} else {
				fmt.Fprintf(bw, "%s(%d) %s\n", k, i+1, p)
			}
		}
	}
	return bw.Flush()
}
