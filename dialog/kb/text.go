package kb

import (
	"strings"
	"unicode"
)

// words lower-cases s and splits it into words of letters and digits;
// apostrophes inside words are dropped ("didn't" → "didnt") and every other
// character separates words.
func words(s string) []string {
	var out []string
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			out = append(out, b.String())
			b.Reset()
		}
	}
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
		case r == '\'' || r == '’':
			// inside a word: drop it, keep the word together
		default:
			flush()
		}
	}
	flush()
	return out
}

// splitSentences splits text after '.', '?' and '!' followed by white space,
// so each sentence can be synthesized as soon as it is ready.
func splitSentences(text string) []string {
	var out []string
	start := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		if (c == '.' || c == '?' || c == '!') && (i+1 == len(text) || text[i+1] == ' ') {
			if s := strings.TrimSpace(text[start : i+1]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(text[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// Spoken numbers.
var (
	unitWords = map[string]int{
		"zero": 0, "oh": 0, "o": 0, "nought": 0, "one": 1, "two": 2, "three": 3, "four": 4,
		"five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
	}
	teenWords = map[string]int{
		"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
		"sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
	}
	tensWords = map[string]int{
		"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
		"seventy": 70, "eighty": 80, "ninety": 90,
	}
	// homophones the recognizer writes for digits when a digit string is
	// expected ("for" for four); used only in that context.
	digitHomophones = map[string]int{"to": 2, "too": 2, "for": 4, "won": 1, "ate": 8}
	repeatWords     = map[string]int{"double": 2, "triple": 3}
)

// ParseDigits reads the digit string a caller spoke or typed: "four eight
// two one", "forty eight twenty one", "4821", "double four one oh",
// "four thousand eight hundred and twenty one" all give the digits in order.
// Words that are not numbers are skipped. When expecting is true (the caller
// was asked for digits) the recognizer's homophones "to", "for", "won" and
// "ate" count as digits too.
func ParseDigits(text string, expecting bool) string {
	p := digitParser{toks: words(text), expecting: expecting}
	return p.parse()
}

type digitParser struct {
	toks      []string
	i         int
	expecting bool
	out       strings.Builder
}

func (p *digitParser) unit(tok string) (int, bool) {
	if v, ok := unitWords[tok]; ok {
		return v, true
	}
	if p.expecting {
		v, ok := digitHomophones[tok]
		return v, ok
	}
	return 0, false
}

func (p *digitParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

// small reads a number below 100 in words ("forty", "forty eight",
// "fourteen", "eight") at the cursor.
func (p *digitParser) small() (int, bool) {
	tok := p.peek()
	if v, ok := tensWords[tok]; ok {
		p.i++
		if u, ok := unitWords[p.peek()]; ok && u > 0 {
			p.i++
			return v + u, true
		}
		return v, true
	}
	if v, ok := teenWords[tok]; ok {
		p.i++
		return v, true
	}
	if v, ok := p.unit(tok); ok {
		p.i++
		return v, true
	}
	return 0, false
}

// skipAnd consumes a connecting "and" ("two hundred and five").
func (p *digitParser) skipAnd() {
	if p.peek() == "and" && p.i+1 < len(p.toks) {
		if _, ok := p.peekSmall(p.i + 1); ok {
			p.i++
		}
	}
}

func (p *digitParser) peekSmall(i int) (int, bool) {
	save := p.i
	p.i = i
	v, ok := p.small()
	p.i = save
	return v, ok
}

// below1000 reads "eight", "forty eight" or "eight hundred and twenty one".
func (p *digitParser) below1000() (int, bool) {
	v, ok := p.small()
	if !ok {
		return 0, false
	}
	if p.peek() == "hundred" && v > 0 && v < 10 {
		p.i++
		v *= 100
		p.skipAnd()
		if r, ok := p.small(); ok {
			v += r
		}
	}
	return v, true
}

func (p *digitParser) parse() string {
	for p.i < len(p.toks) {
		tok := p.toks[p.i]
		if isDigits(tok) {
			p.out.WriteString(tok)
			p.i++
			continue
		}
		if n, ok := repeatWords[tok]; ok && p.i+1 < len(p.toks) {
			if u, ok := p.unit(p.toks[p.i+1]); ok {
				for range n {
					p.out.WriteByte(byte('0' + u))
				}
				p.i += 2
				continue
			}
		}
		start := p.i
		v, ok := p.below1000()
		if !ok {
			p.i++
			continue
		}
		if p.peek() == "thousand" && v > 0 && v < 100 {
			p.i++
			v *= 1000
			p.skipAnd()
			if r, ok := p.below1000(); ok {
				v += r
			}
		}
		// A lone unit keeps its own digit ("oh" is 0); compound numbers are
		// written out in full ("twenty" → "20").
		if p.i-start == 1 {
			if u, ok := p.unit(tok); ok {
				p.out.WriteByte(byte('0' + u))
				continue
			}
		}
		p.out.WriteString(itoa(v))
	}
	return p.out.String()
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	for v > 0 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return string(buf[i:])
}

// sayDigits spells a digit string for the synthesizer, one digit at a time
// ("4821" → "4 8 2 1"), so it is not read as "four thousand ...".
func sayDigits(d string) string {
	var b strings.Builder
	for i := 0; i < len(d); i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(d[i])
	}
	return b.String()
}

// Answers to yes/no questions.
type yesNo int

const (
	answerNone yesNo = iota
	answerYes
	answerNo
)

var (
	yesPhrases = phraseSet(`yes|yeah|yea|yep|yup|ya|aye|sure|certainly|definitely|absolutely|correct|right|okay|ok|alright|
		please|please do|go ahead|do it|that's right|that is right|thats it|that's it|sounds good|of course|uh huh|mhm|
		yes please|yes it is|it is|i do|i did|affirmative|exactly|true|that's correct|that is correct|you got it|perfect|fine`)
	noPhrases = phraseSet(`no|nope|nah|no thanks|no thank you|not really|wrong|incorrect|that's wrong|that is wrong|
		not right|that's not right|negative|i don't|i dont|it isn't|it is not|it's not|not that|none|nothing|no it isn't|
		no it's not|no that's wrong|don't|do not|not at all|i'm good|im good|i'm fine|that's all|thats all|that's everything`)
	// negators flip a leading yes-word ("yes no", "right no") only when
	// they come first, so "no problem" and "not bad" stay unclassified.
	yesWords = map[string]bool{"yes": true, "yeah": true, "yep": true, "yup": true, "sure": true, "correct": true, "okay": true, "ok": true, "right": true}
	noWords  = map[string]bool{"no": true, "nope": true, "nah": true, "wrong": true, "incorrect": true}
)

func phraseSet(list string) map[string]bool {
	m := map[string]bool{}
	for _, p := range strings.Split(list, "|") {
		if k := strings.Join(words(p), " "); k != "" {
			m[k] = true
		}
	}
	return m
}

// parseYesNo reads a reply to a yes/no question. Whole short replies are
// matched as phrases ("that's right", "no thanks"); otherwise the first word
// decides ("yes I did lose it", "no I meant the fees").
func parseYesNo(text string) yesNo {
	ws := words(text)
	if len(ws) == 0 {
		return answerNone
	}
	key := strings.Join(ws, " ")
	switch {
	case noPhrases[key]:
		return answerNo
	case yesPhrases[key]:
		return answerYes
	}
	// Leading fillers do not count.
	for len(ws) > 1 && (ws[0] == "um" || ws[0] == "uh" || ws[0] == "er" || ws[0] == "well" || ws[0] == "oh") {
		ws = ws[1:]
	}
	switch {
	case noWords[ws[0]]:
		return answerNo
	case yesWords[ws[0]]:
		return answerYes
	}
	return answerNone
}

// humanWords name a person to talk to.
var humanWords = map[string]bool{
	"agent": true, "agents": true, "representative": true, "representatives": true, "rep": true,
	"human": true, "humans": true, "person": true, "people": true, "operator": true, "advisor": true,
	"adviser": true, "colleague": true, "supervisor": true, "manager": true, "someone": true,
	"somebody": true, "staff": true,
}

// humanVerbs introduce a request to be put through ("speak to", "get me").
var humanVerbs = []string{
	"speak to", "speak with", "talk to", "talk with", "connect me", "put me through", "transfer me",
	"get me", "give me", "i want", "i need", "i would like", "id like", "can i have", "let me speak",
	"let me talk", "put me on", "escalate",
}

// asksForHuman reports whether a caller's words ask for a person. A short
// utterance naming one ("agent", "a real person please") counts; in a longer
// one the word must follow a request verb ("can I speak to an advisor"), so
// "I sent money to the wrong person" does not.
func asksForHuman(ws []string) bool {
	found := -1
	for i, w := range ws {
		if humanWords[w] {
			found = i
			break
		}
	}
	if found < 0 {
		return false
	}
	if len(ws) <= 4 {
		return true
	}
	for i := found; i < len(ws); i++ {
		if !humanWords[ws[i]] {
			continue
		}
		before := " " + strings.Join(ws[max(0, i-5):i], " ") + " "
		for _, v := range humanVerbs {
			if strings.Contains(before, " "+v+" ") {
				return true
			}
		}
	}
	return false
}

// fillers are hesitation sounds the recognizer writes as words.
var fillers = map[string]bool{"uh": true, "um": true, "umm": true, "er": true, "erm": true, "hmm": true, "mm": true, "ah": true, "eh": true}

// dropFillers removes hesitation sounds from ws.
func dropFillers(ws []string) []string {
	out := ws[:0:0]
	for _, w := range ws {
		if !fillers[w] {
			out = append(out, w)
		}
	}
	return out
}
