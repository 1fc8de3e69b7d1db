package auth

import (
	"container/list"
	"sync"
	"time"
)

// limiter counts failed logins per key (a name or an IP address) in a
// fixed window that starts at the key's first failure. It tracks at most
// max keys: when full, the least recently used key is forgotten, so a
// flood of made-up names costs bounded memory. (Such a flood can push a
// real name out early; the per-IP limit still holds the flooder back.)
type limiter struct {
	limit  int
	window time.Duration
	max    int

	mu   sync.Mutex
	keys map[string]*list.Element // of *limitEntry
	lru  list.List                // front = most recently used
}

type limitEntry struct {
	key   string
	count int
	reset time.Time // when the window ends and count goes back to zero
}

func newLimiter(limit int, window time.Duration, max int) *limiter {
	return &limiter{limit: limit, window: window, max: max, keys: make(map[string]*list.Element)}
}

// attempt reserves one attempt for key at now. It refuses, with how long
// to wait, when key already used its limit in the current window. The
// reservation counts as a failure unless succeed or refund gives it back,
// so that parallel guesses cannot all slip in before the first one fails.
func (l *limiter) attempt(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(key, now)
	if e.count >= l.limit {
		return false, e.reset.Sub(now)
	}
	e.count++
	return true, 0
}

// refund gives back one reserved attempt of key.
func (l *limiter) refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.keys[key]; ok {
		if e := el.Value.(*limitEntry); e.count > 0 {
			e.count--
		}
	}
}

// forget clears key: a successful login wipes the name's failures.
func (l *limiter) forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.keys[key]; ok {
		l.lru.Remove(el)
		delete(l.keys, key)
	}
}

// size is how many keys are tracked.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// entry returns key's live entry, creating or renewing it; l.mu held.
func (l *limiter) entry(key string, now time.Time) *limitEntry {
	if el, ok := l.keys[key]; ok {
		l.lru.MoveToFront(el)
		e := el.Value.(*limitEntry)
		if !now.Before(e.reset) {
			e.count, e.reset = 0, now.Add(l.window)
		}
		return e
	}
	// Make room by forgetting the least recently used keys.
	for len(l.keys) >= l.max {
		back := l.lru.Back()
		l.lru.Remove(back)
		delete(l.keys, back.Value.(*limitEntry).key)
	}
	e := &limitEntry{key: key, reset: now.Add(l.window)}
	l.keys[key] = l.lru.PushFront(e)
	return e
}
