package flite

import (
	"container/list"
	"context"
	"fmt"
	"sync"
)

// DefaultCacheBytes is the size of the audio cache when Config.CacheBytes
// is zero: about 17 minutes of 16 kHz speech, enough for every sentence
// of the sample knowledge base's 40 answers and phrases (15 MB).
const DefaultCacheBytes = 32 << 20

// replaySamples is the chunk size in which cached audio is handed to emit:
// 100 ms at 16 kHz, larger than flite's own chunks because nothing is
// gained by trickling audio that already exists.
const replaySamples = 1600

// audioCache keeps the audio of recently spoken utterances, least recently
// used first out. A call centre says the same sentences all day (the
// greeting, the fixed parts of answers, re-prompts), and synthesizing one
// costs tens to hundreds of milliseconds of CPU that every other call on
// the machine waits for; replaying it costs a copy.
type audioCache struct {
	mu      sync.Mutex
	max     int // bytes
	maxItem int // bytes one utterance may take
	bytes   int
	order   *list.List // front: most recently used; values are *cacheEntry
	items   map[string]*list.Element
	hits    uint64
	misses  uint64
}

type cacheEntry struct {
	text string
	pcm  []int16 // never modified once stored
}

// newAudioCache returns a cache of at most maxBytes, or nil (no caching)
// when maxBytes is not positive.
func newAudioCache(maxBytes int) *audioCache {
	if maxBytes <= 0 {
		return nil
	}
	return &audioCache{max: maxBytes, maxItem: max(maxBytes/8, 1), order: list.New(), items: map[string]*list.Element{}}
}

func entryBytes(text string, pcm []int16) int { return len(text) + 2*len(pcm) + 64 }

// get returns the stored audio of text; the caller must not modify it.
func (c *audioCache) get(text string) ([]int16, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[text]
	if !ok {
		c.misses++
		return nil, false
	}
	c.hits++
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).pcm, true
}

// fits reports whether an utterance of n samples may be stored.
func (c *audioCache) fits(text string, n int) bool {
	return c != nil && len(text)+2*n+64 <= c.maxItem
}

// put stores pcm (which the cache then owns) as the audio of text.
func (c *audioCache) put(text string, pcm []int16) {
	if !c.fits(text, len(pcm)) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[text]; ok {
		c.order.MoveToFront(el)
		return
	}
	c.items[text] = c.order.PushFront(&cacheEntry{text: text, pcm: pcm})
	c.bytes += entryBytes(text, pcm)
	for c.bytes > c.max {
		el := c.order.Back()
		e := el.Value.(*cacheEntry)
		c.order.Remove(el)
		delete(c.items, e.text)
		c.bytes -= entryBytes(e.text, e.pcm)
	}
}

// CacheStats counts the audio cache's lookups since the Synthesizer was made.
type CacheStats struct {
	Hits, Misses uint64
	Bytes        int // audio held
	Utterances   int // utterances held
}

// CacheStats reports how the audio cache has done; all zero when it is off.
func (s *Synthesizer) CacheStats() CacheStats {
	c := s.cache
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits, Misses: c.misses, Bytes: c.bytes, Utterances: len(c.items)}
}

// Warm synthesizes texts into the audio cache ahead of the calls that will
// say them (the greeting and other fixed phrases first), one utterance at
// a time so calls already running keep the other synthesis slots. It
// stops when the cache is full rather than evict what it warmed, and
// returns when done, when ctx ends (its error), or at once when the cache
// is off. Each utterance costs its synthesis CPU (the sample knowledge
// base's 123 utterances take about 35 s of one core), so warm what most
// callers hear and let the cache learn the rest.
func (s *Synthesizer) Warm(ctx context.Context, texts ...string) error {
	if s.cache == nil {
		return nil
	}
	for _, text := range texts {
		utts, _ := prepare(s.norm, text, s.maxChars)
		for _, u := range utts {
			if _, ok := s.cache.peek(u); ok {
				continue
			}
			if s.cache.full() {
				return nil
			}
			if err := s.speak(ctx, u, func([]int16) error { return nil }); err != nil && ctx.Err() != nil {
				return err
			}
		}
	}
	return nil
}

// full reports whether one more utterance of typical length (5 s) would
// make the cache evict.
func (c *audioCache) full() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes+5*2*16000 > c.max
}

// peek is get without counting a lookup or refreshing the entry.
func (c *audioCache) peek(text string) ([]int16, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[text]
	if !ok {
		return nil, false
	}
	return el.Value.(*cacheEntry).pcm, true
}

// replay hands stored audio to emit in fresh chunks the callee may keep,
// stopping when ctx ends or emit fails, as a synthesis would.
func replay(ctx context.Context, pcm []int16, emit func([]int16) error) error {
	for off := 0; off < len(pcm); off += replaySamples {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("flite: synthesize: %w", err)
		}
		chunk := make([]int16, min(replaySamples, len(pcm)-off))
		copy(chunk, pcm[off:])
		if err := emit(chunk); err != nil {
			return fmt.Errorf("flite: emit: %w", err)
		}
	}
	return nil
}
