package sphinx

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/parley-ai/parley/dialog"
)

func TestDropWordsSplits(t *testing.T) {
	prons := map[string][]string{"my": {"M AY"}, "card": {"K AA R D"}, "was": {"W AA Z"}, "stolen": {"S T OW L AH N"}}
	tests := []struct {
		name string
		in   [][]string
		want [][]string
	}{
		{"all known", [][]string{{"my", "card", "was", "stolen"}}, [][]string{{"my", "card", "was", "stolen"}}},
		{"unknown inside", [][]string{{"my", "xq", "card"}}, [][]string{{"my"}, {"card"}}},
		{"unknown at ends", [][]string{{"xq", "my", "card", "zz"}}, [][]string{{"my", "card"}}},
		{"only unknown", [][]string{{"xq", "zz"}}, [][]string{}},
		{"empty", nil, [][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dropWords(tt.in, prons)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCorpusWeight(t *testing.T) {
	tests := []struct {
		kb, corpus, want int
	}{
		{0, 1000, 1},
		{1000, 0, 1},
		{1000, 1000, 1},    // 0.43 rounds down to the floor of one
		{100, 100000, 200}, // capped
		{1000, 100000, 42}, // 0.3/0.7*100
		{50000, 100000, 1}, // a big knowledge base needs no repetition
		{3000, 120000, 17}, // a typical one
	}
	for _, tt := range tests {
		if got := corpusWeight(tt.kb, tt.corpus); got != tt.want {
			t.Errorf("corpusWeight(%d, %d) = %d, want %d", tt.kb, tt.corpus, got, tt.want)
		}
	}
}

// TestCallerCorpus checks the embedded corpus: all of Banking77's training
// questions, normalized (lower case, digits spelled out).
func TestCallerCorpus(t *testing.T) {
	c := callerCorpus()
	if len(c) != 10003 {
		t.Fatalf("corpus has %d sentences, want 10003", len(c))
	}
	if got := strings.Join(c[0], " "); got != "i am still waiting on my card" {
		t.Fatalf("first sentence %q", got)
	}
	for _, s := range c {
		for _, w := range s {
			if w != strings.ToLower(w) || strings.ContainsAny(w, "0123456789?.,") {
				t.Fatalf("word %q not normalized in %q", w, s)
			}
		}
	}
}

// TestCallerCorpusOpenWording: a question worded unlike any knowledge-base
// sentence is recognized with the corpus and not without it.
func TestCallerCorpusOpenWording(t *testing.T) {
	requireFlite(t)
	const said = "why has my top up not gone through"
	pcm8 := phone(t, "kal", said, 0)
	for _, tc := range []struct {
		noCorpus bool
		want     bool
	}{{false, true}, {true, false}} {
		r, err := New(Config{DataDir: t.TempDir(), Sentences: []string{"i lost my card", "what is my balance"}, MaxDecoders: 1, NoCallerCorpus: tc.noCorpus})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := r.TranscribePCM(context.Background(), pcm8, 8000, dialog.ModeOpen)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.Text == said; got != tc.want {
			t.Errorf("NoCallerCorpus=%v: got %q, exact match %v, want %v", tc.noCorpus, tr.Text, got, tc.want)
		}
		if tc.noCorpus && slices.Contains(strings.Fields(tr.Text), "top") {
			t.Errorf("word outside the model recognized: %q", tr.Text)
		}
	}
}
