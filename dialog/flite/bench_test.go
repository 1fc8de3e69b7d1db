package flite

import (
	"context"
	"errors"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// threadCPU returns the CPU time used by the calling OS thread. Wall-clock
// latency on a loaded machine mostly measures the other processes; the
// thread's own CPU time until the first chunk is what synthesis costs.
func threadCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD (Linux)
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

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

// BenchmarkSynthesizeCached is BenchmarkSynthesize for sentences the
// audio cache holds: what a repeated sentence costs.
func BenchmarkSynthesizeCached(b *testing.B) {
	s, err := New(Config{Voice: "slt"})
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range benchTexts {
		if _, err := s.SynthesizeAll(context.Background(), tt.text); err != nil {
			b.Fatal(err)
		}
		b.Run("slt/"+tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Synthesize(context.Background(), tt.text, func([]int16) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFirstChunk stops at the first chunk: the latency before the
// caller hears anything, which is what barge-in and turn-taking feel.
// first-cpu-ms is the CPU time the synthesizing thread spent until then
// (normalization included); the goroutine is locked to its thread so the
// cgo call and its callback run there.
func BenchmarkFirstChunk(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, voice := range []string{"slt", "kal"} {
		s := newSynth(b, voice)
		for _, tt := range benchTexts {
			b.Run(voice+"/"+tt.name, func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				b.ReportAllocs()
				var cpu time.Duration
				for b.Loop() {
					start := threadCPU(b)
					err := s.Synthesize(context.Background(), tt.text, func([]int16) error {
						cpu += threadCPU(b) - start
						return errFirstOnly
					})
					if !errors.Is(err, errFirstOnly) {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "first-cpu-ms")
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
