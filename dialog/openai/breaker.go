package openai

import (
	"sync"
	"time"
)

// Breaker defaults.
const (
	DefaultBreakerFailures = 3
	DefaultBreakerCoolDown = 30 * time.Second
)

// Breaker is a circuit breaker for one provider: after Failures
// consecutive failed requests it opens for CoolDown, during which Allow
// refuses at once (no caller waits on a dead provider), then lets one
// trial request through; its success closes the breaker, its failure opens
// it for another cool-down. It is exported so the wiring can build a
// fallback chain (see Fallback) and export its state as a metric. Safe for
// concurrent use.
type Breaker struct {
	failures int
	coolDown time.Duration
	now      func() time.Time

	mu        sync.Mutex
	count     int       // consecutive failures
	openUntil time.Time // zero when closed
	trial     bool      // a half-open trial request is in flight
}

// NewBreaker returns a closed breaker that opens after failures
// consecutive failures for coolDown. Zero values take
// DefaultBreakerFailures and DefaultBreakerCoolDown.
func NewBreaker(failures int, coolDown time.Duration) *Breaker {
	if failures <= 0 {
		failures = DefaultBreakerFailures
	}
	if coolDown <= 0 {
		coolDown = DefaultBreakerCoolDown
	}
	return &Breaker{failures: failures, coolDown: coolDown, now: time.Now}
}

// Allow reports whether a request may be sent now. While open it returns
// false; once the cool-down has passed it returns true for exactly one
// trial request until that request reports Success or Failure.
func (b *Breaker) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() {
		return true
	}
	if b.now().Before(b.openUntil) || b.trial {
		return false
	}
	b.trial = true
	return true
}

// Success records a request that worked: the breaker closes.
func (b *Breaker) Success() {
	b.mu.Lock()
	b.count = 0
	b.openUntil = time.Time{}
	b.trial = false
	b.mu.Unlock()
}

// Failure records a failed request; the Failures-th in a row (or a failed
// trial) opens the breaker for the cool-down.
func (b *Breaker) Failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count++
	if b.trial || b.count >= b.failures {
		b.openUntil = b.now().Add(b.coolDown)
		b.trial = false
	}
}

// Release ends a request that says nothing about the provider's health
// (the caller hung up or barged in), so a half-open trial slot is freed.
func (b *Breaker) Release() {
	b.mu.Lock()
	b.trial = false
	b.mu.Unlock()
}

// Healthy reports whether the breaker is closed or its cool-down has
// passed (a trial request would be allowed).
func (b *Breaker) Healthy() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.openUntil.IsZero() || !b.now().Before(b.openUntil)
}
