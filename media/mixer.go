package media

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Mixer design (after livekit/media-sdk's mixer, written here for parley's
// needs): every party of a bridge writes its audio into a bounded per-party
// buffer; on a 20 ms clock the mixer takes one frame from each party that
// has enough buffered, sums them once, and sends each party the sum minus
// its own contribution, so nobody hears themself. A party that starves
// drops out of the mix until it has StartFrames buffered again (a small
// jitter cushion), and a party that writes faster than the clock loses its
// oldest audio instead of adding latency. Parties join and leave at any
// time without disturbing the others. A party can be muted or restricted
// to an audience (a supervisor whispering to the agent only).

// FrameWriter takes one mixed 20 ms frame; parley.Leg and FrameSink
// satisfy it. It must not keep pcm after returning and should not block.
type FrameWriter interface {
	WriteFrame(pcm []int16) error
}

// MixerOptions tunes a Mixer; zero fields take their defaults.
type MixerOptions struct {
	// BufferFrames bounds each party's input buffer (default 5 frames,
	// 100 ms); older audio is dropped beyond it.
	BufferFrames int
	// StartFrames is how much a party must have buffered before it is
	// mixed, initially and after it starved (default BufferFrames/2+1).
	StartFrames int
	// ConcealFrames is how many cycles a party that ran dry keeps its place
	// in the mix, contributing silence, before it goes back to buffering:
	// network jitter of a frame or two then costs nothing audible (0 = none).
	ConcealFrames int
	// Continuous sends every party a frame every cycle, silence when
	// nobody is audible to it, so its outbound stream never pauses (calls
	// bridged to a phone or a browser); otherwise nothing is sent then.
	Continuous bool
	Clock      Clock // time source (default SystemClock)
}

// MixerStats counts what a Mixer did since it was created.
type MixerStats struct {
	Mixes       uint64 // mix cycles run
	JumpMixes   uint64 // extra cycles run to catch up after a late tick
	Restarts    uint64 // times a party starved and went back to buffering
	Dropped     uint64 // input samples dropped because a party's buffer was full
	Frames      uint64 // frames written to parties
	WriteErrors uint64 // frame writes that failed
}

// Party is one participant of a Mixer: Write feeds its voice in, and its
// FrameWriter receives everyone else's.
type Party struct {
	m   *Mixer
	out FrameWriter

	mu        sync.Mutex // guards the input ring
	ring      []int16
	head, n   int
	buffering bool
	missed    int // cycles concealed since the buffer ran dry
	dropped   uint64

	// Owned by the mixer loop (under Mixer.mu).
	in       []int16 // this cycle's input frame
	active   bool    // contributed to this cycle
	muted    bool
	audience []*Party // nil: everyone
	outBuf   []int16
	err      error
}

// Mixer mixes N parties on a 20 ms clock, each hearing the mix minus
// itself. Run drives it; it is safe to add, remove and write to parties
// from other goroutines while it runs.
type Mixer struct {
	rate, frame   int
	bufFrames     int
	startFrames   int
	concealFrames int
	continuous    bool
	clock         Clock

	mu      sync.Mutex
	parties []*Party
	sum     []int32 // everyone audible to all
	acc     []int32 // one listener's mix
	stats   MixerStats
}

// NewMixer returns a mixer for audio at rate Hz.
func NewMixer(rate int, opt MixerOptions) *Mixer {
	if rate <= 0 {
		rate = 8000
	}
	if opt.BufferFrames <= 0 {
		opt.BufferFrames = 5
	}
	if opt.StartFrames <= 0 || opt.StartFrames > opt.BufferFrames {
		opt.StartFrames = opt.BufferFrames/2 + 1
	}
	if opt.Clock == nil {
		opt.Clock = SystemClock
	}
	frame := max(FrameSamples(rate), 1)
	return &Mixer{
		rate:          rate,
		frame:         frame,
		bufFrames:     opt.BufferFrames,
		startFrames:   opt.StartFrames,
		concealFrames: max(opt.ConcealFrames, 0),
		continuous:    opt.Continuous,
		clock:         opt.Clock,
		sum:           make([]int32, frame),
		acc:           make([]int32, frame),
	}
}

// Rate is the sample rate of every party's audio.
func (m *Mixer) Rate() int { return m.rate }

// AddParty joins a participant whose share of the mix goes to out.
func (m *Mixer) AddParty(out FrameWriter) *Party {
	p := &Party{
		m:         m,
		out:       out,
		ring:      make([]int16, m.bufFrames*m.frame),
		buffering: true,
		in:        make([]int16, m.frame),
		outBuf:    make([]int16, m.frame),
	}
	m.mu.Lock()
	m.parties = append(m.parties, p)
	m.mu.Unlock()
	return p
}

// Parties is the number of participants.
func (m *Mixer) Parties() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.parties)
}

// Stats returns the counters so far.
func (m *Mixer) Stats() MixerStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stats
	for _, p := range m.parties {
		p.mu.Lock()
		st.Dropped += p.dropped
		p.mu.Unlock()
	}
	return st
}

// Remove takes the party out of the mix; the others carry on undisturbed.
// Removing twice is harmless.
func (p *Party) Remove() {
	m := p.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if i := slices.Index(m.parties, p); i >= 0 {
		p.mu.Lock()
		m.stats.Dropped += p.dropped
		p.dropped = 0
		p.mu.Unlock()
		m.parties = slices.Delete(m.parties, i, i+1)
	}
	for _, q := range m.parties {
		if i := slices.Index(q.audience, p); i >= 0 {
			q.audience = slices.Delete(q.audience, i, i+1)
		}
	}
}

// SetMuted stops (or resumes) the party's voice reaching the others; it
// still hears them.
func (p *Party) SetMuted(muted bool) {
	p.m.mu.Lock()
	p.muted = muted
	p.m.mu.Unlock()
}

// SetAudience restricts who hears the party (a whisper or coach channel);
// no arguments means everyone again. If every listener leaves, the party
// is heard by nobody rather than falling back to everyone.
func (p *Party) SetAudience(listeners ...*Party) {
	p.m.mu.Lock()
	if len(listeners) == 0 {
		p.audience = nil
	} else {
		p.audience = append(p.audience[:0], listeners...)
	}
	p.m.mu.Unlock()
}

// Err is the last error the party's FrameWriter returned, if any.
func (p *Party) Err() error {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	return p.err
}

// Write feeds the party's voice (at the mixer's rate, any length) into its
// buffer. When the buffer is full the oldest audio is dropped, keeping the
// bridge's delay bounded; Write never blocks on the mixer.
func (p *Party) Write(pcm []int16) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	size := len(p.ring)
	if len(pcm) > size {
		p.dropped += uint64(len(pcm) - size)
		pcm = pcm[len(pcm)-size:]
	}
	if over := p.n + len(pcm) - size; over > 0 {
		p.head = (p.head + over) % size
		p.n -= over
		p.dropped += uint64(over)
	}
	tail := (p.head + p.n) % size
	c := copy(p.ring[tail:], pcm)
	copy(p.ring, pcm[c:])
	p.n += len(pcm)
	return nil
}

// Buffered is the number of samples waiting in the party's input buffer.
func (p *Party) Buffered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// take moves one frame of input into p.in; it reports whether the party
// contributes to this cycle. Called with Mixer.mu held.
func (p *Party) take(startFrames, concealFrames int) (ok, restarted bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	frame := len(p.in)
	if p.buffering {
		if p.n < startFrames*frame {
			return false, false
		}
		p.buffering = false
	}
	if p.n == 0 {
		if p.missed < concealFrames {
			p.missed++
			clear(p.in)
			return true, false
		}
		p.missed = 0
		p.buffering = true
		return false, true
	}
	p.missed = 0
	k := min(p.n, frame)
	size := len(p.ring)
	c := copy(p.in[:k], p.ring[p.head:min(p.head+k, size)])
	copy(p.in[c:k], p.ring[:k-c])
	clear(p.in[k:])
	p.head = (p.head + k) % size
	p.n -= k
	return true, false
}

// Run mixes every 20 ms until ctx ends (then it returns nil). If a tick
// comes late it runs the missed cycles at once, at most BufferFrames.
func (m *Mixer) Run(ctx context.Context) error {
	next := m.clock.Now().Add(FrameDuration)
	timer := m.clock.NewTimer(FrameDuration)
	defer timer.Stop()
	for first := true; ; first = false {
		if !first {
			timer.Reset(next.Sub(m.clock.Now()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C():
		}
		now := m.clock.Now()
		cycles := 1 + max(0, int(now.Sub(next)/FrameDuration))
		if cycles > m.bufFrames {
			cycles = m.bufFrames
			next = now // too far behind: start a new timeline
		} else {
			next = next.Add(time.Duration(cycles-1) * FrameDuration)
		}
		next = next.Add(FrameDuration)
		m.mu.Lock()
		m.stats.JumpMixes += uint64(cycles - 1)
		m.mu.Unlock()
		for range cycles {
			m.MixOnce()
		}
	}
}

// MixOnce runs one 20 ms mix cycle: Run calls it on its clock; tests and
// callers with their own clock may call it directly. It does not allocate.
func (m *Mixer) MixOnce() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.Mixes++
	clear(m.sum)
	for _, p := range m.parties {
		ok, restarted := p.take(m.startFrames, m.concealFrames)
		if restarted {
			m.stats.Restarts++
		}
		p.active = ok && !p.muted
		if p.active && p.audience == nil {
			for i, v := range p.in {
				m.sum[i] += int32(v)
			}
		}
	}
	for _, listener := range m.parties {
		heard := false
		own := listener.active && listener.audience == nil
		for _, q := range m.parties {
			if q != listener && q.active && (q.audience == nil || slices.Contains(q.audience, listener)) {
				heard = true
				break
			}
		}
		out := listener.outBuf
		if !heard {
			if !m.continuous {
				continue // nothing but silence for this party: send nothing
			}
			clear(out)
			if err := listener.out.WriteFrame(out); err != nil {
				m.stats.WriteErrors++
				listener.err = fmt.Errorf("media: mixer write frame: %w", err)
				continue
			}
			m.stats.Frames++
			continue
		}
		acc := m.acc
		copy(acc, m.sum)
		if own {
			for i, v := range listener.in {
				acc[i] -= int32(v)
			}
		}
		for _, q := range m.parties {
			if q != listener && q.active && q.audience != nil && slices.Contains(q.audience, listener) {
				for i, v := range q.in {
					acc[i] += int32(v)
				}
			}
		}
		for i, v := range acc {
			out[i] = clampInt32(v)
		}
		if err := listener.out.WriteFrame(out); err != nil {
			m.stats.WriteErrors++
			listener.err = fmt.Errorf("media: mixer write frame: %w", err)
			continue
		}
		m.stats.Frames++
	}
}

func clampInt32(v int32) int16 {
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return int16(v)
}
