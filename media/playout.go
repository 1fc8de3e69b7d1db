package media

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// FrameSink receives paced audio; parley.Leg satisfies it. Playout calls
// it from one goroutine at a time (Run's, or Clear's caller), never
// concurrently. WriteFrame must not keep pcm after it returns: the playout
// reuses the buffer for the next frame.
type FrameSink interface {
	WriteFrame(pcm []int16) error
	Mark(name string) error
	Clear() error
}

// PlayoutOptions tunes a Playout; zero fields take their defaults.
type PlayoutOptions struct {
	MaxQueue time.Duration // audio that may wait in the queue (default 60 s)
	Lead     int           // frames written at once when a burst starts (default 2)
	Clock    Clock         // time source (default SystemClock)
}

// PlayoutStats counts what a Playout did since it was created.
type PlayoutStats struct {
	Frames  uint64 // frames handed to the sink
	Late    uint64 // ticks that came more than a frame after their deadline
	Dropped uint64 // samples refused because the queue was full
	Marks   uint64 // marks handed to the sink
}

// Playout errors.
var (
	// ErrQueueFull is returned by Write when part of the audio did not fit
	// in MaxQueue and was dropped.
	ErrQueueFull = errors.New("media: playout queue full")
	// ErrPlayoutClosed is returned by Write after Run has returned.
	ErrPlayoutClosed = errors.New("media: playout closed")
)

// Default playout options.
const (
	DefaultPlayoutMaxQueue = 60 * time.Second
	DefaultPlayoutLead     = 2
)

type playoutMark struct {
	at   int64 // absolute enqueued-sample position the mark follows
	name string
}

// Playout is the paced 20 ms queue toward one leg. Producers (the dialog,
// a synthesizer) Write audio of any length and Mark positions in it; Run
// hands the sink one frame per 20 ms tick, after writing Lead frames at
// once when a burst starts so the far end never starves, and writes
// nothing while the queue is empty (Twilio and browsers play silence by
// themselves). Marks reach the sink right after the last frame queued
// before them, so a mark echoed by the far end means "the caller heard
// everything before it". A final partial frame is padded with silence; it
// is held back one tick first unless a mark ends the audio there, so that
// streamed audio arriving in odd-sized chunks plays without gaps. Clear
// drops everything queued at once (barge-in). Audio lives in a ring buffer that grows on demand up to MaxQueue, so
// steady-state playout does not allocate.
type Playout struct {
	sink  FrameSink
	rate  int
	frame int // samples per frame
	lead  int
	max   int // queue bound in samples
	clock Clock

	sinkMu  sync.Mutex // serialises sink calls; held by Run while writing and by Clear
	scratch []int16    // frame handed to the sink (only touched under sinkMu)

	mu        sync.Mutex
	ring      []int16
	head      int   // index of the oldest queued sample
	queued    int   // samples queued
	enqueued  int64 // samples ever enqueued (positions for marks)
	position  int64 // samples of queued audio handed to the sink
	marks     []playoutMark
	markHead  int
	played    time.Time // when the far end will have played all we sent (pacing estimate)
	partialAt time.Time // when a partial last frame was first held back
	onIdle    func()
	stats     PlayoutStats
	err       error // sink failure seen outside Run (from Clear)
	closed    bool

	wake chan struct{} // cap 1: audio or a mark arrived
}

// NewPlayout returns a playout toward sink at rate Hz. Run must be started
// for audio to flow.
func NewPlayout(sink FrameSink, rate int, opt PlayoutOptions) *Playout {
	if rate <= 0 {
		rate = 8000
	}
	if opt.MaxQueue <= 0 {
		opt.MaxQueue = DefaultPlayoutMaxQueue
	}
	if opt.Lead <= 0 {
		opt.Lead = DefaultPlayoutLead
	}
	if opt.Clock == nil {
		opt.Clock = SystemClock
	}
	frame := max(FrameSamples(rate), 1)
	maxSamples := max(durSamples(opt.MaxQueue, rate), frame)
	return &Playout{
		sink:    sink,
		rate:    rate,
		frame:   frame,
		lead:    opt.Lead,
		max:     maxSamples,
		clock:   opt.Clock,
		scratch: make([]int16, frame),
		ring:    make([]int16, min(maxSamples, 50*frame)), // 1 s to start with
		wake:    make(chan struct{}, 1),
	}
}

// Rate is the sample rate of the audio the playout takes and emits.
func (p *Playout) Rate() int { return p.rate }

// OnIdle registers f to be called from Run each time the queue drains
// after playing audio. f must not block for long; it may call Write.
func (p *Playout) OnIdle(f func()) {
	p.mu.Lock()
	p.onIdle = f
	p.mu.Unlock()
}

// Write copies pcm into the queue. If the queue would exceed MaxQueue the
// excess is dropped, counted in Stats().Dropped and ErrQueueFull returned.
func (p *Playout) Write(pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrPlayoutClosed
	}
	n := min(len(pcm), p.max-p.queued)
	if n > 0 {
		p.grow(p.queued + n)
		tail := (p.head + p.queued) % len(p.ring)
		c := copy(p.ring[tail:], pcm[:n])
		copy(p.ring, pcm[c:n])
		p.queued += n
		p.enqueued += int64(n)
	}
	dropped := len(pcm) - n
	p.stats.Dropped += uint64(dropped)
	p.mu.Unlock()
	p.signal()
	if dropped > 0 {
		return fmt.Errorf("%w: dropped %d of %d samples", ErrQueueFull, dropped, len(pcm))
	}
	return nil
}

// grow makes the ring hold at least need samples, doubling up to max.
// Called with mu held.
func (p *Playout) grow(need int) {
	if need <= len(p.ring) {
		return
	}
	size := len(p.ring)
	for size < need {
		size *= 2
	}
	size = min(size, p.max)
	ring := make([]int16, size)
	c := copy(ring, p.ring[p.head:min(p.head+p.queued, len(p.ring))])
	if c < p.queued {
		copy(ring[c:], p.ring[:p.queued-c])
	}
	p.ring = ring
	p.head = 0
}

// Mark queues a named mark after the audio written so far.
func (p *Playout) Mark(name string) {
	p.mu.Lock()
	if p.markHead == len(p.marks) {
		p.marks, p.markHead = p.marks[:0], 0
	}
	p.marks = append(p.marks, playoutMark{at: p.enqueued, name: name})
	p.mu.Unlock()
	p.signal()
}

// Clear drops all queued audio and marks and tells the sink to drop what
// it has buffered. It waits for a frame write in progress, so no frame
// queued before Clear reaches the sink after it.
func (p *Playout) Clear() {
	p.sinkMu.Lock()
	defer p.sinkMu.Unlock()
	p.mu.Lock()
	p.head, p.queued = 0, 0
	p.marks, p.markHead = p.marks[:0], 0
	// Positions of dropped audio are never played; new audio and marks
	// continue from the played position.
	p.enqueued = p.position
	p.played = time.Time{}
	p.partialAt = time.Time{}
	p.mu.Unlock()
	if err := p.sink.Clear(); err != nil {
		p.mu.Lock()
		if p.err == nil {
			p.err = fmt.Errorf("media: playout clear: %w", err)
		}
		p.mu.Unlock()
		p.signal()
	}
}

// Position is the number of queued samples handed to the sink so far. It
// only grows; silence padding of a final partial frame is not counted.
func (p *Playout) Position() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.position
}

// Queued is the number of samples waiting to be played.
func (p *Playout) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queued
}

// Busy reports whether audio is waiting or the far end is still playing
// audio written to it (by the pacing estimate, at most Lead frames).
func (p *Playout) Busy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queued > 0 || p.clock.Now().Before(p.played)
}

// Stats returns the counters so far.
func (p *Playout) Stats() PlayoutStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func (p *Playout) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run paces the queue to the sink until ctx ends (it then returns nil) or
// the sink fails (it returns the error). Run must be called once.
func (p *Playout) Run(ctx context.Context) error {
	timer := p.clock.NewTimer(time.Hour)
	timer.Stop()
	defer func() {
		timer.Stop()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
	}()
	var (
		next  time.Time // deadline of the next tick; zero while idle
		armed bool      // timer is set for next
	)
	for {
		ticked := false
		if next.IsZero() {
			select {
			case <-ctx.Done():
				return nil
			case <-p.wake:
			}
		} else {
			if !armed {
				timer.Reset(next.Sub(p.clock.Now()))
				armed = true
			}
			select {
			case <-ctx.Done():
				return nil
			case <-p.wake:
				// New audio, a mark or a sink error: handle it now, and
				// keep the tick as it is. Audio still goes out only when
				// due (the far end's buffer is below the lead), so this
				// does not disturb the pacing.
			case <-timer.C():
				ticked, armed = true, false
			}
		}
		now := p.clock.Now()
		if ticked && now.Sub(next) > FrameDuration {
			p.mu.Lock()
			p.stats.Late++
			p.mu.Unlock()
			next = now
		}
		if err := p.step(now); err != nil {
			return err
		}
		switch {
		case p.Queued() == 0:
			if armed {
				timer.Stop()
				armed = false
			}
			next = time.Time{}
		case next.IsZero():
			next = now.Add(FrameDuration) // a burst started
		case ticked:
			next = next.Add(FrameDuration)
		}
	}
}

// step runs one pump and then, outside the sink lock, the idle callback,
// so the callback may call Clear.
func (p *Playout) step(now time.Time) error {
	idle, err := p.pump(now)
	if idle != nil {
		idle()
	}
	return err
}

// pump writes the frames due at now — enough to keep the far end Lead
// frames ahead by the pacing estimate, which is one frame per 20 ms once a
// burst runs — and the marks they complete, and reports a pending sink
// error. It is the per-frame step of Run and returns the idle callback to
// run when it drained the queue.
func (p *Playout) pump(now time.Time) (idle func(), err error) {
	p.sinkMu.Lock()
	defer p.sinkMu.Unlock()
	wrote := false
	for {
		p.mu.Lock()
		if err := p.err; err != nil {
			p.mu.Unlock()
			return nil, err
		}
		if err := p.deliverMarks(); err != nil {
			return nil, err // deliverMarks released mu
		}
		leadEnd := now.Add(time.Duration(p.lead-1) * FrameDuration)
		if p.queued == 0 || p.played.After(leadEnd) {
			if wrote && p.queued == 0 {
				idle = p.onIdle
			}
			p.mu.Unlock()
			return idle, nil
		}
		if p.queued < p.frame && !p.tailMarked() {
			// A partial frame may be the middle of a stream whose next
			// chunk is on its way: hold it for one tick (the far end has
			// the lead to play meanwhile) rather than pad a gap into it.
			if p.partialAt.IsZero() {
				p.partialAt = now
			}
			if now.Sub(p.partialAt) < FrameDuration {
				p.mu.Unlock()
				return nil, nil
			}
		}
		p.partialAt = time.Time{}
		n := min(p.queued, p.frame)
		c := copy(p.scratch, p.ring[p.head:min(p.head+n, len(p.ring))])
		copy(p.scratch[c:n], p.ring[:n-c])
		clear(p.scratch[n:]) // pad a final partial frame with silence
		p.head = (p.head + n) % len(p.ring)
		p.queued -= n
		if p.queued == 0 {
			p.head = 0
		}
		if p.played.Before(now) {
			p.played = now
		}
		p.played = p.played.Add(FrameDuration)
		// Count before the call so a reader who saw the frame arrive also
		// sees it counted.
		p.position += int64(n)
		p.stats.Frames++
		p.mu.Unlock()

		if err := p.sink.WriteFrame(p.scratch); err != nil {
			return nil, fmt.Errorf("media: playout write frame: %w", err)
		}
		wrote = true
	}
}

// tailMarked reports whether a mark follows the last queued sample: the
// producer has said the audio is complete there. Called with mu held.
func (p *Playout) tailMarked() bool {
	return p.markHead < len(p.marks) && p.marks[len(p.marks)-1].at == p.enqueued
}

// deliverMarks hands the sink every mark whose position has been played.
// Called with mu held; returns with mu held on success, released on error.
func (p *Playout) deliverMarks() error {
	for p.markHead < len(p.marks) && p.marks[p.markHead].at <= p.position {
		m := p.marks[p.markHead]
		p.marks[p.markHead] = playoutMark{}
		p.markHead++
		p.stats.Marks++
		p.mu.Unlock()
		if err := p.sink.Mark(m.name); err != nil {
			return fmt.Errorf("media: playout mark %q: %w", m.name, err)
		}
		p.mu.Lock()
	}
	return nil
}
