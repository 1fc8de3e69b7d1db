package redact

import (
	"strings"
	"unicode/utf8"
	"unsafe"
)

// kind is what a redacted span was.
type kind uint8

const (
	kNone kind = iota
	kCard
	kCVV
	kPIN
	kSSN
	kSortCode
	kAccount
	kIBAN
	kNationalID
	kNumber
	kPhone
	kEmail
)

// labels are the words inside the replacement brackets.
var labels = [...]string{
	kCard: "card", kCVV: "cvv", kPIN: "pin", kSSN: "ssn", kSortCode: "sort code",
	kAccount: "account", kIBAN: "iban", kNationalID: "national id", kNumber: "number",
	kPhone: "phone", kEmail: "email",
}

// mask stands for the hidden digits before a kept last four.
const mask = "••••"

// out builds the redacted text lazily: nothing is copied until the first
// match, so text without personal data costs no allocation.
type out struct {
	dst     []byte
	s       string
	last    int // end of the last emitted span in s
	changed bool
	ctx     cue // what the previous speaker asked for (Dialogue)
}

// emit replaces s[start:end] by a label, with last4 (when not empty) after
// the mask.
func (o *out) emit(start, end int, k kind, last4 []byte) {
	if !o.changed && o.dst == nil {
		o.dst = make([]byte, 0, len(o.s)+16)
	}
	o.dst = append(o.dst, o.s[o.last:start]...)
	o.dst = append(o.dst, '[')
	o.dst = append(o.dst, labels[k]...)
	if len(last4) > 0 {
		o.dst = append(o.dst, ' ')
		o.dst = append(o.dst, mask...)
		o.dst = append(o.dst, last4...)
	}
	o.dst = append(o.dst, ']')
	o.last = end
	o.changed = true
}

// appendRedacted appends the redacted s to dst. When nothing matches it
// appends nothing and reports false.
func (r *Redactor) appendRedacted(dst []byte, s string) ([]byte, bool) {
	return r.appendRedactedCue(dst, s, cueNone)
}

// appendRedactedCue is appendRedacted with a cue carried over from the
// previous turn, which applies to a number among the first words of s.
func (r *Redactor) appendRedactedCue(dst []byte, s string, ctx cue) ([]byte, bool) {
	o := out{dst: dst, s: s, ctx: ctx}
	hasAt := r.p.Emails && strings.IndexByte(s, '@') >= 0
	for i := 0; i < len(s); {
		c := s[i]
		if hasAt && isLocal(c) && (i == 0 || !isLocal(s[i-1])) {
			if end := typedEmail(s, i); end > 0 {
				o.emit(i, end, kEmail, nil)
				i = end
				continue
			}
		}
		switch {
		case isDigit(c) && (i == 0 || !isDigit(s[i-1])):
			i = r.chain(&o, i)
			continue
		case isLetter(c) && (i == 0 || !isAlnum(s[i-1])):
			if end := r.word(&o, i); end > i {
				i = end
				continue
			}
		}
		i++
	}
	if !o.changed {
		return dst, false
	}
	return append(o.dst, s[o.last:]...), true
}

// --- typed digit chains ---

// chain describes a run of digit groups joined by single spaces or dashes
// ("4111 1111 1111 1111", "123-45-6789", "020 7946 0958").
type chain struct {
	start, end int
	n          int      // digits
	groups     int      // digit groups
	glen       [5]uint8 // lengths of the first groups (capped)
	dash       bool     // a '-' joins two groups
	space      bool     // a ' ' joins two groups
}

func parseChain(s string, i int) chain {
	c := chain{start: i}
	j := i
	for {
		k := j
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		if c.groups < len(c.glen) {
			c.glen[c.groups] = uint8(min(k-j, 255))
		}
		c.groups++
		c.n += k - j
		c.end = k
		if k+1 < len(s) && (s[k] == ' ' || s[k] == '-') && isDigit(s[k+1]) {
			if s[k] == '-' {
				c.dash = true
			} else {
				c.space = true
			}
			j = k + 1
			continue
		}
		return c
	}
}

// shape reports whether c has exactly the given group lengths, joined by
// one kind of separator.
func (c *chain) shape(lens ...uint8) bool {
	if c.groups != len(lens) || (c.dash && c.space) {
		return false
	}
	for i, l := range lens {
		if c.glen[i] != l {
			return false
		}
	}
	return true
}

// group returns the value of group g (g < 5, at most 9 digits long).
func (c *chain) group(s string, g int) int {
	j := c.start
	for ; g > 0; g-- {
		for isDigit(s[j]) {
			j++
		}
		j++
	}
	v := 0
	for k := 0; j < c.end && isDigit(s[j]) && k < 9; j, k = j+1, k+1 {
		v = v*10 + int(s[j]-'0')
	}
	return v
}

// chain handles the digit chain starting at i and returns its end.
func (r *Redactor) chain(o *out, i int) int {
	s := o.s
	c := parseChain(s, i)
	var l4 [4]byte
	if r.p.Cards && c.n >= 13 && c.n <= 19 && luhnSpan(s, c.start, c.end) {
		o.emit(c.start, c.end, kCard, r.last4(kCard, c.n, lastDigits(&l4, s, c.start, c.end)))
		return c.end
	}
	start := c.start
	if k := r.classify(s, &c, &start, o.ctx); k != kNone && start >= o.last {
		n := c.n
		if start < c.start { // a phone number's "(555) " counts too
			n += countDigits(s[start:c.start])
		}
		o.emit(start, c.end, k, r.last4(k, n, lastDigits(&l4, s, c.start, c.end)))
		return c.end
	}
	if r.p.Cards && c.n > 13 && c.groups > 1 {
		r.cardsWithin(o, &c)
	}
	return c.end
}

// cardsWithin redacts every run of whole groups of c that is a valid card
// number, so no Luhn-valid 13–19 digit run survives inside a longer chain
// that is itself kept (a phone-shaped or identifier-bound chain).
func (r *Redactor) cardsWithin(o *out, c *chain) {
	s := o.s
	var l4 [4]byte
	for g := c.start; g < c.end; {
		var digs [19]byte
		nd, best, bestN := 0, -1, 0
		for j := g; j < c.end; {
			k := j
			for k < c.end && isDigit(s[k]) {
				k++
			}
			if nd+k-j > len(digs) {
				break
			}
			nd += copy(digs[nd:], s[j:k])
			if nd >= 13 && luhn(digs[:nd]) {
				best, bestN = k, nd
			}
			j = k + 1
		}
		if best > 0 {
			o.emit(g, best, kCard, r.last4(kCard, bestN, lastDigits(&l4, s, g, best)))
			g = best + 1
			continue
		}
		for g < c.end && isDigit(s[g]) {
			g++
		}
		g++
	}
}

// classify decides what a chain that is not a valid card number is. It may
// move *start back to take in a phone number's '+' or "(555) ".
func (r *Redactor) classify(s string, c *chain, start *int, ctx cue) kind {
	p := &r.p
	before, after := byte(0), byte(0)
	if c.start > 0 {
		before = s[c.start-1]
	}
	if c.end < len(s) {
		after = s[c.end]
	}
	// Part of an identifier (call ids, UUIDs, "ORD-123456", "v1234567").
	if isLetter(before) || isLetter(after) ||
		((before == '-' || before == '_') && c.start >= 2 && isLetter(s[c.start-2])) ||
		((after == '-' || after == '_') && c.end+1 < len(s) && isLetter(s[c.end+1])) {
		return kNone
	}
	// Amounts and decimals: "$1234567", "1234567.89", "0.123456", "1,234".
	if ((after == '.' || after == ',') && c.end+1 < len(s) && isDigit(s[c.end+1])) ||
		((before == '.' || before == ',') && c.start >= 2 && isDigit(s[c.start-2])) ||
		after == '%' || currencyBefore(s, c.start) {
		return kNone
	}
	n := c.n
	if n >= 3 {
		switch cueBefore(s, c.start, ctx) {
		case cueCard:
			if p.Cards && n >= 12 && n <= 19 {
				return kCard
			}
		case cueCVV:
			if p.SecurityCodes && (n == 3 || n == 4) {
				return kCVV
			}
		case cuePIN:
			if p.SecurityCodes && n >= 4 && n <= 8 {
				return kPIN
			}
		case cueSSN:
			if p.SSNs && n == 9 {
				return kSSN
			}
		case cueSort:
			if p.Accounts && n == 6 {
				return kSortCode
			}
		case cueAccount:
			if p.Accounts && n >= 6 && n <= 18 {
				return kAccount
			}
		}
	}
	if p.SSNs && c.shape(3, 2, 4) {
		area, grp, serial := c.group(s, 0), c.group(s, 1), c.group(s, 2)
		if area != 0 && area != 666 && grp != 0 && serial != 0 {
			return kSSN
		}
	}
	if p.Accounts && c.shape(2, 2, 2) {
		return kSortCode
	}
	if c.isDate(s) || c.allYears(s) {
		return kNone
	}
	if ps := phoneStart(s, c); ps >= 0 {
		if p.Phones {
			*start = ps
			return kPhone
		}
		return kNone
	}
	if p.NationalIDs && n >= p.MinDigits {
		return kNumber
	}
	return kNone
}

// isDate reports a chain shaped like 2024-05-12, 12-05-2024 or 5 12 2024.
func (c *chain) isDate(s string) bool {
	if c.groups != 3 || (c.dash && c.space) {
		return false
	}
	small := func(g int) bool { return c.glen[g] >= 1 && c.glen[g] <= 2 && c.group(s, g) >= 1 && c.group(s, g) <= 31 }
	year := func(g int) bool {
		if c.glen[g] != 4 {
			return false
		}
		y := c.group(s, g)
		return y >= 1900 && y <= 2099
	}
	month := func(g int) bool { return c.group(s, g) <= 12 }
	switch {
	case year(0) && small(1) && small(2):
		return month(1)
	case small(0) && small(1) && year(2):
		return month(0) || month(1)
	}
	return false
}

// allYears reports a chain of years: "2023 2024", "1999-2001".
func (c *chain) allYears(s string) bool {
	if c.groups < 2 || c.groups > len(c.glen) {
		return false
	}
	for g := range c.groups {
		if c.glen[g] != 4 {
			return false
		}
		if y := c.group(s, g); y < 1900 || y > 2099 {
			return false
		}
	}
	return true
}

// phoneStart returns where a phone-shaped chain starts (taking in a
// leading '+' or "(555) "), or -1 when it is not phone-shaped.
func phoneStart(s string, c *chain) int {
	st := c.start
	if st > 0 && s[st-1] == '+' && c.n >= 7 && c.n <= 15 {
		return st - 1
	}
	// "(555) 123-4567" or "(555)123-4567".
	p := st
	if p > 0 && s[p-1] == ' ' {
		p--
	}
	if p >= 5 && s[p-1] == ')' && s[p-5] == '(' && isDigit(s[p-2]) && isDigit(s[p-3]) && isDigit(s[p-4]) &&
		(c.shape(3, 4) || c.shape(7)) {
		return p - 5
	}
	switch {
	case c.shape(3, 3, 4), c.shape(1, 3, 3, 4), c.shape(3, 4):
		return st
	case s[st] == '0' && c.groups >= 2 && c.n >= 10 && c.n <= 11:
		return st
	}
	return -1
}

// currencyBefore reports a currency sign right before i (maybe one space).
func currencyBefore(s string, i int) bool {
	if i > 0 && s[i-1] == ' ' {
		i--
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	switch r {
	case '$', '£', '€', '¥', '₹':
		return true
	}
	return false
}

// --- cue words ---

type cue uint8

const (
	cueNone cue = iota
	cueCard
	cueCVV
	cuePIN
	cueSSN
	cueSort
	cueAccount
)

// cueBefore looks at the few words before a number for what it is: "card
// number is", "security code", "PIN", "sort code", "account number". When
// the number is among the first words of s, ctx (the previous turn's cue)
// applies.
func cueBefore(s string, start int, ctx cue) cue {
	j := start
	for w := 0; w < 6; w++ {
		k := j
		for k > 0 && !isAlnum(s[k-1]) {
			k--
			if j-k > 6 {
				return cueNone
			}
		}
		if k == 0 {
			return ctx
		}
		e := k
		for k > 0 && isAlnum(s[k-1]) && e-k < 32 {
			k--
		}
		if isDigit(s[k]) {
			return cueNone // another number in between
		}
		if c := matchCue(s[k:e], s, k); c != cueNone {
			return c
		}
		j = k
	}
	return cueNone
}

// lastCue returns what a question in s asked for: the most specific cue
// ("security code" over "card" in "the security code on your card"), the
// last of equals.
func lastCue(s string) cue {
	rank := func(c cue) int {
		switch c {
		case cueNone:
			return 0
		case cueCard:
			return 1
		case cueAccount:
			return 2
		}
		return 3
	}
	found := cueNone
	for i := 0; i < len(s); {
		if !isAlnum(s[i]) {
			i++
			continue
		}
		e := alnumEnd(s, i)
		if isLetter(s[i]) {
			if c := matchCue(s[i:e], s, i); c != cueNone && rank(c) >= rank(found) {
				found = c
			}
		}
		i = e
	}
	return found
}

func matchCue(w, s string, at int) cue {
	switch {
	case eqAny(w, "cvv", "cvc", "cv2", "cvv2", "csc"):
		return cueCVV
	case eqAny(w, "pin", "passcode"):
		return cuePIN
	case strings.EqualFold(w, "ssn"):
		return cueSSN
	case eqAny(w, "account", "acct", "routing"):
		return cueAccount
	case eqAny(w, "card", "credit", "debit", "visa", "mastercard", "amex"):
		return cueCard
	case strings.EqualFold(w, "code"):
		switch prev := prevWord(s, at); {
		case eqAny(prev, "security", "verification"):
			return cueCVV
		case strings.EqualFold(prev, "sort"):
			return cueSort
		}
	case strings.EqualFold(w, "verification"):
		if strings.EqualFold(prevWord(s, at), "card") {
			return cueCVV
		}
	case strings.EqualFold(w, "security"):
		if strings.EqualFold(prevWord(s, at), "social") {
			return cueSSN
		}
	}
	return cueNone
}

// prevWord returns the word before position at (across one or two spaces).
func prevWord(s string, at int) string {
	k := at
	for k > 0 && at-k < 2 && s[k-1] == ' ' {
		k--
	}
	e := k
	for k > 0 && isLetter(s[k-1]) && e-k < 16 {
		k--
	}
	return s[k:e]
}

func eqAny(w string, words ...string) bool {
	for _, x := range words {
		if strings.EqualFold(w, x) {
			return true
		}
	}
	return false
}

// --- words: IBANs, NI numbers, e-mails and digits read aloud ---

// word tries the detectors that start at a word; it returns the end of the
// span it redacted, or i when none matched.
func (r *Redactor) word(o *out, i int) int {
	s := o.s
	if r.p.IBANs {
		if end, l4 := iban(s, i); end > 0 {
			o.emit(i, end, kIBAN, r.last4(kIBAN, ibanMinLen, l4[:]))
			return end
		}
	}
	if r.p.NationalIDs {
		if end := nino(s, i); end > 0 {
			o.emit(i, end, kNationalID, nil)
			return end
		}
	}
	if r.p.Emails {
		if end := spokenEmail(s, i); end > 0 {
			o.emit(i, end, kEmail, nil)
			return end
		}
	}
	return r.spoken(o, i)
}

// iban matches an IBAN at i, grouped by single spaces or not, checked with
// mod 97; it returns its end and last four characters.
func iban(s string, i int) (end int, last4 [4]byte) {
	if i+ibanMinLen > len(s) || !isLetter(s[i]) || !isLetter(s[i+1]) || !isDigit(s[i+2]) || !isDigit(s[i+3]) {
		return 0, last4
	}
	var buf [34]byte
	var ends [34]int // ends[n] = byte end in s when a group ends after n chars, else 0
	n, j := 0, i
	for j < len(s) && n < len(buf) {
		c := s[j]
		switch {
		case isAlnum(c):
			buf[n] = upper(c)
			n++
			j++
			if j == len(s) || !isAlnum(s[j]) {
				ends[n-1] = j
			}
			continue
		case c == ' ' && j+1 < len(s) && isAlnum(s[j+1]) && n > 0:
			j++
			continue
		}
		break
	}
	for l := n; l >= ibanMinLen; l-- {
		if ends[l-1] > 0 && ibanValid(buf[:l]) {
			copy(last4[:], buf[l-4:l])
			return ends[l-1], last4
		}
	}
	return 0, last4
}

// ibanValid checks the ISO 13616 mod-97 checksum of an upper-case IBAN.
func ibanValid(b []byte) bool {
	rem := 0
	add := func(c byte) bool {
		switch {
		case isDigit(c):
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			rem = (rem*100 + int(c-'A'+10)) % 97
		default:
			return false
		}
		return true
	}
	for _, c := range b[4:] {
		if !add(c) {
			return false
		}
	}
	for _, c := range b[:4] {
		if !add(c) {
			return false
		}
	}
	return rem == 1
}

// nino matches a UK National Insurance number: two letters, six digits
// (maybe in spaced pairs) and a suffix A–D.
func nino(s string, i int) int {
	if i+9 > len(s) || !isUpper(s[i]) || !isUpper(s[i+1]) {
		return 0
	}
	j := i + 2
	if s[j] == ' ' {
		j++
	}
	for d := 0; d < 6; d++ {
		if d > 0 && d%2 == 0 && j < len(s) && s[j] == ' ' {
			j++
		}
		if j >= len(s) || !isDigit(s[j]) {
			return 0
		}
		j++
	}
	if j < len(s) && s[j] == ' ' {
		j++
	}
	if j >= len(s) || s[j] < 'A' || s[j] > 'D' || (j+1 < len(s) && isAlnum(s[j+1])) {
		return 0
	}
	return j + 1
}

// typedEmail matches local@domain.tld with its local part starting at i.
func typedEmail(s string, i int) int {
	j := i
	for j < len(s) && isLocal(s[j]) {
		j++
	}
	if j == i || j >= len(s) || s[j] != '@' {
		return 0
	}
	k, labels, end := j+1, 0, 0
	for {
		ls := k
		for k < len(s) && (isAlnum(s[k]) || s[k] == '-') {
			k++
		}
		if k == ls {
			break
		}
		labels++
		if labels >= 2 && k-ls >= 2 && allLetters(s[ls:k]) {
			end = k
		}
		if k+1 < len(s) && s[k] == '.' && isAlnum(s[k+1]) {
			k++
			continue
		}
		break
	}
	return end
}

// spokenEmail matches an address read aloud: "jane dot doe at example dot
// com" (a typed domain after "at" counts too).
func spokenEmail(s string, i int) int {
	j := alnumEnd(s, i)
	for {
		k := connector(s, j, " dot ", " underscore ", " dash ", " hyphen ")
		if k < 0 || k >= len(s) || !isAlnum(s[k]) {
			break
		}
		j = alnumEnd(s, k)
	}
	if !hasPrefixFold(s[j:], " at ") {
		return 0
	}
	j += 4
	labels, end := 0, 0
	for j < len(s) && isAlnum(s[j]) {
		e := alnumEnd(s, j)
		labels++
		if labels >= 2 && isTLD(s[j:e]) {
			end = e
		}
		j = e
		if k := connector(s, j, " dot "); k > 0 && k < len(s) && isAlnum(s[k]) {
			j = k
		} else if j+1 < len(s) && s[j] == '.' && isAlnum(s[j+1]) {
			j++
		} else {
			break
		}
	}
	return end
}

// connector returns the position after one of the words ws at j, or -1.
func connector(s string, j int, ws ...string) int {
	if j >= len(s) || s[j] != ' ' {
		return -1
	}
	for _, w := range ws {
		if hasPrefixFold(s[j:], w) {
			return j + len(w)
		}
	}
	return -1
}

var tlds = [...]string{"com", "net", "org", "edu", "gov", "io", "co", "uk", "us", "ca", "de", "fr", "es", "it", "nl", "ie", "au", "info", "biz", "me", "ai", "app", "dev"}

func isTLD(w string) bool {
	for _, t := range tlds {
		if strings.EqualFold(w, t) {
			return true
		}
	}
	return false
}

// digitWord maps a recognizer's word to the digits it stands for.
// homophone marks words that are digits only between other digits
// ("for", "to").
type digitWord struct {
	w         string
	d         string
	tens      bool // twenty … ninety: may combine with a following unit
	homophone bool
}

var digitWords = [...]digitWord{
	{w: "zero", d: "0"}, {w: "oh", d: "0"}, {w: "o", d: "0"}, {w: "nought", d: "0"},
	{w: "one", d: "1"}, {w: "two", d: "2"}, {w: "three", d: "3"}, {w: "four", d: "4"},
	{w: "five", d: "5"}, {w: "six", d: "6"}, {w: "seven", d: "7"}, {w: "eight", d: "8"},
	{w: "nine", d: "9"}, {w: "niner", d: "9"},
	{w: "ten", d: "10"}, {w: "eleven", d: "11"}, {w: "twelve", d: "12"}, {w: "thirteen", d: "13"},
	{w: "fourteen", d: "14"}, {w: "fifteen", d: "15"}, {w: "sixteen", d: "16"},
	{w: "seventeen", d: "17"}, {w: "eighteen", d: "18"}, {w: "nineteen", d: "19"},
	{w: "twenty", d: "20", tens: true}, {w: "thirty", d: "30", tens: true}, {w: "forty", d: "40", tens: true},
	{w: "fifty", d: "50", tens: true}, {w: "sixty", d: "60", tens: true}, {w: "seventy", d: "70", tens: true},
	{w: "eighty", d: "80", tens: true}, {w: "ninety", d: "90", tens: true},
	{w: "for", d: "4", homophone: true}, {w: "to", d: "2", homophone: true}, {w: "too", d: "2", homophone: true},
}

// digitIndex finds a digit word by its lower-case spelling.
var digitIndex = func() map[string]*digitWord {
	m := make(map[string]*digitWord, len(digitWords))
	for i := range digitWords {
		m[digitWords[i].w] = &digitWords[i]
	}
	return m
}()

func lookupDigit(w string) *digitWord {
	var buf [9]byte
	if len(w) == 0 || len(w) > len(buf) {
		return nil
	}
	for i := 0; i < len(w); i++ {
		buf[i] = w[i] | 0x20 // w is letters only
	}
	return digitIndex[string(buf[:len(w)])]
}

// single reports a word that is one digit, zero included.
func (d *digitWord) single() bool { return len(d.d) == 1 && !d.homophone }

// isUnit reports a single-digit word one … nine.
func (d *digitWord) isUnit() bool { return len(d.d) == 1 && d.d != "0" && !d.homophone }

// maxSpokenWords bounds one spoken digit string, so that text made of
// digit words is scanned in linear time whatever the policy.
const maxSpokenWords = 48

// spoken matches digits read aloud starting at the word at i ("four one
// one one …", "double five", "forty one", "oh"), classifies them like
// typed digits (without the shapes only typing has) and returns the end of
// the span it redacted, or i.
func (r *Redactor) spoken(o *out, i int) int {
	s := o.s
	var digs [24]byte
	nd, total := 0, 0 // digits stored, digits heard
	realEnd, realN, realTotal := i, 0, 0
	put := func(d string) {
		for k := 0; k < len(d); k++ {
			if nd < len(digs) {
				digs[nd] = d[k]
				nd++
			}
			total++
		}
	}
	// units counts single-digit words: digits read one by one, the way
	// account and id numbers are read, unlike "ten thirty, eleven fifteen".
	units, words, realUnits, realWords := 0, 0, 0, 0
	prevSingle := false
	j := i
	for range maxSpokenWords {
		we := letterEnd(s, j)
		w := s[j:we]
		rep := 1
		if strings.EqualFold(w, "double") {
			rep = 2
		} else if strings.EqualFold(w, "triple") {
			rep = 3
		}
		if rep > 1 {
			k := wordGap(s, we)
			if k < 0 {
				break
			}
			ne := letterEnd(s, k)
			dw := lookupDigit(s[k:ne])
			if dw == nil || !dw.single() {
				break
			}
			for ; rep > 0; rep-- {
				put(dw.d)
			}
			we = ne
			units++
			prevSingle = true
		} else {
			dw := lookupDigit(w)
			if dw == nil {
				break
			}
			if dw.homophone {
				// "for" and "to" are digits only between single digits:
				// "four one for two", not "ten thirty to eleven".
				k := wordGap(s, we)
				if !prevSingle || k < 0 {
					break
				}
				if nx := lookupDigit(s[k:letterEnd(s, k)]); nx == nil || !nx.single() {
					break
				}
				put(dw.d)
				units++
				words++
				j = k
				continue
			}
			combined := false
			if dw.tens { // "forty one" / "forty-one" → 41
				if k := wordGap(s, we); k == we+1 && (s[we] == ' ' || s[we] == '-') {
					ne := letterEnd(s, k)
					if u := lookupDigit(s[k:ne]); u != nil && u.isUnit() {
						put(dw.d[:1])
						put(u.d)
						we = ne
						combined = true
					}
				}
			}
			if !combined {
				put(dw.d)
			}
			prevSingle = dw.single() && !combined
			if prevSingle {
				units++
			}
		}
		words++
		realEnd, realN, realTotal, realUnits, realWords = we, nd, total, units, words
		k := wordGap(s, we)
		if k < 0 {
			break
		}
		j = k
	}
	if realTotal < 3 {
		return i
	}
	k := r.classifyDigits(digs[:realN], realTotal, cueBefore(s, i, o.ctx), realUnits*2 >= realWords)
	if k == kNone {
		return i
	}
	var l4 [4]byte
	n := copy(l4[:], digs[max(realN-4, 0):realN])
	o.emit(i, realEnd, k, r.last4(k, realTotal, l4[:n]))
	return realEnd
}

// classifyDigits decides what a string of spoken digits is; byDigit says
// it was read mostly digit by digit, which a bare long number (without a
// cue or a card checksum) must be.
func (r *Redactor) classifyDigits(d []byte, n int, c cue, byDigit bool) kind {
	p := &r.p
	switch {
	case p.Cards && n >= 13 && n <= 19 && n == len(d) && luhn(d):
		return kCard
	case c == cueCard && p.Cards && n >= 12 && n <= 19:
		return kCard
	case c == cueCVV && p.SecurityCodes && (n == 3 || n == 4):
		return kCVV
	case c == cuePIN && p.SecurityCodes && n >= 4 && n <= 8:
		return kPIN
	case c == cueSSN && p.SSNs && n == 9:
		return kSSN
	case c == cueSort && p.Accounts && n == 6:
		return kSortCode
	case c == cueAccount && p.Accounts && n >= 6 && n <= 18:
		return kAccount
	case p.NationalIDs && byDigit && n >= p.MinDigits:
		return kNumber
	}
	return kNone
}

// wordGap returns the start of the next word after a separator of one to
// three spaces, commas, periods or dashes at j, or -1.
func wordGap(s string, j int) int {
	k := j
	for k < len(s) && k-j < 3 && (s[k] == ' ' || s[k] == ',' || s[k] == '.' || s[k] == '-') {
		k++
	}
	if k == j || k >= len(s) || !isLetter(s[k]) {
		return -1
	}
	return k
}

// --- helpers ---

// last4 returns the digits to keep after the mask for a span of kind k
// with n digits, or nil.
func (r *Redactor) last4(k kind, n int, l4 []byte) []byte {
	if !r.p.KeepLast4 || len(l4) < 4 {
		return nil
	}
	switch k {
	case kCard:
		return l4
	case kAccount, kIBAN, kNumber, kPhone:
		if n >= 8 {
			return l4
		}
	}
	return nil
}

// lastDigits fills dst with the last four digits of s[start:end].
func lastDigits(dst *[4]byte, s string, start, end int) []byte {
	n := 0
	for j := end - 1; j >= start && n < 4; j-- {
		if isDigit(s[j]) {
			n++
			dst[4-n] = s[j]
		}
	}
	return dst[4-n:]
}

// luhnSpan checks the Luhn sum of the digits of s[start:end].
func luhnSpan(s string, start, end int) bool {
	sum, alt := 0, false
	for j := end - 1; j >= start; j-- {
		c := s[j]
		if !isDigit(c) {
			continue
		}
		d := int(c - '0')
		if alt {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		alt = !alt
	}
	return sum%10 == 0
}

func luhn(d []byte) bool { return luhnSpan(bytesToString(d), 0, len(d)) }

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isUpper(c byte) bool  { return c >= 'A' && c <= 'Z' }
func isLetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isAlnum(c byte) bool  { return isDigit(c) || isLetter(c) }
func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 0x20
	}
	return c
}

// isLocal reports a byte allowed in an e-mail address's local part.
func isLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			n++
		}
	}
	return n
}

func allLetters(w string) bool {
	for i := 0; i < len(w); i++ {
		if !isLetter(w[i]) {
			return false
		}
	}
	return true
}

func alnumEnd(s string, j int) int {
	for j < len(s) && isAlnum(s[j]) {
		j++
	}
	return j
}

func letterEnd(s string, j int) int {
	for j < len(s) && isLetter(s[j]) {
		j++
	}
	return j
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// bytesToString views b as a string without copying; the callers never
// modify b while the string is in use.
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// ibanMinLen is the length of the shortest IBAN (Norway's).
const ibanMinLen = 15
