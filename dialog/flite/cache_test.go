package flite

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestCacheReplaysSameAudio(t *testing.T) {
	s, err := New(Config{Voice: "kal"}) // kal is bit-exact from run to run
	if err != nil {
		t.Fatal(err)
	}
	const text = "Our opening hours are nine to five. Is there anything else?"
	first := flatten(collect(t, s, text))
	st := s.CacheStats()
	if st.Hits != 0 || st.Misses != 2 || st.Utterances != 2 || st.Bytes < 2*len(first) {
		t.Fatalf("after the first synthesis: %+v (audio %d samples)", st, len(first))
	}
	chunks := collect(t, s, text)
	if got := flatten(chunks); !slices.Equal(got, first) {
		t.Fatalf("replayed audio differs: %d samples, first %d", len(got), len(first))
	}
	if st := s.CacheStats(); st.Hits != 2 || st.Misses != 2 {
		t.Fatalf("after the replay: %+v", st)
	}
	// Chunks are the callee's to keep: changing one must not change the cache.
	for _, c := range chunks {
		for i := range c {
			c[i] = 0
		}
	}
	if got := flatten(collect(t, s, text)); !slices.Equal(got, first) {
		t.Fatal("changing emitted chunks changed the cached audio")
	}
	// The same sentence inside another text is a hit too.
	collect(t, s, "Hello. Is there anything else?")
	if st := s.CacheStats(); st.Hits != 5 || st.Misses != 3 {
		t.Fatalf("after a text sharing one sentence: %+v", st)
	}
}

func TestCacheOffAndBounded(t *testing.T) {
	off, err := New(Config{Voice: "kal", CacheBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, off, "Hello there.")
	collect(t, off, "Hello there.")
	if st := off.CacheStats(); st != (CacheStats{}) {
		t.Fatalf("cache off: %+v", st)
	}
	// 96 KB: up to 0.75 s of kal per utterance fits (maxItem is an
	// eighth); the total never exceeds the bound.
	small, err := New(Config{Voice: "kal", CacheBytes: 96 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"One.", "Two.", "Three.", "Four.", "Five.", "Six.", "Seven.", "Eight.", "Nine.", "Ten.", "Eleven.", "Twelve."} {
		collect(t, small, w)
		if st := small.CacheStats(); st.Bytes > 96<<10 {
			t.Fatalf("cache holds %d bytes, bound %d", st.Bytes, 96<<10)
		}
	}
	if st := small.CacheStats(); st.Utterances == 0 || st.Utterances >= 12 {
		t.Fatalf("bounded cache holds %d utterances", st.Utterances)
	}
	// Too long for one entry: spoken, never stored.
	const long = "This sentence is far too long to be kept in a cache of ninety six kilobytes, because it lasts several seconds."
	collect(t, small, long)
	utts, _ := small.Utterances(long)
	for _, u := range utts {
		if _, ok := small.cache.items[u]; ok {
			t.Fatalf("long utterance %q stored", u)
		}
	}
}

func TestCacheSkipsInterruptedSynthesis(t *testing.T) {
	s, err := New(Config{Voice: "kal"})
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	const text = "Please hold while I look that up for you."
	err = s.Synthesize(context.Background(), text, func([]int16) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("got %v", err)
	}
	if st := s.CacheStats(); st.Utterances != 0 {
		t.Fatalf("a synthesis cut short was cached: %+v", st)
	}
	full := flatten(collect(t, s, text))
	// A cached replay stops when emit fails or ctx ends, like a synthesis.
	n := 0
	err = s.Synthesize(context.Background(), text, func([]int16) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("replay with failing emit: %v after %d chunks", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Synthesize(ctx, text, func([]int16) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("replay with ended ctx: %v", err)
	}
	if len(full) == 0 {
		t.Fatal("no audio")
	}
}

func TestWarm(t *testing.T) {
	s, err := New(Config{Voice: "kal"})
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"Thanks for calling. How can I help?", "Our fees are listed in the app."}
	if err := s.Warm(context.Background(), texts...); err != nil {
		t.Fatal(err)
	}
	st := s.CacheStats()
	if st.Utterances != 3 || st.Hits != 0 {
		t.Fatalf("after Warm: %+v, want 3 utterances and no hits", st)
	}
	collect(t, s, texts[0])
	if st := s.CacheStats(); st.Hits != 2 || st.Misses != 3 {
		t.Fatalf("speaking a warmed text: %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Warm(ctx, "Something new."); !errors.Is(err, context.Canceled) {
		t.Fatalf("Warm with ended ctx: %v", err)
	}
	off, err := New(Config{Voice: "kal", CacheBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := off.Warm(context.Background(), texts...); err != nil {
		t.Fatal(err)
	}
	// Warm stops at a full cache instead of evicting what it warmed first.
	small, err := New(Config{Voice: "kal", CacheBytes: 200 << 10})
	if err != nil {
		t.Fatal(err)
	}
	many := []string{"First of all.", "Then the second.", "A third one.", "And a fourth.", "Number five.", "Six now.", "Seven.", "Eight.", "Nine.", "Ten."}
	if err := small.Warm(context.Background(), many...); err != nil {
		t.Fatal(err)
	}
	if _, ok := small.cache.peek("First of all."); !ok {
		t.Fatal("Warm evicted the first text it warmed")
	}
	if st := small.CacheStats(); st.Utterances >= len(many) {
		t.Fatalf("a 200 KB cache took all %d texts: %+v", len(many), st)
	}
}

// Calls asking for the same sentence at once share one synthesis: each gets
// the whole audio, flite runs once, and a leader that stops listening does
// not cut the others short.
func TestSameSentenceAtOnceIsSynthesizedOnce(t *testing.T) {
	s, err := New(Config{Voice: "kal"})
	if err != nil {
		t.Fatal(err)
	}
	const text = "Your replacement card will arrive within five working days, and you can use the virtual card in the app until then."
	ref, err := New(Config{Voice: "kal", CacheBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	want := flatten(collect(t, ref, text))

	const n = 6
	got := make([][]int16, n)
	errs := make([]error, n)
	start := make(chan struct{})
	done := make(chan int, n)
	for i := range n {
		go func() {
			<-start
			var pcm []int16
			errs[i] = s.Synthesize(context.Background(), text, func(c []int16) error {
				if i == 0 && len(pcm) > 0 {
					return errors.New("caller 0 barged in")
				}
				pcm = append(pcm, c...)
				return nil
			})
			got[i] = pcm
			done <- i
		}()
	}
	close(start)
	for range n {
		<-done
	}
	whole := 0
	for i := 1; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if slices.Equal(got[i], want) {
			whole++
		}
	}
	if whole != n-1 {
		t.Fatalf("%d of %d listeners got the whole sentence", whole, n-1)
	}
	if errs[0] == nil {
		t.Fatal("the caller who stopped listening got no error")
	}
	// The text is spoken in pieces; each piece was synthesized once.
	if runs, pieces := s.runs.Load(), uint64(s.CacheStats().Utterances); runs != pieces || pieces == 0 {
		t.Fatalf("flite ran %d times for %d pieces and %d callers", runs, pieces, n)
	}
}
