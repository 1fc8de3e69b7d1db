package flite

import (
	"reflect"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		// money
		{"$12.50", "twelve dollars and fifty cents"},
		{"$1,234", "one thousand two hundred thirty four dollars"},
		{"$1,234.56", "one thousand two hundred thirty four dollars and fifty six cents"},
		{"£5", "five pounds"},
		{"£1.01", "one pound and one penny"},
		{"£5.20", "five pounds and twenty pence"},
		{"€3.20", "three euros and twenty cents"},
		{"$1", "one dollar"},
		{"$0.99", "ninety nine cents"},
		{"$0.01", "one cent"},
		{"$5.00", "five dollars"},
		{"$1.5", "one dollar and fifty cents"},
		{"$1.5 million", "one point five million dollars"},
		{"$5k", "five thousand dollars"},
		{"$2M", "two million dollars"},
		{"$0.125", "zero point one two five dollars"},
		{"-$5", "minus five dollars"},
		{"25 USD", "twenty five dollars"},
		{"EUR 10", "ten euros"},
		{"50¢", "fifty cents"},
		{"$5-$10", "five dollars to ten dollars"},
		// times
		{"3:45pm", "three forty five P M"},
		{"3:45 PM", "three forty five P M"},
		{"3:45 p.m.", "three forty five P M."},
		{"9am", "nine A M"},
		{"9 a.m. Then", "nine A M. Then"},
		{"at 9 a.m. tomorrow", "at nine A M tomorrow"},
		{"7:05", "seven oh five"},
		{"7:00", "seven o'clock"},
		{"7:00pm", "seven P M"},
		{"15:00", "fifteen hundred"},
		{"15:30", "fifteen thirty"},
		{"12:30:15", "twelve thirty and fifteen seconds"},
		{"25:00", "twenty five: zero zero"},
		// dates (US month/day unless the first number is above 12)
		{"12/03/2024", "December third, twenty twenty four"},
		{"2024-03-12", "March twelfth, twenty twenty four"},
		{"3/12/24", "March twelfth, twenty twenty four"},
		{"25/12/2024", "December twenty fifth, twenty twenty four"},
		{"25.12.2024", "December twenty fifth, twenty twenty four"},
		{"March 3rd", "March third"},
		{"March 3, 2024", "March third, twenty twenty four"},
		{"Jan. 5", "January fifth"},
		{"3rd of March", "the third of March"},
		{"1 January 2000", "the first of January, two thousand"},
		{"in May 2021", "in May twenty twenty one"},
		{"2024-02-30", "two thousand twenty four, zero two, thirty"},
		{"3/15", "March fifteenth"},
		// ordinals, percentages, plain numbers
		{"1st 2nd 3rd 4th 11th 12th 21st 22nd 100th 101st", "first second third fourth eleventh twelfth twenty first twenty second one hundredth one hundred first"},
		{"50%", "fifty percent"},
		{"2.5%", "two point five percent"},
		{"-3%", "minus three percent"},
		{"100 percent", "one hundred percent"},
		{"42", "forty two"},
		{"1,000,000", "one million"},
		{"3.14", "three point one four"},
		{"-5 degrees", "minus five degrees"},
		{"in 1999", "in nineteen ninety nine"},
		{"since 2005", "since two thousand five"},
		{"by 1900", "by nineteen hundred"},
		{"in 2010", "in twenty ten"},
		{"1999 people", "one thousand nine hundred ninety nine people"},
		{"10000 people", "ten thousand people"},
		{"v1.2.3", "v one dot two dot three"},
		{"192.168.0.1", "one nine two dot one six eight dot zero dot one"},
		{"007", "zero zero seven"},
		{"12345", "one two three four five"},
		{"4111111111111111", "four one one one, one one one one, one one one one, one one one one"},
		{"1234567890123456789012", "one two three four, five six seven eight, nine zero one two, three four five six, seven eight nine zero, one two"},
		// phone, account and card numbers: digit by digit
		{"555-123-4567", "five five five, one two three, four five six seven"},
		{"(555) 123-4567", "five five five, one two three, four five six seven"},
		{"1-800-555-0199", "one, eight hundred, five five five, zero one nine nine"},
		{"+44 20 7946 0958", "plus four four, two zero, seven nine four six, zero nine five eight"},
		{"call 555-1234", "call five five five, one two three four"},
		{"ending in 4821", "ending in four eight two one"},
		{"card ending in 4821.", "card ending in four eight two one."},
		{"account 12345678", "account one two three four, five six seven eight"},
		{"account number: 4821", "account number four eight two one"},
		{"PIN 0042", "PIN zero zero four two"},
		{"order #1234", "order number one two three four"},
		{"No. 5", "number five"},
		{"ext. 204", "extension two zero four"},
		{"****4821", "four eight two one"},
		{"XXXX-XXXX-4821", "four eight two one"},
		{"last 4 digits are 4821", "last four digits are four eight two one"},
		{"ID A1234B", "I D ay one two three four B"},
		// ranges and slashes
		{"9-5", "nine to five"},
		{"open 9am-5pm", "open nine A M to five P M"},
		{"Mon-Fri", "Monday to Friday"},
		{"Monday-Friday", "Monday to Friday"},
		{"2-3 days", "two to three days"},
		{"24/7", "twenty four seven"},
		{"1/2", "one half"},
		{"3/4 cup", "three quarters cup"},
		{"100/200", "one hundred slash two hundred"},
		{"yes/no", "yes or no"},
		{"and/or", "and or"},
		{"w/o", "without"},
		// abbreviations and symbols
		{"Dr. Smith", "Doctor Smith"},
		{"Mr. Jones & Mrs. Lee", "Mister Jones and Missus Lee"},
		{"Ms Brown", "Miz Brown"},
		{"St. Louis", "Saint Louis"},
		{"12 Main St.", "twelve Main Street."},
		{"12 Elm Dr. North", "twelve Elm Drive North"},
		{"500 Oak Ave", "five hundred Oak Avenue"},
		{"e.g. this", "for example this"},
		{"i.e. that", "that is that"},
		{"apples, pears, etc.", "apples, pears, et cetera."},
		{"apples etc. and more", "apples et cetera and more"},
		{"cats vs. dogs", "cats versus dogs"},
		{"cats vs dogs", "cats versus dogs"},
		{"Acme Inc.", "Acme Incorporated."},
		{"the U.S. market", "the U S market"},
		{"Tom & Jerry", "Tom and Jerry"},
		{"A+ rating", "A plus rating"},
		{"support@acme.com", "support at acme dot com"},
		{"www.acme.com/help", "W W W dot acme dot com slash help"},
		{"5km", "five kilometers"},
		{"claim #A-552-0913", "claim number ay, five five two, zero nine one three"},
		{"PIN 42", "PIN four two"},
		{"$312/month", "three hundred twelve dollars per month"},
		{"10 GB/mo", "ten gigabytes per month"},
		{"8am ET", "eight A M E T"},
		{"flight BA2490", "flight B ay two four nine zero"},
		{"4G and mp3", "four G and M P three"},
		{"the IRS and HR", "the I R S and H R"},
		{"1 hr", "one hour"},
		{"3 GB", "three gigabytes"},
		// cleaning
		{"héllo café naïve", "hello cafe naive"},
		{"“quoted” — dash… ok", `"quoted", dash... ok`},
		{"日本語 text", "text"},
		{"tab\tand\x00null", "tab and null"},
		{"line one\nline two", "line one\nline two"},
		{"  lots   of    space  ", "lots of space"},
		{"Straße", "Strasse"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeDayFirst(t *testing.T) {
	n := Normalizer{DayFirst: true}
	tests := []struct{ in, want string }{
		{"12/03/2024", "March twelfth, twenty twenty four"},
		{"03/12/2024", "December third, twenty twenty four"},
		{"12/25/2024", "December twenty fifth, twenty twenty four"}, // impossible day/month: month/day
		{"2024-03-12", "March twelfth, twenty twenty four"},
	}
	for _, tt := range tests {
		if got := n.Normalize(tt.in); got != tt.want {
			t.Errorf("DayFirst Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNumberWords(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{cardinal(0), "zero"},
		{cardinal(13), "thirteen"},
		{cardinal(100), "one hundred"},
		{cardinal(1001), "one thousand one"},
		{cardinal(2000000), "two million"},
		{cardinal(999999999999999), "nine hundred ninety nine trillion nine hundred ninety nine billion nine hundred ninety nine million nine hundred ninety nine thousand nine hundred ninety nine"},
		{ordinal(1), "first"},
		{ordinal(20), "twentieth"},
		{ordinal(1000), "one thousandth"},
		{yearWords(1905), "nineteen oh five"},
		{yearWords(2000), "two thousand"},
		{yearWords(2024), "twenty twenty four"},
		{yearWords(1000), "one thousand"},
		{digitGroups("5551234"), "five five five, one two three four"},
		{digitGroups("15551234567"), "one, five five five, one two three, four five six seven"},
		{cardinalDigits("0000"), "zero"},
		{decimalWords("1,23"), "one, twenty three"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

func TestSplitSentences(t *testing.T) {
	long := strings.Repeat("word ", 80) // 400 bytes, no punctuation
	tests := []struct {
		in   string
		want []string
	}{
		{"Hello there. How are you? Fine!", []string{"Hello there.", "How are you?", "Fine!"}},
		{"Dr. Smith is in. Call him.", []string{"Dr. Smith is in.", "Call him."}},
		{"It costs $1,234.56 today. Thanks.", []string{"It costs $1,234.56 today.", "Thanks."}},
		{"Use e.g. this one. Or that.", []string{"Use e.g. this one.", "Or that."}},
		{"J. R. Smith wrote it. Yes.", []string{"J. R. Smith wrote it.", "Yes."}},
		{"He said \"stop.\" Then left.", []string{"He said \"stop.\"", "Then left."}},
		{"Wait... what?! No.", []string{"Wait...", "what?!", "No."}},
		{"Version 3.5 is out. Get it", []string{"Version 3.5 is out.", "Get it"}},
		{"line one\nline two\n\nline three", []string{"line one", "line two", "line three"}},
		{"approx. five minutes. OK.", []string{"approx. five minutes.", "OK."}},
		{"Meet Jan. 5 at noon. Bye.", []string{"Meet Jan. 5 at noon.", "Bye."}},
		{"...", nil},
		{"", nil},
		{"   \n  ", nil},
		{"No trailing period", []string{"No trailing period"}},
	}
	for _, tt := range tests {
		if got := SplitSentences(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitSentences(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}

	// Long sentences are cut at clauses, then conjunctions, then words.
	clauses := strings.Repeat("this part of the sentence goes on for a while, ", 12) + "end."
	for _, in := range []string{long, clauses, strings.Repeat("x", 1000),
		strings.Repeat("and then more words follow ", 30)} {
		pieces := SplitSentences(in)
		if len(pieces) < 2 {
			t.Errorf("SplitSentences(%d bytes) gave %d pieces", len(in), len(pieces))
		}
		joined := 0
		for _, p := range pieces {
			if len(p) > MaxUtteranceChars || p == "" {
				t.Errorf("piece of %d bytes: %q", len(p), p)
			}
			joined += len(strings.ReplaceAll(p, " ", ""))
		}
		if want := len(strings.ReplaceAll(in, " ", "")); joined != want {
			t.Errorf("pieces hold %d non-space bytes, input %d: text lost", joined, want)
		}
	}
	if p := SplitSentences(clauses); !strings.HasSuffix(p[0], ",") {
		t.Errorf("clause split did not cut at a comma: %q", p[0])
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Hello, world.", "Hello, world."},
		{"Wait!!! What??", "Wait! What?"},
		{"so... then", "so. then"},
		{"a ,, b ;; c", "a, b, c"},
		{"don't re-enter", "don't re-enter"},
		{"'quoted' -dash- x-", "quoted dash x"},
		{"(aside) here", "aside, here"},
		{"12 apples", "one two apples"},
		{"tab\tctl\x07\x1b[1m", "tab ctl one m"},
		{"héllo", "h llo"},
		{"?!.,", ""},
		{"...Leading dots", "Leading dots"},
		{strings.Repeat("a", 30), strings.Repeat("a", 12) + " " + strings.Repeat("a", 18)},
		{strings.Repeat("b", 60), strings.Repeat("b", 12) + " " + strings.Repeat("b", 12) + " " + strings.Repeat("b", 12) + " " + strings.Repeat("b", 24)},
		{"", ""},
		{"   ", ""},
	}
	for _, tt := range tests {
		if got := sanitize(tt.in); got != tt.want {
			t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := sanitize(strings.Repeat("word ", 100)); len(got) > MaxUtteranceChars || strings.HasSuffix(got, " ") {
		t.Errorf("sanitize did not bound length: %d bytes", len(got))
	}
}

func TestPrepareBoundsTotal(t *testing.T) {
	text := strings.Repeat("This is one sentence of ordinary length. ", 100) // about 4100 bytes
	utts, truncated := prepare(Normalizer{}, text, 500)
	if !truncated {
		t.Fatal("4100 bytes with a 500 limit not reported as truncated")
	}
	total := 0
	for _, u := range utts {
		total += len(u) + 1
		if !strings.HasSuffix(u, ".") {
			t.Errorf("cut inside a sentence: %q", u)
		}
	}
	if total > 501 || len(utts) < 10 {
		t.Errorf("kept %d utterances, %d bytes; want about 500 bytes", len(utts), total)
	}
	utts, truncated = prepare(Normalizer{}, "Short text.", 500)
	if truncated || len(utts) != 1 {
		t.Errorf("short text: %q truncated=%v", utts, truncated)
	}
	// One sentence longer than the whole limit is cut to fit.
	utts, truncated = prepare(Normalizer{}, strings.Repeat("word ", 50), 100)
	if !truncated || len(utts) != 1 || len(utts[0]) > 100 {
		t.Errorf("long first sentence: %q truncated=%v", utts, truncated)
	}
}

func TestSplitFirst(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Short one.", []string{"Short one."}},
		{"Your balance is one thousand two hundred thirty four dollars and fifty six cents as of March third.",
			[]string{"Your balance is one thousand two hundred thirty four dollars and fifty six cents", "as of March third."}},
		{"Thank you for calling the billing department, how can I help you with your account today?",
			[]string{"Thank you for calling the billing department,", "how can I help you with your account today?"}},
		{strings.Repeat("abcdefghij", 12), []string{strings.Repeat("abcdefghij", 12)}},
	}
	for _, tt := range tests {
		if got := splitFirst(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitFirst(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}
