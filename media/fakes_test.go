package media

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a manual clock: time moves only in Advance. Every time a
// paced loop arms its timer the deadline is sent on armed, which tells a
// test the loop has finished its step and is waiting.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	armed  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), armed: make(chan time.Time, 1024)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

// Advance moves time forward and fires every due timer.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if t.active && !t.when.After(c.now) {
			t.active = false
			select {
			case t.ch <- c.now:
			default:
			}
		}
	}
}

// waitArmed waits until the loop arms its timer for a deadline still in
// the future and returns it; re-arms for deadlines already reached (left
// over from earlier wake-ups) are skipped.
func (c *fakeClock) waitArmed(t *testing.T) time.Time {
	t.Helper()
	return c.waitArmedAfter(t, c.Now())
}

// nextArm returns the next arm notification.
func (c *fakeClock) nextArm(t *testing.T) time.Time {
	t.Helper()
	select {
	case d := <-c.armed:
		return d
	case <-time.After(10 * time.Second): // deadlock guard only, not a timing assertion
		t.Fatal("paced loop never armed its timer")
		return time.Time{}
	}
}

// waitArmedAfter waits for the loop to arm its timer for a deadline after
// after, skipping re-arms of earlier deadlines: it keeps a test in lock
// step with the loop whatever wake-ups happened in between.
func (c *fakeClock) waitArmedAfter(t *testing.T, after time.Time) time.Time {
	t.Helper()
	for {
		if d := c.nextArm(t); d.After(after) {
			return d
		}
	}
}

type fakeTimer struct {
	c      *fakeClock
	ch     chan time.Time
	when   time.Time
	active bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	select { // like Go 1.23 timers: no stale tick after Reset
	case <-t.ch:
	default:
	}
	t.when = t.c.now.Add(d)
	t.active = true
	fire := !t.when.After(t.c.now)
	if fire {
		t.active = false
		t.ch <- t.c.now
	}
	when := t.when
	t.c.mu.Unlock()
	if d < time.Hour {
		t.c.armed <- when
	}
}

func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	t.active = false
	select {
	case <-t.ch:
	default:
	}
	t.c.mu.Unlock()
}
