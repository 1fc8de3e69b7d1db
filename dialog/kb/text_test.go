package kb

import (
	"slices"
	"testing"
)

func TestParseDigits(t *testing.T) {
	tests := []struct {
		text      string
		expecting bool
		want      string
	}{
		{"four eight two one", false, "4821"},
		{"forty eight twenty one", false, "4821"},
		{"4821", false, "4821"},
		{"48 21", false, "4821"},
		{"it's four eight two one", false, "4821"},
		{"oh four oh seven", false, "0407"},
		{"zero nine", false, "09"},
		{"double four one two", false, "4412"},
		{"triple seven nine", false, "7779"},
		{"nineteen eighty four", false, "1984"},
		{"twenty oh five", false, "2005"},
		{"four hundred and twenty one", false, "421"},
		{"four thousand eight hundred and twenty one", false, "4821"},
		{"two thousand and five", false, "2005"},
		{"thirty", false, "30"},
		{"five hundred", false, "500"},
		{"four for two to", true, "4422"},
		{"four for two to", false, "42"},
		{"won ate", true, "18"},
		{"I don't know", false, ""},
		{"", false, ""},
		{"double", false, ""},
		{"one and two", false, "12"},
		{"the card ending in one two three four please", false, "1234"},
	}
	for _, tt := range tests {
		if got := ParseDigits(tt.text, tt.expecting); got != tt.want {
			t.Errorf("ParseDigits(%q, %v) = %q, want %q", tt.text, tt.expecting, got, tt.want)
		}
	}
}

func TestParseYesNo(t *testing.T) {
	tests := []struct {
		text string
		want yesNo
	}{
		{"yes", answerYes}, {"Yeah.", answerYes}, {"that's right", answerYes}, {"yes please", answerYes},
		{"uh yes I did", answerYes}, {"sure", answerYes}, {"correct", answerYes},
		{"no", answerNo}, {"nope", answerNo}, {"no thanks", answerNo}, {"that's wrong", answerNo},
		{"no I meant the fees", answerNo}, {"not really", answerNo}, {"that's all", answerNo},
		{"what are the fees", answerNone}, {"", answerNone}, {"maybe", answerNone},
	}
	for _, tt := range tests {
		if got := parseYesNo(tt.text); got != tt.want {
			t.Errorf("parseYesNo(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestAsksForHuman(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"agent", true},
		{"representative please", true},
		{"a real person", true},
		{"can I speak to an advisor please", true},
		{"I want to talk to someone about my account", true},
		{"let me speak with a human being", true},
		{"I sent money to the wrong person by mistake", false},
		{"someone has used my card without permission", false},
		{"what's my balance", false},
	}
	for _, tt := range tests {
		if got := asksForHuman(words(tt.text)); got != tt.want {
			t.Errorf("asksForHuman(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestSplitSentences(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"Hello. How can I help?", []string{"Hello.", "How can I help?"}},
		{"It costs 1.50 a month! Okay", []string{"It costs 1.50 a month!", "Okay"}},
		{"One sentence", []string{"One sentence"}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := splitSentences(tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("splitSentences(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestFrustration(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		history []string
		min     float64
		max     float64
	}{
		{"calm", "what's my balance", nil, 0, 0},
		{"empty", "", nil, 0, 0},
		{"swearing", "this fucking card doesn't work", nil, 0.75, 0.85},
		{"ridiculous", "this is ridiculous", nil, 0.75, 0.85},
		{"already told you", "I already told you my card number", nil, 0.6, 0.75},
		{"no run in one turn", "no no no", nil, 0.3, 0.4},
		{"no run across turns", "no", []string{"no", "nope"}, 0.3, 0.4},
		{"single no", "no", nil, 0, 0},
		{"said it again", "I want my refund", []string{"I want my refund"}, 0.25, 0.35},
		{"many cues", "for fucks sake this is ridiculous I already told you, useless", nil, 0.9, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Frustration(tt.text, tt.history...)
			if got < tt.min || got > tt.max {
				t.Errorf("Frustration(%q) = %.3f, want %.2f..%.2f", tt.text, got, tt.min, tt.max)
			}
			if got < 0 || got > 1 {
				t.Errorf("out of range: %v", got)
			}
		})
	}
	// More cues never lower the score.
	if a, b := Frustration("this is ridiculous"), Frustration("this is ridiculous and useless"); b <= a {
		t.Errorf("adding a cue lowered the score: %.3f → %.3f", a, b)
	}
}

func FuzzParseDigits(f *testing.F) {
	for _, s := range []string{"four eight two one", "forty eight twenty one", "double oh", "one hundred and", "thousand thousand"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := ParseDigits(s, true)
		if !isDigits(d) && d != "" {
			t.Fatalf("ParseDigits(%q) = %q, not digits", s, d)
		}
		_ = Frustration(s, s)
		_ = parseYesNo(s)
	})
}
