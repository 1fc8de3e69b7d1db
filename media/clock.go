package media

import "time"

// Clock is the time source of the paced loops (Playout, Mixer). Production
// code uses the wall clock; tests inject a fake one so pacing is checked
// without sleeping or timing assertions.
type Clock interface {
	Now() time.Time
	// NewTimer returns a stopped-or-running timer that fires once after d.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the paced loops use, so that one timer
// can be re-armed every frame without allocating.
type Timer interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
}

// SystemClock is the wall clock.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }

// Reset re-arms the timer; since Go 1.23 no stale tick can be received after it.
func (t systemTimer) Reset(d time.Duration) { t.t.Reset(d) }

func (t systemTimer) Stop() { t.t.Stop() }
