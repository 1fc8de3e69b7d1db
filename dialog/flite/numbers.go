package flite

import (
	"strconv"
	"strings"
)

// Number words used by the normalizer. Everything is lower case; flite
// ignores case for ordinary words.
var (
	smallWords = [...]string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
		"ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"}
	tensWords  = [...]string{"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}
	scaleWords = [...]string{"", "thousand", "million", "billion", "trillion"}
	monthNames = [...]string{"", "January", "February", "March", "April", "May", "June", "July",
		"August", "September", "October", "November", "December"}
)

// maxCardinalDigits is the longest digit string read as one number; longer
// ones ("trillions of quadrillions") are read digit by digit.
const maxCardinalDigits = 15

// below1000 spells 0 < n < 1000.
func below1000(n int, b *strings.Builder) {
	if n >= 100 {
		b.WriteString(smallWords[n/100])
		b.WriteString(" hundred")
		n %= 100
		if n == 0 {
			return
		}
		b.WriteByte(' ')
	}
	if n < 20 {
		b.WriteString(smallWords[n])
		return
	}
	b.WriteString(tensWords[n/10])
	if n%10 != 0 {
		b.WriteByte(' ')
		b.WriteString(smallWords[n%10])
	}
}

// cardinal spells n (0 <= n < 10^15) the American way, without "and":
// 1234 → "one thousand two hundred thirty four".
func cardinal(n int64) string {
	if n == 0 {
		return "zero"
	}
	if n < 0 {
		return "minus " + cardinal(-n)
	}
	var groups []int
	for n > 0 {
		groups = append(groups, int(n%1000))
		n /= 1000
	}
	var b strings.Builder
	for i := len(groups) - 1; i >= 0; i-- {
		g := groups[i]
		if g == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		below1000(g, &b)
		if i > 0 && i < len(scaleWords) {
			b.WriteByte(' ')
			b.WriteString(scaleWords[i])
		}
	}
	return b.String()
}

// cardinalDigits spells a string of ASCII digits as a number when it is
// short enough, and digit by digit otherwise.
func cardinalDigits(digits string) string {
	t := strings.TrimLeft(digits, "0")
	if t == "" {
		if digits == "" {
			return ""
		}
		return "zero"
	}
	if len(t) > maxCardinalDigits {
		return digitGroups(digits)
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return digitGroups(digits)
	}
	return cardinal(n)
}

// digitWords reads every digit in s one by one: "4821" → "four eight two
// one". Other characters are ignored.
func digitWords(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(smallWords[c-'0'])
	}
	return b.String()
}

// digitGroups reads a run of digits digit by digit, with a comma (a short
// pause) between groups the way people read long numbers back: 7 digits as
// 3-4, 10 as 3-3-4, 11 starting with 1 as 1-3-3-4, and otherwise groups of
// four from the left. Up to six digits are read as one group.
func digitGroups(s string) string {
	var d []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			d = append(d, s[i])
		}
	}
	var sizes []int
	switch n := len(d); {
	case n <= 6:
		sizes = []int{n}
	case n == 7:
		sizes = []int{3, 4}
	case n == 10:
		sizes = []int{3, 3, 4}
	case n == 11 && d[0] == '1':
		sizes = []int{1, 3, 3, 4}
	default:
		for ; n > 0; n -= 4 {
			sizes = append(sizes, min(n, 4))
		}
	}
	parts := make([]string, 0, len(sizes))
	i := 0
	for _, sz := range sizes {
		parts = append(parts, digitWords(string(d[i:i+sz])))
		i += sz
	}
	return strings.Join(parts, ", ")
}

// ordinalWord turns the last word of a spelled cardinal into its ordinal:
// "twenty one" → "twenty first", "twelve" → "twelfth".
func ordinalWord(card string) string {
	i := strings.LastIndexByte(card, ' ')
	head, last := card[:i+1], card[i+1:]
	switch last {
	case "one":
		last = "first"
	case "two":
		last = "second"
	case "three":
		last = "third"
	case "five":
		last = "fifth"
	case "eight":
		last = "eighth"
	case "nine":
		last = "ninth"
	case "twelve":
		last = "twelfth"
	default:
		if strings.HasSuffix(last, "y") {
			last = last[:len(last)-1] + "ieth"
		} else {
			last += "th"
		}
	}
	return head + last
}

// ordinal spells n as an ordinal: 1 → "first", 103 → "one hundred third".
func ordinal(n int64) string { return ordinalWord(cardinal(n)) }

// yearWords reads a year the way it is spoken: 1999 → "nineteen ninety
// nine", 2000 → "two thousand", 2005 → "two thousand five", 2024 → "twenty
// twenty four", 1900 → "nineteen hundred", 1905 → "nineteen oh five".
// Numbers outside 1000-9999 are read as cardinals.
func yearWords(y int) string {
	if y < 1000 || y > 9999 {
		return cardinal(int64(y))
	}
	hi, lo := y/100, y%100
	if y >= 2000 && y < 2010 {
		return cardinal(int64(y))
	}
	if hi%10 == 0 && lo == 0 {
		return cardinal(int64(y)) // 1000, 3000
	}
	var b strings.Builder
	below1000(hi, &b)
	switch {
	case lo == 0:
		b.WriteString(" hundred")
	case lo < 10:
		b.WriteString(" oh ")
		b.WriteString(smallWords[lo])
	default:
		b.WriteByte(' ')
		below1000(lo, &b)
	}
	return b.String()
}

// decimalWords reads a plain number with an optional fraction: "3.14" →
// "three point one four"; "1,234" → "one thousand two hundred thirty
// four". Commas must be valid thousands separators, or the parts are read
// one by one.
func decimalWords(s string) string {
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var words string
	if strings.Contains(intPart, ",") {
		if validThousands(intPart) {
			words = cardinalDigits(strings.ReplaceAll(intPart, ",", ""))
		} else {
			parts := strings.Split(intPart, ",")
			for i, p := range parts {
				parts[i] = cardinalDigits(p)
			}
			words = strings.Join(parts, ", ")
		}
	} else if intPart == "" {
		words = "zero"
	} else {
		words = cardinalDigits(intPart)
	}
	if hasFrac && frac != "" {
		words += " point " + digitWords(frac)
	}
	return words
}

// validThousands reports whether s is digits grouped by commas in threes.
func validThousands(s string) bool {
	parts := strings.Split(s, ",")
	if len(parts[0]) == 0 || len(parts[0]) > 3 {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) != 3 {
			return false
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] != ',' && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}
