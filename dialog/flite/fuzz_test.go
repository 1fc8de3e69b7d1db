package flite

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSeeds are inputs every fuzz target starts from: the forms the
// normalizer rewrites, plus hostile text.
var fuzzSeeds = []string{
	"Your balance is $1,234.56 as of March 3rd.",
	"Call 1-800-555-0199 or +44 20 7946 0958, card ending in 4821.",
	"Open 9am-5pm Mon-Fri, 24/7 online; 12/03/2024 at 3:45pm, 50% off!",
	"Dr. Smith & Mr. Jones, e.g. at 12 Main St. etc.",
	"héllo ☃ 日本語 — naïve café “quoted” …",
	"",
	"......!!!!????,,,,;;;;",
	strings.Repeat("9", 400),
	strings.Repeat("x", 500),
	strings.Repeat("$1,", 100),
	"\x00\x01\x1b[31m\xff\xfe bad bytes",
	"1.2.3.4.5.6.7.8 v2.0 192.168.0.1",
	"-$5.00 -12% 1e999 0x1F 3:99pm 25:00 13/13/2024 2024-02-30",
	"A'B'C -- - ' ' ' -a- 'x",
}

// checkSpeakable asserts the invariants flite relies on for one utterance.
func checkSpeakable(t *testing.T, u string) {
	t.Helper()
	if u == "" || len(u) > MaxUtteranceChars {
		t.Fatalf("utterance length %d out of bounds: %q", len(u), u)
	}
	word := 0
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case isLetterAt(u, i):
			word++
			if word > maxTokenChars {
				t.Fatalf("word longer than %d in %q", maxTokenChars, u)
			}
		case c == ' ', c == ',', c == '.', c == '?', c == '!', c == '\'', c == '-':
			word = 0
		default:
			t.Fatalf("byte %q at %d reaches flite: %q", c, i, u)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 4096 {
			in = in[:4096]
		}
		for _, n := range []Normalizer{{}, {DayFirst: true}} {
			out := n.Normalize(in)
			for i := 0; i < len(out); i++ {
				if out[i] >= utf8.RuneSelf || (out[i] < ' ' && out[i] != '\n') {
					t.Fatalf("Normalize(%q) has byte %q at %d: %q", in, out[i], i, out)
				}
			}
			if len(out) > 16*len(in)+16 {
				t.Fatalf("Normalize(%q) expanded to %d bytes", in, len(out))
			}
			for _, s := range SplitSentences(out) {
				if len(s) > MaxUtteranceChars || strings.TrimSpace(s) == "" {
					t.Fatalf("SplitSentences piece of %d bytes: %q", len(s), s)
				}
				if u := sanitize(s); u != "" {
					checkSpeakable(t, u)
				}
			}
		}
	})
}

// FuzzSynthesize feeds arbitrary text through the whole path into real
// flite (kal, the fast voice). flite exits the process on internal errors,
// so a crash here is a crash of the server.
func FuzzSynthesize(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	s, err := New(Config{Voice: "kal", MaxChars: 600})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		utts, _ := s.Utterances(in)
		total := 0
		for _, u := range utts {
			checkSpeakable(t, u)
			total += len(u)
		}
		if total > 600+len(utts) {
			t.Fatalf("utterances total %d bytes, limit 600", total)
		}
		samples := 0
		err := s.Synthesize(context.Background(), in, func(pcm []int16) error {
			samples += len(pcm)
			return nil
		})
		if err != nil && !errors.Is(err, ErrTruncated) {
			t.Fatalf("Synthesize(%q): %v", in, err)
		}
		if len(utts) > 0 && samples == 0 {
			t.Fatalf("Synthesize(%q): no audio for %q", in, utts)
		}
	})
}
