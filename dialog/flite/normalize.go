package flite

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Normalizer rewrites written text as the words a person would say, for a
// synthesizer that reads words literally. The zero value reads numeric
// dates the US way (month/day); it is safe for concurrent use.
type Normalizer struct {
	// DayFirst reads numeric dates as day/month, the British way: 03/12/2024
	// is "December third". Without it 03/12/2024 is "March twelfth". A date
	// whose first number is above 12 is read day first either way, and ISO
	// dates (2024-03-12) are always year-month-day.
	DayFirst bool
}

// Normalize is Normalizer{}.Normalize: US month/day date order.
func Normalize(text string) string { return Normalizer{}.Normalize(text) }

// Normalize returns text with numbers, money, dates, times, percentages,
// phone, account and card numbers, symbols and common abbreviations written
// out as words, in plain ASCII:
//
//	"$12.50"            → "twelve dollars and fifty cents"
//	"3:45pm"            → "three forty five P M"
//	"2024-03-12"        → "March twelfth, twenty twenty four"
//	"ending in 4821"    → "ending in four eight two one"
//	"Dr. Smith & co."   → "Doctor Smith and co."
//
// Digit strings that are identifiers rather than quantities (phone numbers,
// numbers after "account", "card", "ending in", "PIN" and similar, numbers
// with a leading zero, and runs of five or more digits that are not round
// hundreds) are read digit by digit, in groups. Sentence punctuation is
// kept so SplitSentences can still find the sentences; line breaks are kept
// as "\n".
func (n Normalizer) Normalize(text string) string {
	s := cleanText(text)
	// No pass writes digits, so text without digits skips the number passes.
	digits := strings.ContainsAny(s, "0123456789")
	for _, p := range passes {
		if p.digits && !digits {
			continue
		}
		s = p.run(n, s)
	}
	return tidy(s)
}

// A pass rewrites one kind of written form; passes run in order, so the
// specific forms (phone numbers, dates) are consumed before the general
// number pass sees their digits. digits marks passes that only act on text
// containing digits.
type pass struct {
	run    func(n Normalizer, s string) string
	digits bool
}

var passes = []pass{
	{passEmails, false},
	{passMasked, true},
	{passPhones, true},
	{passDates, true},
	{passRanges, false},
	{passTimes, true},
	{passCurrency, true},
	{passPercent, true},
	{passOrdinals, true},
	{passContextDigits, true},
	{passSlashes, false},
	{passUnits, true},
	{passNegatives, true},
	{passNumbers, true},
	{passAbbreviations, false},
	{passSymbols, false},
}

// replaceFunc is regexp.ReplaceAllStringFunc with access to the whole input
// and the submatch indexes, so a replacement can look at its context. f
// returns the replacement and whether to replace at all.
func replaceFunc(re *regexp.Regexp, s string, f func(s string, m []int) (string, bool)) string {
	idx := re.FindAllStringSubmatchIndex(s, -1)
	if idx == nil {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/2)
	last := 0
	for _, m := range idx {
		r, ok := f(s, m)
		if !ok {
			continue
		}
		b.WriteString(s[last:m[0]])
		b.WriteByte(' ')
		b.WriteString(r)
		b.WriteByte(' ')
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// group returns submatch i of m in s, or "".
func group(s string, m []int, i int) string {
	if 2*i+1 >= len(m) || m[2*i] < 0 {
		return ""
	}
	return s[m[2*i]:m[2*i+1]]
}

// isLetterAt reports whether s has an ASCII letter at byte i.
func isLetterAt(s string, i int) bool {
	if i < 0 || i >= len(s) {
		return false
	}
	c := s[i] | 0x20
	return c >= 'a' && c <= 'z'
}

// isDigitAt reports whether s has an ASCII digit at byte i.
func isDigitAt(s string, i int) bool { return i >= 0 && i < len(s) && s[i] >= '0' && s[i] <= '9' }

// sentenceEndAfter reports whether position i of s (just after a consumed
// abbreviation period) is the end of a sentence: the end of the text or
// whitespace followed by an upper-case letter.
func sentenceEndAfter(s string, i int) bool {
	j := i
	for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
		j++
	}
	if j == len(s) || s[j] == '\n' {
		return true
	}
	return j > i && s[j] >= 'A' && s[j] <= 'Z'
}

// ---- cleaning ---------------------------------------------------------------

// translit maps common non-ASCII runes to ASCII text. Latin letters with
// accents are handled by foldLatin; this table holds punctuation, symbols
// and letters that do not decompose.
var translit = map[rune]string{
	'\u2018': "'", '\u2019': "'", '\u201A': "'", '\u201B': "'", '\u2032': "'",
	'\u201C': `"`, '\u201D': `"`, '\u201E': `"`, '\u00AB': `"`, '\u00BB': `"`, '\u2033': `"`,
	'\u2013': "-", '\u2012': "-", '\u2010': "-", '\u2011': "-", '\u2212': "-",
	'\u2014': ", ", '\u2015': ", ",
	'\u2026': "...", '\u00B7': " ", '\u2022': ", ",
	'\u20AC': "€", '\u00A3': "£", '\u00A2': "¢", '\u00A5': " yen ",
	'\u00BD': " and a half", '\u00BC': " and a quarter", '\u00BE': " and three quarters",
	'\u00B0': " degrees ", '\u00D7': " times ", '\u00F7': " divided by ", '\u00B1': " plus or minus ",
	'\u2122': " ", '\u00AE': " ", '\u00A9': " ", '\u00A7': " section ", '\u00B6': " ",
	'\u00DF': "ss", '\u00C6': "AE", '\u00E6': "ae", '\u0152': "OE", '\u0153': "oe",
	'\u00D8': "O", '\u00F8': "o", '\u0141': "L", '\u0142': "l", '\u00D0': "D", '\u00F0': "d",
	'\u00DE': "Th", '\u00FE': "th", '\u0131': "i", '\u0110': "D", '\u0111': "d",
}

// latinBase maps accented Latin letters (Latin-1 Supplement and Latin
// Extended-A) to their base letter.
var latinBase = func() map[rune]rune {
	groups := map[rune]string{
		'A': "ÀÁÂÃÄÅĀĂĄ", 'a': "àáâãäåāăą", 'C': "ÇĆĈĊČ", 'c': "çćĉċč", 'D': "Ď", 'd': "ď",
		'E': "ÈÉÊËĒĔĖĘĚ", 'e': "èéêëēĕėęě", 'G': "ĜĞĠĢ", 'g': "ĝğġģ", 'H': "ĤĦ", 'h': "ĥħ",
		'I': "ÌÍÎÏĨĪĬĮİ", 'i': "ìíîïĩīĭį", 'J': "Ĵ", 'j': "ĵ", 'K': "Ķ", 'k': "ķ",
		'L': "ĹĻĽĿ", 'l': "ĺļľŀ", 'N': "ÑŃŅŇ", 'n': "ñńņň", 'O': "ÒÓÔÕÖŌŎŐ", 'o': "òóôõöōŏő",
		'R': "ŔŖŘ", 'r': "ŕŗř", 'S': "ŚŜŞŠ", 's': "śŝşš", 'T': "ŢŤŦ", 't': "ţťŧ",
		'U': "ÙÚÛÜŨŪŬŮŰŲ", 'u': "ùúûüũūŭůűų", 'W': "Ŵ", 'w': "ŵ", 'Y': "ÝŶŸ", 'y': "ýÿŷ",
		'Z': "ŹŻŽ", 'z': "źżž",
	}
	m := map[rune]rune{}
	for base, list := range groups {
		for _, r := range list {
			m[r] = base
		}
	}
	return m
}()

// cleanText makes text plain ASCII (plus the currency signs € £ ¢ the
// currency pass reads): accents are folded, typographic punctuation is
// mapped, control characters and other scripts are dropped, and runs of
// white space collapse to one space, or to "\n" when they contain a line
// break.
func cleanText(text string) string {
	var b strings.Builder
	b.Grow(len(text))
	space, newline := false, false
	flush := func() {
		if newline {
			b.WriteByte('\n')
		} else if space {
			b.WriteByte(' ')
		}
		space, newline = false, false
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		switch {
		case r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029' || r == '\v' || r == '\f':
			newline = true
			continue
		case r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u200B' || r == '\uFEFF':
			space = true
			continue
		}
		if b.Len() > 0 {
			flush()
		} else {
			space, newline = false, false
		}
		switch {
		case r < 0x80:
			b.WriteRune(r)
		case latinBase[r] != 0:
			b.WriteRune(latinBase[r])
		case translit[r] != "":
			b.WriteString(translit[r])
		default:
			// Another script, an emoji or a symbol flite cannot read:
			// drop it but keep the word break.
			space = true
		}
	}
	return b.String()
}

// ---- e-mail addresses and web addresses ---------------------------------------

var (
	reEmail = regexp.MustCompile(`\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}\b`)
	reURL   = regexp.MustCompile(`\b(?:https?://|www\.)[A-Za-z0-9.-]{1,253}(?:/[A-Za-z0-9._~/%-]*)?`)
)

// spellAddress reads an e-mail or web address: dots as "dot", other
// punctuation by name, digits one by one.
func spellAddress(a string) string {
	var parts []string
	word := strings.Builder{}
	flush := func() {
		if word.Len() == 1 {
			parts = append(parts, letterName(word.String()[0]))
		} else if word.Len() > 0 {
			parts = append(parts, word.String())
		}
		word.Reset()
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		switch {
		case c >= '0' && c <= '9':
			flush()
			parts = append(parts, smallWords[c-'0'])
		case isLetterAt(a, i):
			word.WriteByte(c)
		default:
			flush()
			switch c {
			case '.':
				parts = append(parts, "dot")
			case '@':
				parts = append(parts, "at")
			case '/':
				parts = append(parts, "slash")
			case '-':
				parts = append(parts, "dash")
			case '_':
				parts = append(parts, "underscore")
			}
		}
	}
	flush()
	return strings.Join(parts, " ")
}

func passEmails(_ Normalizer, s string) string {
	s = replaceFunc(reEmail, s, func(s string, m []int) (string, bool) {
		return spellAddress(s[m[0]:m[1]]), true
	})
	return replaceFunc(reURL, s, func(s string, m []int) (string, bool) {
		u := s[m[0]:m[1]]
		u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
		u = strings.TrimRight(u, "/.")
		trail := ""
		if strings.HasSuffix(s[m[0]:m[1]], ".") && sentenceEndAfter(s, m[1]) {
			trail = "."
		}
		a := spellAddress(u)
		if strings.HasPrefix(a, "www ") {
			a = "W W W" + a[3:]
		}
		return a + trail, true
	})
}

// ---- masked card numbers, phone numbers ----------------------------------------

var reMasked = regexp.MustCompile(`(?:[*xX#\x{2022}]{2,}[\s-]?)+(\d{2,6})\b`)

func passMasked(_ Normalizer, s string) string {
	return replaceFunc(reMasked, s, func(s string, m []int) (string, bool) {
		if isLetterAt(s, m[0]-1) {
			return "", false
		}
		return digitWords(group(s, m, 1)), true
	})
}

var (
	reIntlPhone = regexp.MustCompile(`\+(\d{1,3})((?:[ .-]?\(?\d{1,5}\)?){2,6})`)
	reNANP      = regexp.MustCompile(`(?:\b(1)[ .-]?)?(?:\((\d{3})\)\s?|\b(\d{3})[ .-])(\d{3})[ .-](\d{4})\b`)
	reLocal     = regexp.MustCompile(`\b(\d{3})-(\d{4})\b`)
	reDigitRun  = regexp.MustCompile(`\d+`)
)

// tollFree are area codes that callers say as a number ("one eight hundred").
var tollFree = map[string]string{"800": "eight hundred", "888": "eight eight eight", "877": "eight seven seven",
	"866": "eight six six", "855": "eight five five", "844": "eight four four", "833": "eight three three"}

func passPhones(_ Normalizer, s string) string {
	s = replaceFunc(reIntlPhone, s, func(s string, m []int) (string, bool) {
		if isDigitAt(s, m[1]) || isLetterAt(s, m[1]) {
			return "", false
		}
		groups := []string{digitWords(group(s, m, 1))}
		for _, g := range reDigitRun.FindAllString(group(s, m, 2), -1) {
			groups = append(groups, digitWords(g))
		}
		return "plus " + strings.Join(groups, ", "), true
	})
	s = replaceFunc(reNANP, s, func(s string, m []int) (string, bool) {
		area := group(s, m, 2) + group(s, m, 3)
		var groups []string
		if group(s, m, 1) != "" {
			groups = append(groups, "one")
		}
		if w, ok := tollFree[area]; ok && group(s, m, 1) != "" {
			groups = append(groups, w)
		} else {
			groups = append(groups, digitWords(area))
		}
		groups = append(groups, digitWords(group(s, m, 4)), digitWords(group(s, m, 5)))
		return strings.Join(groups, ", "), true
	})
	return replaceFunc(reLocal, s, func(s string, m []int) (string, bool) {
		if m[0] > 0 && (s[m[0]-1] == '-' || s[m[0]-1] == '$') {
			return "", false
		}
		return digitWords(group(s, m, 1)) + ", " + digitWords(group(s, m, 2)), true
	})
}

// ---- dates ----------------------------------------------------------------------

const monthRE = `(Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)`

var (
	reISODate     = regexp.MustCompile(`\b(\d{4})-(\d{1,2})-(\d{1,2})\b`)
	reNumDate     = regexp.MustCompile(`\b(\d{1,2})([/-])(\d{1,2})([/-])(\d{4}|\d{2})\b`)
	reDotDate     = regexp.MustCompile(`\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b`)
	reMonthDay    = regexp.MustCompile(`\b` + monthRE + `\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:(,?\s+)(\d{4})\b)?`)
	reDayMonth    = regexp.MustCompile(`\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?` + monthRE + `\b\.?(?:(,?\s+)(\d{4})\b)?`)
	reMonthYear   = regexp.MustCompile(`\b` + monthRE + `\.?,?\s+(\d{4})\b`)
	monthByPrefix = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
)

func monthNumber(name string) int {
	if len(name) < 3 {
		return 0
	}
	return monthByPrefix[strings.ToLower(name[:3])]
}

// spokenDate reads a valid date as "March twelfth, twenty twenty four";
// year 0 means no year. ok is false for impossible dates.
func spokenDate(month, day, year int) (string, bool) {
	if month < 1 || month > 12 || day < 1 || day > daysIn(month) {
		return "", false
	}
	out := monthNames[month] + " " + ordinal(int64(day))
	if year > 0 {
		out += ", " + yearWords(year)
	}
	return out, true
}

func daysIn(month int) int {
	switch month {
	case 2:
		return 29
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// twoDigitYear expands a two-digit year: 00-69 → 2000s, 70-99 → 1900s.
func twoDigitYear(y string) int {
	n := atoi(y)
	if len(y) != 2 {
		return n
	}
	if n < 70 {
		return 2000 + n
	}
	return 1900 + n
}

func passDates(n Normalizer, s string) string {
	s = replaceFunc(reISODate, s, func(s string, m []int) (string, bool) {
		if isDigitAt(s, m[1]+1) && s[m[1]] == '-' {
			return "", false
		}
		return spokenDate(atoi(group(s, m, 2)), atoi(group(s, m, 3)), atoi(group(s, m, 1)))
	})
	s = replaceFunc(reNumDate, s, func(s string, m []int) (string, bool) {
		if group(s, m, 2) != group(s, m, 4) || (m[1] < len(s) && (s[m[1]] == '/' || s[m[1]] == '-') && isDigitAt(s, m[1]+1)) {
			return "", false
		}
		a, b, y := atoi(group(s, m, 1)), atoi(group(s, m, 3)), twoDigitYear(group(s, m, 5))
		month, day := a, b
		if (n.DayFirst && b <= 12) || a > 12 {
			month, day = b, a
		}
		return spokenDate(month, day, y)
	})
	s = replaceFunc(reDotDate, s, func(s string, m []int) (string, bool) {
		return spokenDate(atoi(group(s, m, 2)), atoi(group(s, m, 1)), atoi(group(s, m, 3)))
	})
	s = replaceFunc(reMonthDay, s, func(s string, m []int) (string, bool) {
		name := group(s, m, 1)
		if name[0] < 'A' || name[0] > 'Z' {
			return "", false
		}
		y := 0
		if group(s, m, 4) != "" {
			y = atoi(group(s, m, 4))
		}
		out, ok := spokenDate(monthNumber(name), atoi(group(s, m, 2)), y)
		if !ok {
			return "", false
		}
		return out, true
	})
	s = replaceFunc(reDayMonth, s, func(s string, m []int) (string, bool) {
		y := 0
		if group(s, m, 4) != "" {
			y = atoi(group(s, m, 4))
		}
		mo, day := monthNumber(group(s, m, 2)), atoi(group(s, m, 1))
		if mo == 0 || day < 1 || day > daysIn(mo) {
			return "", false
		}
		out := "the " + ordinal(int64(day)) + " of " + monthNames[mo]
		if y > 0 {
			out += ", " + yearWords(y)
		}
		return out, true
	})
	return replaceFunc(reMonthYear, s, func(s string, m []int) (string, bool) {
		mo := monthNumber(group(s, m, 1))
		if mo == 0 {
			return "", false
		}
		return monthNames[mo] + " " + yearWords(atoi(group(s, m, 2))), true
	})
}

// ---- ranges ----------------------------------------------------------------------

var (
	reNumRange  = regexp.MustCompile(`(\d+(?:[.,:]\d+)*(?:[ \t]*[aApP]\.?[mM]\.?)?)[ \t]*[-\x{2013}][ \t]*([$£€]?\d+(?:[.,:]\d+)*(?:[ \t]*[aApP]\.?[mM]\b\.?)?)`)
	reDayRange  = regexp.MustCompile(`\b(Mon|Tues?|Wed|Thu(?:rs?)?|Fri|Sat|Sun)(?:day|nesday|sday|rsday|urday)?\.?\s?[-\x{2013}]\s?(Mon|Tues?|Wed|Thu(?:rs?)?|Fri|Sat|Sun)(?:day|nesday|sday|rsday|urday)?\b\.?`)
	dayByPrefix = map[string]string{"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday", "sat": "Saturday", "sun": "Sunday"}
)

func passRanges(_ Normalizer, s string) string {
	s = replaceFunc(reDayRange, s, func(s string, m []int) (string, bool) {
		a := dayByPrefix[strings.ToLower(group(s, m, 1)[:3])]
		b := dayByPrefix[strings.ToLower(group(s, m, 2)[:3])]
		return a + " to " + b, true
	})
	return replaceFunc(reNumRange, s, func(s string, m []int) (string, bool) {
		// Skip when the left side is glued to a letter (model numbers such
		// as A1-B2) or is itself the end of a longer hyphenated code.
		start := m[2]
		if isLetterAt(s, start-1) || (start > 0 && s[start-1] == '-') || isLetterAt(s, m[1]) ||
			(m[1]+1 < len(s) && s[m[1]] == '-' && isDigitAt(s, m[1]+1)) {
			return "", false
		}
		return group(s, m, 1) + " to " + group(s, m, 2), true
	})
}

// ---- times ------------------------------------------------------------------------

var (
	reClock  = regexp.MustCompile(`\b(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[ \t]*([aApP])(?:\.\s?|\s?)([mM])(\.)?)?`)
	reHourAP = regexp.MustCompile(`\b(\d{1,2})[ \t]*([aApP])(?:\.\s?|\s?)([mM])(\.)?`)
)

// apWords returns " A M" or " P M", plus a sentence period when the
// written suffix's final period also ended the sentence. The letters are
// upper case because flite reads a lone lower-case "a" as the article.
func apWords(s string, m []int, letter, dot int) string {
	out := " " + strings.ToUpper(group(s, m, letter)) + " M"
	if group(s, m, dot) != "" && sentenceEndAfter(s, m[1]) {
		out += "."
	}
	return out
}

func passTimes(_ Normalizer, s string) string {
	s = replaceFunc(reClock, s, func(s string, m []int) (string, bool) {
		if isDigitAt(s, m[1]) || (m[1] < len(s) && s[m[1]] == ':') || (group(s, m, 5) != "" && isLetterAt(s, m[1])) {
			return "", false
		}
		h, mi := atoi(group(s, m, 1)), atoi(group(s, m, 2))
		ap := group(s, m, 4) != ""
		if mi > 59 || h > 23 || (ap && (h < 1 || h > 12)) {
			return "", false
		}
		var out string
		switch {
		case mi == 0 && ap:
			out = cardinal(int64(h))
		case mi == 0 && (h == 0 || h > 12):
			out = cardinal(int64(h)) + " hundred"
		case mi == 0:
			out = cardinal(int64(h)) + " o'clock"
		case mi < 10:
			out = cardinal(int64(h)) + " oh " + smallWords[mi]
		default:
			out = cardinal(int64(h)) + " " + cardinal(int64(mi))
		}
		if sec := group(s, m, 3); sec != "" {
			if sv := atoi(sec); sv > 0 && sv < 60 {
				unit := " seconds"
				if sv == 1 {
					unit = " second"
				}
				out += " and " + cardinal(int64(sv)) + unit
			}
		}
		if ap {
			out += apWords(s, m, 4, 6)
		}
		return out, true
	})
	return replaceFunc(reHourAP, s, func(s string, m []int) (string, bool) {
		if isLetterAt(s, m[1]) || (m[0] > 0 && (s[m[0]-1] == '.' || s[m[0]-1] == ',') && isDigitAt(s, m[0]-2)) {
			return "", false
		}
		h := atoi(group(s, m, 1))
		if h < 1 || h > 12 {
			return "", false
		}
		return cardinal(int64(h)) + apWords(s, m, 2, 4), true
	})
}

// ---- money ------------------------------------------------------------------------

var (
	reCurrency     = regexp.MustCompile(`(-\s?)?([$£€])\s?(\d{1,3}(?:,\d{3})+|\d+)?(\.\d+)?(?:\s?(thousand|million|billion|trillion|[kK]|[mM][mM]?|[bB][nN]?)\b)?`)
	reCurrencyCode = regexp.MustCompile(`\b(USD|EUR|GBP)\s?(\d[\d,]*(?:\.\d+)?)\b|\b(\d[\d,]*(?:\.\d+)?)\s?(USD|EUR|GBP)\b`)
	reCents        = regexp.MustCompile(`\b(\d{1,3})\s?¢`)
	codeSign       = map[string]string{"USD": "$", "EUR": "€", "GBP": "£"}
)

// currencyNames holds the major and minor unit names, singular and plural.
var currencyNames = map[string][4]string{
	"$": {"dollar", "dollars", "cent", "cents"},
	"€": {"euro", "euros", "cent", "cents"},
	"£": {"pound", "pounds", "penny", "pence"},
}

// moneyWords reads an amount: whole is digits (commas allowed), frac is
// digits after the point ("" when none), scale a word such as "million".
func moneyWords(sign, whole, frac, scale string) string {
	names := currencyNames[sign]
	plain := strings.ReplaceAll(whole, ",", "")
	if scale != "" {
		switch strings.ToLower(scale) {
		case "k":
			scale = "thousand"
		case "m", "mm":
			scale = "million"
		case "b", "bn":
			scale = "billion"
		}
		num := cardinalDigits(plain)
		if plain == "" {
			num = "zero"
		}
		if frac != "" {
			num += " point " + digitWords(frac)
		}
		return num + " " + scale + " " + names[1]
	}
	if len(frac) > 2 {
		num := cardinalDigits(plain)
		if plain == "" {
			num = "zero"
		}
		return num + " point " + digitWords(frac) + " " + names[1]
	}
	if len(frac) == 1 {
		frac += "0"
	}
	major := strings.TrimLeft(plain, "0")
	minor := strings.TrimLeft(frac, "0")
	var parts []string
	if major != "" || minor == "" {
		unit := names[1]
		if major == "1" {
			unit = names[0]
		}
		parts = append(parts, cardinalDigits(plain+map[bool]string{true: "0"}[plain == ""])+" "+unit)
	}
	if minor != "" {
		unit := names[3]
		if minor == "1" {
			unit = names[2]
		}
		parts = append(parts, cardinalDigits(minor)+" "+unit)
	}
	return strings.Join(parts, " and ")
}

func passCurrency(_ Normalizer, s string) string {
	s = replaceFunc(reCurrencyCode, s, func(s string, m []int) (string, bool) {
		if c := group(s, m, 1); c != "" {
			return codeSign[c] + group(s, m, 2), true
		}
		return codeSign[group(s, m, 4)] + group(s, m, 3), true
	})
	s = replaceFunc(reCurrency, s, func(s string, m []int) (string, bool) {
		whole, frac := group(s, m, 3), strings.TrimPrefix(group(s, m, 4), ".")
		if whole == "" && frac == "" {
			return "", false
		}
		if isDigitAt(s, m[1]) || (m[1] < len(s) && s[m[1]] == '.' && isDigitAt(s, m[1]+1)) {
			return "", false
		}
		out := moneyWords(group(s, m, 2), whole, frac, group(s, m, 5))
		if group(s, m, 1) != "" {
			if m[0] > 0 && isDigitAt(s, m[0]-1) {
				return "", false
			}
			out = "minus " + out
		}
		return out, true
	})
	return replaceFunc(reCents, s, func(s string, m []int) (string, bool) {
		c := group(s, m, 1)
		if atoi(c) == 1 {
			return "one cent", true
		}
		return cardinalDigits(c) + " cents", true
	})
}

// ---- percentages, ordinals ---------------------------------------------------------

var (
	rePercent = regexp.MustCompile(`(-)?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)\s?(%|percent\b|pct\b)`)
	reOrdinal = regexp.MustCompile(`\b(\d{1,12})(st|nd|rd|th|ST|ND|RD|TH)\b`)
)

func passPercent(_ Normalizer, s string) string {
	return replaceFunc(rePercent, s, func(s string, m []int) (string, bool) {
		if isLetterAt(s, m[2]-1) || (m[2] > 0 && isDigitAt(s, m[2]-1)) {
			return "", false
		}
		out := decimalWords(group(s, m, 2)) + " percent"
		if group(s, m, 1) != "" && !isDigitAt(s, m[0]-1) {
			out = "minus " + out
		}
		return out, true
	})
}

func passOrdinals(_ Normalizer, s string) string {
	return replaceFunc(reOrdinal, s, func(s string, m []int) (string, bool) {
		n, err := strconv.ParseInt(group(s, m, 1), 10, 64)
		if err != nil {
			return "", false
		}
		return ordinal(n), true
	})
}

// ---- identifiers read digit by digit -------------------------------------------------

var reContextDigits = regexp.MustCompile(`(?i)\b(ending in|ends in|ending with|ends with|last (?:four|4|digits)(?: digits)?(?: (?:are|is|of))?|account(?: number| no\.?| #)?|acct\.?(?: no\.?| #)?|card number|routing number|pin(?: number| code)?|passcode|code|id|reference(?: number| code)?|ref\.?|confirmation(?: number| code)?|order (?:number|no\.?|#)|ticket (?:number|no\.?|#)|case (?:number|no\.?|#)|policy(?: number)?|member(?: id| number)?|zip(?: code)?|postcode|extension|ext\.?|otp|verification code|serial(?: number)?|tracking(?: number)?|claim(?: number)?|no\.|#)([ \t]*(?:is|of|:|#|was)?[ \t]*)((?:[A-Za-z]{1,3}-)?[A-Za-z]{0,3}\d[\dA-Za-z]*(?:[ -][A-Za-z]{0,3}\d[\dA-Za-z]*)*)\b`)

func passContextDigits(_ Normalizer, s string) string {
	return replaceFunc(reContextDigits, s, func(s string, m []int) (string, bool) {
		kw := group(s, m, 1)
		// "#" and "No." are not always preceded by a word boundary.
		if m[1] < len(s) && (s[m[1]] == '.' || s[m[1]] == ',') && isDigitAt(s, m[1]+1) {
			return "", false
		}
		var groups []string
		for _, g := range strings.FieldsFunc(group(s, m, 3), func(r rune) bool { return r == ' ' || r == '-' }) {
			groups = append(groups, codeWords(g, true))
		}
		switch strings.ToLower(kw) {
		case "#", "no.":
			kw = "number"
		}
		if strings.Contains(group(s, m, 2), "#") {
			kw += " number"
		}
		if isLetterAt(s, m[0]-1) && kw == "number" {
			return "", false
		}
		return kw + " " + strings.Join(groups, ", "), true
	})
}

// ---- slashes --------------------------------------------------------------------------

var (
	reNumSlash  = regexp.MustCompile(`\b(\d{1,6})/(\d{1,6})\b`)
	reWordSlash = regexp.MustCompile(`\b([A-Za-z]+)/([A-Za-z]+)\b`)
	fractions   = map[string]string{"1/2": "one half", "1/3": "one third", "2/3": "two thirds", "1/4": "one quarter", "3/4": "three quarters", "24/7": "twenty four seven"}
)

var rePer = regexp.MustCompile(`/[ \t]?(month|mo|year|yr|week|wk|day|hour|hr|night|person|user|unit|item|minute|min|GB|kg|lb)\b`)

var perUnit = map[string]string{"mo": "month", "yr": "year", "wk": "week", "hr": "hour", "min": "minute",
	"GB": "gigabyte", "kg": "kilogram", "lb": "pound"}

func passSlashes(n Normalizer, s string) string {
	s = replaceFunc(rePer, s, func(s string, m []int) (string, bool) {
		u := group(s, m, 1)
		if w, ok := perUnit[u]; ok {
			u = w
		}
		return "per " + u, true
	})
	s = replaceFunc(reNumSlash, s, func(s string, m []int) (string, bool) {
		if m[1] < len(s) && s[m[1]] == '/' {
			return "", false
		}
		whole := s[m[0]:m[1]]
		if f := fractions[whole]; f != "" {
			return f, true
		}
		a, b := atoi(group(s, m, 1)), atoi(group(s, m, 2))
		month, day := a, b
		if (n.DayFirst && b <= 12) || a > 12 {
			month, day = b, a
		}
		if len(group(s, m, 1)) <= 2 && len(group(s, m, 2)) <= 2 {
			if d, ok := spokenDate(month, day, 0); ok {
				return d, true
			}
		}
		return decimalWords(group(s, m, 1)) + " slash " + decimalWords(group(s, m, 2)), true
	})
	return replaceFunc(reWordSlash, s, func(s string, m []int) (string, bool) {
		a, b := group(s, m, 1), group(s, m, 2)
		switch strings.ToLower(a + "/" + b) {
		case "w/o":
			return "without", true
		case "and/or":
			return "and or", true
		case "km/h":
			return "kilometers per hour", true
		case "a/c":
			return "A C", true
		}
		return a + " or " + b, true
	})
}

// ---- units ----------------------------------------------------------------------------

var (
	reUnits = regexp.MustCompile(`\b(\d+(?:\.\d+)?)\s?(kph|mph|km|kg|mg|ml|cm|mm|GB|MB|KB|TB|Gb|Mb|kbps|Mbps|Gbps|lbs?|oz|ft|mi|hrs?|mins?|secs?|ms|kWh|kW|GHz|MHz)\b`)
	units   = map[string][2]string{
		"kph": {"kilometer per hour", "kilometers per hour"}, "mph": {"mile per hour", "miles per hour"},
		"km": {"kilometer", "kilometers"}, "kg": {"kilogram", "kilograms"}, "mg": {"milligram", "milligrams"},
		"ml": {"milliliter", "milliliters"}, "cm": {"centimeter", "centimeters"}, "mm": {"millimeter", "millimeters"},
		"GB": {"gigabyte", "gigabytes"}, "MB": {"megabyte", "megabytes"}, "KB": {"kilobyte", "kilobytes"},
		"TB": {"terabyte", "terabytes"}, "Gb": {"gigabit", "gigabits"}, "Mb": {"megabit", "megabits"},
		"kbps": {"kilobit per second", "kilobits per second"}, "Mbps": {"megabit per second", "megabits per second"},
		"Gbps": {"gigabit per second", "gigabits per second"}, "lb": {"pound", "pounds"}, "lbs": {"pound", "pounds"},
		"oz": {"ounce", "ounces"}, "ft": {"foot", "feet"}, "mi": {"mile", "miles"}, "hr": {"hour", "hours"},
		"hrs": {"hour", "hours"}, "min": {"minute", "minutes"}, "mins": {"minute", "minutes"},
		"sec": {"second", "seconds"}, "secs": {"second", "seconds"}, "ms": {"millisecond", "milliseconds"},
		"kWh": {"kilowatt hour", "kilowatt hours"}, "kW": {"kilowatt", "kilowatts"},
		"GHz": {"gigahertz", "gigahertz"}, "MHz": {"megahertz", "megahertz"},
	}
)

func passUnits(_ Normalizer, s string) string {
	return replaceFunc(reUnits, s, func(s string, m []int) (string, bool) {
		num := group(s, m, 1)
		u := units[group(s, m, 2)]
		if num == "1" {
			return "one " + u[0], true
		}
		return decimalWords(num) + " " + u[1], true
	})
}

// ---- negative numbers, remaining numbers -------------------------------------------

var (
	reNegative = regexp.MustCompile(`(^|[\s(])-(\d)`)
	reNumber   = regexp.MustCompile(`\d+(?:[.,]\d+)*`)
	// yearContext are words after which a four-digit number is a year.
	yearContext = map[string]bool{"in": true, "since": true, "year": true, "of": true, "by": true, "until": true,
		"from": true, "before": true, "after": true, "during": true, "fiscal": true, "fy": true, "class": true,
		"spring": true, "summer": true, "fall": true, "autumn": true, "winter": true, "january": true,
		"february": true, "march": true, "april": true, "may": true, "june": true, "july": true, "august": true,
		"september": true, "october": true, "november": true, "december": true, "through": true, "to": true, "and": true}
)

func passNegatives(_ Normalizer, s string) string {
	return reNegative.ReplaceAllString(s, "${1}minus ${2}")
}

// previousWord returns the lower-cased word that ends just before byte i,
// skipping spaces and commas.
func previousWord(s string, i int) string {
	j := i - 1
	for j >= 0 && (s[j] == ' ' || s[j] == ',') {
		j--
	}
	end := j + 1
	for j >= 0 && isLetterAt(s, j) {
		j--
	}
	return strings.ToLower(s[j+1 : end])
}

// reCode matches tokens that mix letters and digits: model, flight and
// reference codes such as A1234B, B2, 4G, mp3.
var reCode = regexp.MustCompile(`\b(?:[A-Za-z]{1,3}\d[A-Za-z\d]*|\d+[A-Za-z]{1,3}(?:\d[A-Za-z\d]*)?)\b`)

// spellCode is codeWords(code, false).
func spellCode(code string) string { return codeWords(code, false) }

// codeWords reads a code: letters by name (upper case, so flite spells
// them; "A" as "ay", since flite reads a lone "A" as the article), runs of
// four or more letters as a word, and digits one by one - except, unless
// allDigits is set, a run of one or two digits, read as a number ("B2" →
// "B two", "F16" → "F sixteen").
func codeWords(code string, allDigits bool) string {
	var parts []string
	for i := 0; i < len(code); {
		j := i
		if isDigitAt(code, i) {
			for j < len(code) && isDigitAt(code, j) {
				j++
			}
			if !allDigits && j-i <= 2 && !(j-i == 2 && code[i] == '0') {
				parts = append(parts, cardinalDigits(code[i:j]))
			} else {
				parts = append(parts, digitGroups(code[i:j]))
			}
		} else {
			for j < len(code) && !isDigitAt(code, j) {
				j++
			}
			if j-i >= 4 {
				parts = append(parts, code[i:j])
			} else {
				for k := i; k < j; k++ {
					parts = append(parts, letterName(code[k]))
				}
			}
		}
		i = j
	}
	return strings.Join(parts, " ")
}

// letterName spells one letter so that flite says its name.
func letterName(c byte) string {
	if c == 'a' || c == 'A' {
		return "ay"
	}
	return strings.ToUpper(string(c))
}

func passNumbers(_ Normalizer, s string) string {
	s = replaceFunc(reCode, s, func(s string, m []int) (string, bool) {
		if m[1]+1 < len(s) && (s[m[1]] == '.' || s[m[1]] == ',') && isDigitAt(s, m[1]+1) {
			return "", false // v1.2.3: a version, read by the number rule
		}
		return spellCode(s[m[0]:m[1]]), true
	})
	return replaceFunc(reNumber, s, func(s string, m []int) (string, bool) {
		num := s[m[0]:m[1]]
		glued := isLetterAt(s, m[0]-1) || isLetterAt(s, m[1])
		switch {
		case strings.Count(num, ".") >= 2:
			// Versions and addresses: 1.2.3, 192.168.0.1.
			parts := strings.Split(strings.ReplaceAll(num, ",", "."), ".")
			for i, p := range parts {
				parts[i] = digitWords(p)
			}
			return strings.Join(parts, " dot "), true
		case strings.ContainsAny(num, ".,"):
			return decimalWords(num), true
		case glued:
			// Model and reference codes such as A1234B.
			if len(num) <= 2 {
				return cardinalDigits(num), true
			}
			return digitGroups(num), true
		case len(num) > 1 && num[0] == '0':
			return digitGroups(num), true
		case len(num) >= 5:
			if strings.HasSuffix(num, "00") && len(num) <= 9 {
				return cardinalDigits(num), true
			}
			return digitGroups(num), true
		case len(num) == 4 && yearContext[previousWord(s, m[0])]:
			if y := atoi(num); y >= 1000 && y <= 2099 {
				return yearWords(y), true
			}
		}
		return cardinalDigits(num), true
	})
}

// ---- abbreviations and symbols ---------------------------------------------------------

var (
	reTitle     = regexp.MustCompile(`\b(Mr|Mrs|Ms|Mx|Dr|Prof|St|Sr|Jr|Capt|Gen|Lt|Sgt|Rev|Hon|Mt|Ft|Gov|Sen|Rep|Pres)(\.|\b)`)
	reStreet    = regexp.MustCompile(`\b(St|Dr|Ave|Blvd|Rd|Ln|Ct|Hwy|Pkwy|Sq|Pl|Ste|Apt|Bldg|Fl)\.`)
	reStreetNoP = regexp.MustCompile(`\b(Ave|Blvd|Hwy|Pkwy|Apt|Bldg)\b`)
	reAbbrev    = regexp.MustCompile(`(?i)\b(e\.g|i\.e|etc|vs|approx|dept|est|misc|incl|min|max|tel|ph|govt|univ|no|inc|ltd|corp|co|jr|sr|a\.k\.a|p\.s|r\.s\.v\.p|ext)\.`)
	reInitials  = regexp.MustCompile(`\b((?:[A-Za-z]\.){2,})`)
	reVs        = regexp.MustCompile(`\bvs\b`)
)

// spelledCaps are initialisms flite would read as a word ("ID" as "id",
// "IRS" as "ers"); they are spelled out letter by letter instead.
var spelledCaps = map[string]string{"ID": "I D", "IRS": "I R S", "DOB": "D O B", "ETA": "E T ay", "ASAP": "ay S ay P",
	"FAQ": "F ay Q", "FAQs": "F ay Qs", "IDs": "I Ds", "VIP": "V I P", "CEO": "C E O", "HR": "H R", "AI": "ay I",
	"APR": "ay P R", "ET": "E T", "EST": "E S T", "EDT": "E D T", "PT": "P T", "PST": "P S T", "PDT": "P D T",
	"CST": "C S T", "CDT": "C D T", "GMT": "G M T", "UTC": "U T C", "BST": "B S T", "CET": "C E T"}

var reSpellCaps = regexp.MustCompile(`\b(ID|IDs|IRS|DOB|ETA|ASAP|FAQs?|VIP|CEO|HR|AI|APR|ET|EST|EDT|PT|PST|PDT|CST|CDT|GMT|UTC|BST|CET)\b`)

var titles = map[string]string{"Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Mx": "Mix", "Dr": "Doctor", "Prof": "Professor",
	"St": "Saint", "Sr": "Senior", "Jr": "Junior", "Capt": "Captain", "Gen": "General", "Lt": "Lieutenant", "Sgt": "Sergeant",
	"Rev": "Reverend", "Hon": "Honorable", "Mt": "Mount", "Ft": "Fort", "Gov": "Governor", "Sen": "Senator",
	"Rep": "Representative", "Pres": "President"}

var streets = map[string]string{"St": "Street", "Dr": "Drive", "Ave": "Avenue", "Blvd": "Boulevard", "Rd": "Road",
	"Ln": "Lane", "Ct": "Court", "Hwy": "Highway", "Pkwy": "Parkway", "Sq": "Square", "Pl": "Place", "Ste": "Suite",
	"Apt": "Apartment", "Bldg": "Building", "Fl": "Floor"}

var abbreviations = map[string]string{"e.g": "for example", "i.e": "that is", "etc": "et cetera", "vs": "versus",
	"approx": "approximately", "dept": "department", "est": "estimated", "misc": "miscellaneous", "incl": "including",
	"min": "minimum", "max": "maximum", "tel": "telephone", "ph": "phone", "govt": "government", "univ": "university",
	"no": "number", "inc": "Incorporated", "ltd": "Limited", "corp": "Corporation", "co": "Company", "jr": "Junior",
	"sr": "Senior", "a.k.a": "also known as", "p.s": "P S", "r.s.v.p": "R S V P", "ext": "extension"}

// addressBefore reports whether the words before byte i look like the start
// of a street address: a house number followed by one to three words.
// House numbers are already words when abbreviations are expanded.
var reAddressTail = regexp.MustCompile(`(?:\d+[A-Za-z]?|\b[a-z]*(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|teen|ty|hundred|thousand))\s+(?:[A-Z][A-Za-z]*\s+){1,3}$`)

func passAbbreviations(_ Normalizer, s string) string {
	// Titles before a name: "Dr. Smith", "St. Louis" - unless the words
	// before are an address ("12 Main St. Louis").
	s = replaceFunc(reTitle, s, func(s string, m []int) (string, bool) {
		t := group(s, m, 1)
		j := m[1]
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if j == m[1] || j == len(s) || s[j] < 'A' || s[j] > 'Z' {
			return "", false // not before a name
		}
		if (t == "St" || t == "Dr") && reAddressTail.MatchString(s[max(0, m[0]-64):m[0]]) {
			return streets[t], true
		}
		if group(s, m, 2) != "." && (t == "St" || t == "Dr" || t == "Gen" || t == "Rep" || t == "Sen" || t == "Pres" || t == "Rev" || t == "Gov") {
			return "", false // plain words: "Gen Z", "Rep" as a word
		}
		return titles[t], true
	})
	s = replaceFunc(reStreet, s, func(s string, m []int) (string, bool) {
		out := streets[group(s, m, 1)]
		if sentenceEndAfter(s, m[1]) {
			out += "."
		}
		return out, true
	})
	s = replaceFunc(reStreetNoP, s, func(s string, m []int) (string, bool) {
		return streets[group(s, m, 1)], true
	})
	s = replaceFunc(reAbbrev, s, func(s string, m []int) (string, bool) {
		key := strings.ToLower(group(s, m, 1))
		out := abbreviations[key]
		switch key {
		case "no":
			// "No." means "number" only before a number (already digits
			// read out as words by now) - keep "no." otherwise.
			if sentenceEndAfter(s, m[1]) || !nextIsNumberWord(s, m[1]) {
				return "", false
			}
		case "co", "inc", "ltd", "corp", "jr", "sr", "est", "min", "max", "ph", "tel":
			if group(s, m, 1)[0] < 'A' || group(s, m, 1)[0] > 'Z' {
				if key != "inc" && key != "ltd" && key != "corp" && key != "est" {
					return "", false
				}
			}
		}
		if key != "e.g" && key != "i.e" && key != "a.k.a" && sentenceEndAfter(s, m[1]) {
			out += "."
		}
		return out, true
	})
	s = reVs.ReplaceAllString(s, "versus")
	s = replaceFunc(reSpellCaps, s, func(s string, m []int) (string, bool) {
		return spelledCaps[group(s, m, 1)], true
	})
	return replaceFunc(reInitials, s, func(s string, m []int) (string, bool) {
		if isLetterAt(s, m[1]) {
			return "", false
		}
		letters := strings.ReplaceAll(group(s, m, 1), ".", " ")
		out := strings.ToUpper(strings.TrimSpace(letters))
		if sentenceEndAfter(s, m[1]) {
			out += "."
		}
		return out, true
	})
}

// nextIsNumberWord reports whether the first word after byte i is a number
// word, as the number pass writes them.
func nextIsNumberWord(s string, i int) bool {
	rest := strings.TrimLeft(s[i:], " ")
	w, _, _ := strings.Cut(rest, " ")
	w = strings.TrimRight(w, ",.")
	for _, x := range smallWords {
		if w == x {
			return true
		}
	}
	for _, x := range tensWords[2:] {
		if w == x {
			return true
		}
	}
	return false
}

var symbolWords = strings.NewReplacer(
	"&", " and ", "@", " at ", "+", " plus ", "=", " equals ", "%", " percent ",
	"#", " number ", "$", " dollars ", "€", " euros ", "£", " pounds ", "¢", " cents ",
	"<", " less than ", ">", " greater than ", "~", " about ", "^", " ", "|", ", ",
	"*", " ", "_", " ", "\\", " ", "`", "'", "{", "(", "}", ")", "[", "(", "]", ")", "/", " slash ",
)

func passSymbols(_ Normalizer, s string) string {
	return symbolWords.Replace(s)
}

// ---- final tidy ------------------------------------------------------------------------

var (
	reSpaces      = regexp.MustCompile(`[ \t]+`)
	reSpaceBefore = regexp.MustCompile(` +([,.?!;:)])`)
	reSpaceAfter  = regexp.MustCompile(`([(]) +`)
	reSpacedDash  = regexp.MustCompile(` -+ `)
	reCommaRun    = regexp.MustCompile(`,(?:\s*,)+`)
	reNLSpaces    = regexp.MustCompile(` *\n *`)
)

// tidy collapses the spaces the passes inserted and puts punctuation back
// against the preceding word.
func tidy(s string) string {
	s = reSpaces.ReplaceAllString(s, " ")
	s = reSpacedDash.ReplaceAllString(s, ", ")
	s = reSpaceBefore.ReplaceAllString(s, "$1")
	s = reSpaceAfter.ReplaceAllString(s, "$1")
	s = reCommaRun.ReplaceAllString(s, ",")
	s = reNLSpaces.ReplaceAllString(s, "\n")
	return strings.TrimSpace(s)
}
