package flite

import (
	"context"
	"errors"
	"testing"
	"time"
)

var benchTexts = []struct{ name, text string }{
	{"short", "My card was stolen."},
	{"balance", "Your balance is $1,234.56 as of March 3rd."},
	{"long", "I want to check my account balance, and then I would like to pay my bill for last month. " +
		"After that, please tell me when the branch on Main Street opens tomorrow morning."},
}

var errFirstOnly = errors.New("first chunk only")

// BenchmarkSynthesize reports the full synthesis time (ns/op) and the time
// until the first audio chunk reaches emit (first-ms).
func BenchmarkSynthesize(b *testing.B) {
	for _, voice := range []string{"slt", "kal"} {
		s := newSynth(b, voice)
		for _, tt := range benchTexts {
			b.Run(voice+"/"+tt.name, func(b *testing.B) {
				b.ReportAllocs()
				var first time.Duration
				samples := 0
				for b.Loop() {
					start := time.Now()
					seen := false
					err := s.Synthesize(context.Background(), tt.text, func(pcm []int16) error {
						if !seen {
							first += time.Since(start)
							seen = true
						}
						samples += len(pcm)
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(first.Microseconds())/1000/float64(b.N), "first-ms")
				b.ReportMetric(float64(samples)/float64(s.SampleRate())/float64(b.N), "audio-s")
			})
		}
	}
}

// BenchmarkFirstChunk stops at the first chunk: the latency before the
// caller hears anything, which is what barge-in and turn-taking feel.
func BenchmarkFirstChunk(b *testing.B) {
	for _, voice := range []string{"slt", "kal"} {
		s := newSynth(b, voice)
		for _, tt := range benchTexts {
			b.Run(voice+"/"+tt.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					err := s.Synthesize(context.Background(), tt.text, func([]int16) error { return errFirstOnly })
					if !errors.Is(err, errFirstOnly) {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	text := "Your balance of $1,234.56 is due 12/03/2024 at 3:45pm; call 1-800-555-0199 about card ending in 4821, Dr. Smith."
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Normalize(text)
	}
}

func BenchmarkPrepare(b *testing.B) {
	text := benchTexts[2].text + " " + benchTexts[1].text
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		prepare(Normalizer{}, text, DefaultMaxChars)
	}
}
