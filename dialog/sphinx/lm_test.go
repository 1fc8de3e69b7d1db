package sphinx

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalizeSentence(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"My card was STOLEN!", "my card was stolen"},
		{"I don't know, what's my balance?", "i don't know what's my balance"},
		{"Fees: $25 per month", "fees twenty five per month"},
		{"Call 1,200 times", "call one thousand two hundred times"},
		{"PIN 0042", "pin zero zero four two"},
		{"account 123456789", "account one two three four five six seven eight nine"},
		{"7 days", "seven days"},
		{"100", "one hundred"},
		{"3000", "three thousand"},
		{"19 and 90 and 2024", "nineteen and ninety and two thousand twenty four"},
		{"'quoted' words", "quoted words"},
		{"héllo ☃ 日本語", "h llo"},
		{"", ""},
		{"?!.", ""},
	}
	for _, tt := range tests {
		if got := strings.Join(normalizeSentence(tt.in), " "); got != tt.want {
			t.Errorf("normalizeSentence(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// arpaModel is a parsed ARPA file, for checking what writeARPA produced.
type arpaModel struct {
	counts [4]int
	p      map[string]float64 // log10 prob by "w1 w2 ..."
	bow    map[string]float64
}

func parseARPA(t *testing.T, text string) arpaModel {
	t.Helper()
	m := arpaModel{p: map[string]float64{}, bow: map[string]float64{}}
	order := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "" || line == "\\data\\" || line == "\\end\\":
		case strings.HasPrefix(line, "ngram "):
			k, v, _ := strings.Cut(strings.TrimPrefix(line, "ngram "), "=")
			n, _ := strconv.Atoi(k)
			c, _ := strconv.Atoi(v)
			m.counts[n] = c
		case strings.HasPrefix(line, "\\") && strings.HasSuffix(line, "-grams:"):
			order = int(line[1] - '0')
		default:
			f := strings.Fields(line)
			if len(f) != order+1 && len(f) != order+2 {
				t.Fatalf("bad %d-gram line %q", order, line)
			}
			p, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				t.Fatalf("bad prob in %q", line)
			}
			key := strings.Join(f[1:order+1], " ")
			m.p[key] = p
			if len(f) == order+2 {
				b, err := strconv.ParseFloat(f[order+1], 64)
				if err != nil {
					t.Fatalf("bad backoff in %q", line)
				}
				m.bow[key] = b
			}
		}
	}
	return m
}

// prob computes P(w | h) from the back-off model.
func (m arpaModel) prob(h []string, w string) float64 {
	for len(h) > 0 {
		if p, ok := m.p[strings.Join(append(slices.Clone(h), w), " ")]; ok {
			return math.Pow(10, p)
		}
		b := m.bow[strings.Join(h, " ")]
		return math.Pow(10, b) * m.prob(h[1:], w)
	}
	return math.Pow(10, m.p[w])
}

func TestWriteARPA(t *testing.T) {
	sents := [][]string{
		strings.Fields("my card was stolen"),
		strings.Fields("my card was lost"),
		strings.Fields("i lost my card"),
		strings.Fields("check my balance"),
	}
	var b bytes.Buffer
	if err := writeARPA(&b, sents); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := writeARPA(&again, slices.Clone(sents)); err != nil {
		t.Fatal(err)
	}
	if b.String() != again.String() {
		t.Fatal("writeARPA is not deterministic")
	}
	m := parseARPA(t, b.String())
	if m.counts[1] != 10 { // 8 words + <s> + </s>
		t.Fatalf("unigrams %d, want 10", m.counts[1])
	}
	vocab := []string{"</s>", "my", "card", "was", "stolen", "lost", "i", "check", "balance"}
	// Every history's distribution over the vocabulary sums to one.
	for _, h := range [][]string{{"<s>"}, {"my"}, {"card"}, {"<s>", "my"}, {"my", "card"}, {"card", "was"}, {"balance"}, {"stolen"}} {
		var sum float64
		for _, w := range vocab {
			sum += m.prob(h, w)
		}
		if math.Abs(sum-1) > 0.01 {
			t.Errorf("P(.|%v) sums to %.4f", h, sum)
		}
	}
	if m.prob([]string{"my", "card"}, "was") <= m.prob([]string{"my", "card"}, "balance") {
		t.Error("seen trigram not preferred")
	}
	if err := writeARPA(&b, nil); err == nil {
		t.Fatal("empty model accepted")
	}
}

const testDict = `a AH
a(2) EY
back B AE K
card K AA R D
cash K AE SH
check CH EH K
broken line without phones
bad x-y 7
my M AY
`

func TestParseLexicon(t *testing.T) {
	words := map[string]bool{"a": true, "card": true, "cards": true, "card's": true, "cashback": true, "atm": true, "sms": true, "zzzzzzzz": true, "my": true, "bad": true}
	lx := parseLexicon([]byte(testDict), words)
	want := map[string][]string{
		"a":        {"AH", "EY"},
		"card":     {"K AA R D"},
		"cards":    {"K AA R D Z"},
		"card's":   {"K AA R D Z"},
		"cashback": {"K AE SH B AE K"},
		"atm":      {"EY T IY EH M"},
		"sms":      {"EH S EH M EH S"},
		"my":       {"M AY"},
	}
	for w, p := range want {
		if !slices.Equal(lx.prons[w], p) {
			t.Errorf("%s: got %v, want %v", w, lx.prons[w], p)
		}
	}
	// "bad" has only a malformed line; three letters are spelled as an acronym.
	if !slices.Equal(lx.dropped, []string{"zzzzzzzz"}) {
		t.Errorf("dropped %v", lx.dropped)
	}
	if !slices.Equal(lx.guessed, []string{"atm", "bad", "card's", "cards", "cashback", "sms"}) {
		t.Errorf("guessed %v", lx.guessed)
	}
	var b bytes.Buffer
	if err := lx.writeDict(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "a AH\na(2) EY\natm EY T IY EH M\n") {
		t.Errorf("dictionary:\n%s", b.String())
	}
}

func TestPluralPhone(t *testing.T) {
	for pron, want := range map[string]string{"K AA R D": "Z", "B AE K": "S", "B AA K S": "IH Z", "P IY": "Z"} {
		if got := pluralPhone(pron); got != want {
			t.Errorf("pluralPhone(%q) = %q, want %q", pron, got, want)
		}
	}
}

// FuzzNormalizeSentence: knowledge-base text is outside input.
func FuzzNormalizeSentence(f *testing.F) {
	for _, s := range []string{"My card was stolen!", "$1,234.56 on 12/03/2024", "héllo ☃", "0000000000000000000", "it's 'quoted'", "9999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, w := range normalizeSentence(s) {
			if w == "" || strings.ContainsAny(w, " \t\n") || !utf8.ValidString(w) {
				t.Fatalf("bad word %q from %q", w, s)
			}
			for _, r := range w {
				if (r < 'a' || r > 'z') && r != '\'' {
					t.Fatalf("word %q has %q", w, r)
				}
			}
		}
	})
}

// FuzzWriteARPA: any sentences give a model whose lines parse.
func FuzzWriteARPA(f *testing.F) {
	f.Add("my card was stolen\ni lost my card")
	f.Add("a a a a\na")
	f.Fuzz(func(t *testing.T, text string) {
		var sents [][]string
		for _, l := range strings.Split(text, "\n") {
			if ws := normalizeSentence(l); len(ws) > 0 {
				sents = append(sents, ws)
			}
		}
		var b bytes.Buffer
		err := writeARPA(&b, sents)
		if len(sents) == 0 {
			if err == nil {
				t.Fatal("empty model accepted")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		m := parseARPA(t, b.String())
		for k, p := range m.p {
			if math.IsNaN(p) || math.IsInf(p, 0) || p > 0 {
				t.Fatalf("bad log prob %v for %q", p, k)
			}
		}
	})
}

// FuzzParseLexicon: the dictionary file is read from disk.
func FuzzParseLexicon(f *testing.F) {
	f.Add([]byte(testDict), "cards cashback atm")
	f.Add([]byte("x(2\n(\n a\n"), "x a")
	f.Fuzz(func(t *testing.T, data []byte, words string) {
		want := map[string]bool{}
		for _, w := range strings.Fields(words) {
			want[w] = true
		}
		lx := parseLexicon(data, want)
		if len(lx.prons)+len(lx.dropped) != len(want) {
			t.Fatalf("%d pronounced + %d dropped != %d words", len(lx.prons), len(lx.dropped), len(want))
		}
		for w, ps := range lx.prons {
			for _, p := range ps {
				if p == "" || !validPron(p) {
					t.Fatalf("bad pronunciation %q for %q", p, w)
				}
			}
		}
	})
}

// TestPhoneBandVariants: phone-band pronunciation variants reach the
// dictionary, and a wide-band recognizer leaves them out.
func TestPhoneBandVariants(t *testing.T) {
	for _, wide := range []bool{false, true} {
		r, err := New(Config{DataDir: t.TempDir(), MaxDecoders: 1, WideBand: wide, NoCallerCorpus: true})
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(r.cur.Load().dict)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		for w, vs := range phoneBandVariants {
			for _, v := range vs {
				re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(w) + `(\(\d+\))? ` + regexp.QuoteMeta(v) + `$`)
				if got := re.Match(data); got == wide {
					t.Errorf("wide band %v: %s %q in dictionary: %v", wide, w, v, got)
				}
			}
		}
	}
}
