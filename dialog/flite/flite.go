// Package flite is parley's embedded, offline text-to-speech: CMU flite 2.2
// through cgo. It implements dialog.Synthesizer.
//
// Text goes through three stages before flite sees it:
//
//  1. Normalize rewrites numbers, money, dates, times, phone and account
//     numbers, symbols and abbreviations as the words a person would say.
//  2. SplitSentences cuts the text into sentences, and long sentences into
//     clauses of at most MaxUtteranceChars, so every utterance is short and
//     its first audio is ready within milliseconds.
//  3. sanitize reduces each utterance to plain ASCII words and a few
//     punctuation marks. flite's internal errors call exit() and would kill
//     the whole server, so nothing unusual may reach it.
//
// Each utterance is synthesized with flite's streaming callback, and audio
// chunks are handed to the caller as flite produces them.
//
// flite voices are process-wide singletons that are safe to share across
// goroutines; a Synthesizer only bounds how many syntheses run at once so
// speech does not starve the rest of the process of CPU.
package flite

/*
#cgo CFLAGS: -I/usr/include/flite
#cgo LDFLAGS: -lflite_cmu_us_slt -lflite_cmu_us_kal -lflite_cmu_us_kal16 -lflite_cmu_us_rms -lflite_cmu_us_awb -lflite_usenglish -lflite_cmulex -lflite -lm
#include <stdint.h>
#include <stdlib.h>
#include <flite.h>

cst_voice *parley_flite_voice(int id);
int parley_flite_stream(cst_voice *v, const char *text, uintptr_t h, int min_chunk);
int parley_flite_rate(cst_voice *v);
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/cgo"
	"sort"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/parley-ai/parley/dialog"
)

var _ dialog.Synthesizer = (*Synthesizer)(nil)

// DefaultVoice is the voice used when Config.Voice is empty: a natural female
// US English voice at 16 kHz.
const DefaultVoice = "slt"

// DefaultMaxChars bounds the normalized text one Synthesize call speaks when
// Config.MaxChars is zero: about two minutes of speech.
const DefaultMaxChars = 2000

// ErrTruncated is returned (wrapped) by Synthesize and SynthesizeAll when the
// text was longer than Config.MaxChars. The sentences that fit were spoken
// in full before it is returned; the rest was dropped. Callers that prefer
// speaking a cut text over failing can treat it as a warning.
var ErrTruncated = errors.New("flite: text truncated")

// voiceIDs maps voice names to the ids parley_flite_voice understands.
var voiceIDs = map[string]C.int{
	"slt":   0, // female, clustergen, 16 kHz
	"kal":   1, // male, diphone, 8 kHz, very fast, robotic, deterministic
	"kal16": 2, // male, diphone, 16 kHz
	"rms":   3, // male, clustergen, 16 kHz
	"awb":   4, // male (Scottish English), clustergen, 16 kHz
}

// Voices lists the voice names Config.Voice accepts, sorted.
func Voices() []string {
	names := make([]string, 0, len(voiceIDs))
	for n := range voiceIDs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// loadedVoice is a registered flite voice and the sample rate it produces.
type loadedVoice struct {
	v    *C.cst_voice
	rate int
}

var (
	initOnce sync.Once
	voicesMu sync.Mutex
	loaded   = map[string]loadedVoice{}
)

// loadVoice registers a voice once per process. flite's register functions
// return singletons but are not meant to race, hence the mutex.
func loadVoice(name string) (loadedVoice, error) {
	id, ok := voiceIDs[name]
	if !ok {
		return loadedVoice{}, fmt.Errorf("flite: unknown voice %q (have %v)", name, Voices())
	}
	initOnce.Do(func() { C.flite_init() })
	voicesMu.Lock()
	defer voicesMu.Unlock()
	if lv, ok := loaded[name]; ok {
		return lv, nil
	}
	v := C.parley_flite_voice(id)
	if v == nil {
		return loadedVoice{}, fmt.Errorf("flite: register voice %q failed", name)
	}
	rate := int(C.parley_flite_rate(v))
	if rate <= 0 {
		return loadedVoice{}, fmt.Errorf("flite: voice %q produced no audio", name)
	}
	lv := loadedVoice{v: v, rate: rate}
	loaded[name] = lv
	return lv, nil
}

// Config selects the voice and bounds the work of a Synthesizer.
type Config struct {
	// Voice is one of Voices(): "slt" (default, 16 kHz), "kal" (8 kHz),
	// "kal16", "rms" or "awb" (16 kHz).
	Voice string
	// MaxConcurrent bounds how many utterances are synthesized at once across
	// all calls sharing this Synthesizer; 0 means runtime.GOMAXPROCS(0).
	// Utterances replayed from the cache do not take a slot.
	MaxConcurrent int
	// MaxChars bounds the normalized text of one Synthesize call; longer text
	// is cut at a sentence boundary and ErrTruncated is returned. 0 means
	// DefaultMaxChars.
	MaxChars int
	// DayFirstDates reads numeric dates such as 03/12/2024 as day/month
	// (12 March) instead of the US month/day default (March 12).
	DayFirstDates bool
	// ChunkSamples is the minimum size of a streamed chunk that flite
	// accumulates before calling back; 0 keeps flite's default (256
	// samples). Smaller chunks reach the caller sooner but cost more calls.
	ChunkSamples int
	// CacheBytes bounds the cache of recently spoken utterances' audio
	// (sanitized sentence or clause -> samples), so the sentences a call
	// centre repeats all day are synthesized once; 0 means
	// DefaultCacheBytes, negative turns the cache off.
	CacheBytes int
}

// Synthesizer speaks text with one flite voice. It is safe for concurrent use.
type Synthesizer struct {
	name     string
	voice    *C.cst_voice
	rate     int
	maxChars int
	chunk    int
	norm     Normalizer
	slots    chan struct{}
	cache    *audioCache   // nil: off
	flights  flights       // sentences being synthesized, shared with calls asking at once (with the cache)
	runs     atomic.Uint64 // utterances flite synthesized
}

// New loads the configured voice (registering it with flite the first time)
// and returns a Synthesizer for it.
func New(cfg Config) (*Synthesizer, error) {
	name := cfg.Voice
	if name == "" {
		name = DefaultVoice
	}
	if cfg.MaxConcurrent < 0 || cfg.MaxChars < 0 || cfg.ChunkSamples < 0 {
		return nil, fmt.Errorf("flite: negative limit in config (MaxConcurrent %d, MaxChars %d, ChunkSamples %d)",
			cfg.MaxConcurrent, cfg.MaxChars, cfg.ChunkSamples)
	}
	lv, err := loadVoice(name)
	if err != nil {
		return nil, err
	}
	n := cfg.MaxConcurrent
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	maxChars := cfg.MaxChars
	if maxChars == 0 {
		maxChars = DefaultMaxChars
	}
	cacheBytes := cfg.CacheBytes
	if cacheBytes == 0 {
		cacheBytes = DefaultCacheBytes
	}
	return &Synthesizer{
		name:     name,
		voice:    lv.v,
		rate:     lv.rate,
		maxChars: maxChars,
		chunk:    cfg.ChunkSamples,
		norm:     Normalizer{DayFirst: cfg.DayFirstDates},
		slots:    make(chan struct{}, n),
		cache:    newAudioCache(cacheBytes),
	}, nil
}

// Voice returns the name of the voice this Synthesizer speaks with.
func (s *Synthesizer) Voice() string { return s.name }

// SampleRate returns the rate of the audio Synthesize emits (16000 for slt,
// 8000 for kal).
func (s *Synthesizer) SampleRate() int { return s.rate }

// Utterances returns the sanitized utterances Synthesize would pass to flite
// for text, and whether text had to be truncated to MaxChars. It lets callers
// and tests see exactly what will be spoken.
func (s *Synthesizer) Utterances(text string) (utts []string, truncated bool) {
	return prepare(s.norm, text, s.maxChars)
}

// Synthesize speaks text, calling emit with each chunk of audio (mono int16
// at SampleRate) as soon as flite produces it. Each chunk is a new slice the
// callee may keep. It stops promptly, returning an error that wraps the
// cause, when ctx ends or emit returns an error. Text longer than MaxChars
// is spoken up to a sentence boundary and ErrTruncated is returned.
// Text with nothing speakable in it emits nothing and returns nil.
func (s *Synthesizer) Synthesize(ctx context.Context, text string, emit func(pcm []int16) error) error {
	if emit == nil {
		return errors.New("flite: synthesize: nil emit")
	}
	utts, truncated := prepare(s.norm, text, s.maxChars)
	for _, u := range utts {
		if err := s.speak(ctx, u, emit); err != nil {
			return err
		}
	}
	if truncated {
		return fmt.Errorf("%w: text longer than %d characters after normalization, rest not spoken", ErrTruncated, s.maxChars)
	}
	return nil
}

// SynthesizeAll speaks text and returns all of its audio at once, for batch
// uses such as `parley say`. With ErrTruncated it also returns the audio of
// the part that was spoken.
func (s *Synthesizer) SynthesizeAll(ctx context.Context, text string) ([]int16, error) {
	var pcm []int16
	err := s.Synthesize(ctx, text, func(chunk []int16) error {
		pcm = append(pcm, chunk...)
		return nil
	})
	if err != nil && !errors.Is(err, ErrTruncated) {
		return nil, err
	}
	return pcm, err
}

// stream is the Go state of one utterance being synthesized; the C callback
// reaches it through a cgo.Handle.
type stream struct {
	ctx      context.Context
	emit     func([]int16) error
	err      error // why the stream stopped early
	panicV   any   // a panic from emit, re-raised once flite has returned
	panicked bool
}

// emitError marks an error returned by the caller's emit function.
type emitError struct{ err error }

// speak synthesizes one sanitized utterance while holding a concurrency
// slot, or replays it from the cache.
func (s *Synthesizer) speak(ctx context.Context, text string, emit func([]int16) error) error {
	if pcm, ok := s.cache.get(text); ok {
		return replay(ctx, pcm, emit)
	}
	if s.cache != nil {
		f, lead := s.flights.join(text)
		if !lead {
			shared, err := f.follow(ctx, emit)
			if shared {
				return err
			}
			// The leader failed before any audio: synthesize it here.
			return s.synthKeep(ctx, text, emit, nil)
		}
		err := s.synthKeep(ctx, text, emit, f)
		return err
	}
	return s.synth(ctx, text, emit)
}

// synthKeep synthesizes text, keeping a copy for the cache (an utterance
// too long for the cache, or cut short, is not kept) and, when f is set,
// sharing its audio with the calls that asked for it at the same time.
func (s *Synthesizer) synthKeep(ctx context.Context, text string, emit func([]int16) error, f *flight) error {
	var rec []int16
	keep := true
	var emitErr error
	// A shared synthesis goes on for the calls following it when this
	// one's context ends (its caller barged in or hung up).
	sctx := ctx
	if f != nil {
		c, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		stop := context.AfterFunc(ctx, func() {
			if !f.followed() {
				cancel()
			}
		})
		defer stop()
		sctx = c
	}
	err := s.synth(sctx, text, func(pcm []int16) error {
		if f != nil {
			f.add(pcm)
		}
		if keep && s.cache.fits(text, len(rec)+len(pcm)) {
			rec = append(rec, pcm...)
		} else {
			keep, rec = false, nil
		}
		if emitErr != nil {
			return nil // our caller stopped listening; the others still are
		}
		if err := emit(pcm); err != nil {
			if f == nil || !f.followed() {
				return err
			}
			emitErr = err
		}
		return nil
	})
	if err == nil && keep {
		s.cache.put(text, rec) // before the flight ends: a late caller finds it cached
	}
	if f != nil {
		s.flights.finish(text, f, err == nil)
	}
	if err == nil && emitErr != nil {
		return fmt.Errorf("flite: emit: %w", emitErr)
	}
	if err == nil && ctx.Err() != nil {
		return fmt.Errorf("flite: synthesize: %w", ctx.Err())
	}
	return err
}

// synth has flite synthesize one sanitized utterance while holding a
// concurrency slot.
func (s *Synthesizer) synth(ctx context.Context, text string, emit func([]int16) error) error {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("flite: synthesize: %w", ctx.Err())
	}
	defer func() { <-s.slots }()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("flite: synthesize: %w", err)
	}

	s.runs.Add(1)
	st := &stream{ctx: ctx, emit: emit}
	h := cgo.NewHandle(st)
	defer h.Delete()
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))

	rc := C.parley_flite_stream(s.voice, ctext, C.uintptr_t(h), C.int(s.chunk))
	if st.panicked {
		panic(st.panicV)
	}
	switch {
	case st.err != nil:
		var ee emitError
		if errors.As(st.err, &ee) {
			return fmt.Errorf("flite: emit: %w", ee.err)
		}
		return fmt.Errorf("flite: synthesize: %w", st.err)
	case rc < 0:
		return fmt.Errorf("flite: synthesize %q: flite produced no utterance", text)
	}
	return nil
}

func (e emitError) Error() string { return e.err.Error() }
func (e emitError) Unwrap() error { return e.err }

// goFliteChunk receives a streamed chunk from flite (stream.c). It returns 0
// to continue and -1 (CST_AUDIO_STREAM_STOP) to make flite stop.
//
//export goFliteChunk
func goFliteChunk(h C.uintptr_t, samples *C.short, size C.int, last C.int) (rc C.int) {
	st, ok := cgo.Handle(h).Value().(*stream)
	if !ok {
		return -1
	}
	if st.err != nil || st.panicked {
		return -1
	}
	if err := st.ctx.Err(); err != nil {
		st.err = err
		return -1
	}
	if size <= 0 || samples == nil {
		return 0
	}
	pcm := make([]int16, int(size))
	copy(pcm, unsafe.Slice((*int16)(unsafe.Pointer(samples)), int(size)))
	// A panic must not unwind through flite's C frames (it would leak the
	// utterance); catch it here and re-raise it after flite returns.
	defer func() {
		if v := recover(); v != nil {
			st.panicV, st.panicked = v, true
			rc = -1
		}
	}()
	if err := st.emit(pcm); err != nil {
		st.err = emitError{err}
		return -1
	}
	return 0
}
