package media

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// frameLog records frames a party receives.
type frameLog struct {
	mu     sync.Mutex
	frames [][]int16
	err    error
}

func (l *frameLog) WriteFrame(pcm []int16) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	l.frames = append(l.frames, append([]int16(nil), pcm...))
	return nil
}

// take returns and forgets the frames received so far.
func (l *frameLog) take() [][]int16 {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.frames
	l.frames = nil
	return f
}

func constFrames(v int16, frames int) []int16 {
	out := make([]int16, frames*160)
	for i := range out {
		out[i] = v
	}
	return out
}

// heard checks that log received exactly one frame, all samples want.
func heard(t *testing.T, who string, log *frameLog, want int16) {
	t.Helper()
	f := log.take()
	if len(f) != 1 {
		t.Fatalf("%s received %d frames, want 1", who, len(f))
	}
	for _, v := range f[0] {
		if v != want {
			t.Fatalf("%s heard %d, want %d", who, v, want)
		}
	}
}

func heardNothing(t *testing.T, who string, log *frameLog) {
	t.Helper()
	if f := log.take(); len(f) != 0 {
		t.Fatalf("%s received %d frames, want none", who, len(f))
	}
}

func TestMixerMixMinusSelf(t *testing.T) {
	m := NewMixer(8000, MixerOptions{})
	var la, lb, lc frameLog
	a, b, c := m.AddParty(&la), m.AddParty(&lb), m.AddParty(&lc)
	a.Write(constFrames(1000, 4))
	b.Write(constFrames(200, 4))
	c.Write(constFrames(30, 4))
	m.MixOnce()
	heard(t, "a", &la, 230)
	heard(t, "b", &lb, 1030)
	heard(t, "c", &lc, 1200)

	// b leaves: a and c carry on with each other only.
	b.Remove()
	b.Remove()
	if m.Parties() != 2 {
		t.Fatalf("%d parties after removal", m.Parties())
	}
	m.MixOnce()
	heard(t, "a", &la, 30)
	heardNothing(t, "b", &lb)
	heard(t, "c", &lc, 1000)
}

func TestMixerBufferingAndStarvation(t *testing.T) {
	m := NewMixer(8000, MixerOptions{BufferFrames: 5, StartFrames: 2})
	var la, lb frameLog
	a, b := m.AddParty(&la), m.AddParty(&lb)
	a.Write(constFrames(500, 1))
	b.Write(constFrames(7, 3))
	// a has less than StartFrames: it is not mixed yet, so b hears nothing.
	m.MixOnce()
	heard(t, "a", &la, 7)
	heardNothing(t, "b", &lb)
	a.Write(constFrames(500, 1))
	m.MixOnce()
	heard(t, "a", &la, 7)
	heard(t, "b", &lb, 500)
	m.MixOnce() // a plays its second frame; b its last
	heard(t, "a", &la, 7)
	heard(t, "b", &lb, 500)
	// Both are empty now: they starve and go back to buffering.
	m.MixOnce()
	heardNothing(t, "a", &la)
	heardNothing(t, "b", &lb)
	if st := m.Stats(); st.Restarts != 2 || st.Mixes != 4 {
		t.Fatalf("stats %+v", st)
	}
	// One frame is not enough to come back.
	a.Write(constFrames(500, 1))
	m.MixOnce()
	heardNothing(t, "b", &lb)
}

func TestMixerInputBound(t *testing.T) {
	m := NewMixer(8000, MixerOptions{BufferFrames: 3, StartFrames: 1})
	var la, lb frameLog
	a := m.AddParty(&la)
	m.AddParty(&lb)
	// Five frames into a three-frame buffer: the two oldest are dropped.
	for v := int16(1); v <= 5; v++ {
		a.Write(constFrames(v, 1))
	}
	if a.Buffered() != 3*160 || m.Stats().Dropped != 2*160 {
		t.Fatalf("buffered %d dropped %d", a.Buffered(), m.Stats().Dropped)
	}
	for _, want := range []int16{3, 4, 5} {
		m.MixOnce()
		heard(t, "b", &lb, want)
	}
	// One write larger than the buffer keeps its newest part.
	a.Write(append(constFrames(8, 2), constFrames(9, 3)...))
	m.MixOnce()
	heard(t, "b", &lb, 9)
	if d := m.Stats().Dropped; d != 4*160 {
		t.Fatalf("dropped %d", d)
	}
	a.Remove() // dropped counts survive removal
	if d := m.Stats().Dropped; d != 4*160 {
		t.Fatalf("dropped after removal %d", d)
	}
}

func TestMixerWhisperMuteAndClip(t *testing.T) {
	m := NewMixer(8000, MixerOptions{StartFrames: 1})
	var lc, la, ls frameLog
	caller, agent, sup := m.AddParty(&lc), m.AddParty(&la), m.AddParty(&ls)
	sup.SetAudience(agent) // coach: only the agent hears the supervisor
	write := func() {
		caller.Write(constFrames(1, 1))
		agent.Write(constFrames(20, 1))
		sup.Write(constFrames(300, 1))
	}
	write()
	m.MixOnce()
	heard(t, "caller", &lc, 20)
	heard(t, "agent", &la, 301)
	heard(t, "supervisor", &ls, 21)

	sup.SetAudience() // barge: everyone hears the supervisor
	write()
	m.MixOnce()
	heard(t, "caller", &lc, 320)
	heard(t, "agent", &la, 301)
	heard(t, "supervisor", &ls, 21)

	caller.SetMuted(true)
	write()
	m.MixOnce()
	heard(t, "agent", &la, 300)
	heard(t, "caller", &lc, 320) // a muted party still hears
	heard(t, "supervisor", &ls, 20)
	caller.SetMuted(false)

	// Loud parties clip instead of wrapping.
	caller.Write(constFrames(30000, 1))
	agent.Write(constFrames(30000, 1))
	sup.Write(constFrames(-30000, 1))
	m.MixOnce()
	heard(t, "supervisor", &ls, 32767)
	heard(t, "caller", &lc, 0)
	heard(t, "agent", &la, 0)
	agent.Remove()
	sup.SetAudience(agent) // an audience of departed parties hears nothing
	sup.Write(constFrames(5, 1))
	m.MixOnce()
	heardNothing(t, "caller", &lc)
}

func TestMixerWriteErrors(t *testing.T) {
	m := NewMixer(8000, MixerOptions{StartFrames: 1})
	var la, lb frameLog
	lb.err = errors.New("leg gone")
	a, b := m.AddParty(&la), m.AddParty(&lb)
	a.Write(constFrames(1, 1))
	b.Write(constFrames(2, 1))
	m.MixOnce()
	heard(t, "a", &la, 2)
	if b.Err() == nil || a.Err() != nil || m.Stats().WriteErrors != 1 || m.Stats().Frames != 1 {
		t.Fatalf("errors: a %v b %v stats %+v", a.Err(), b.Err(), m.Stats())
	}
}

func TestMixerRunPacing(t *testing.T) {
	clk := newFakeClock()
	m := NewMixer(8000, MixerOptions{Clock: clk, StartFrames: 1, BufferFrames: 10})
	var la, lb frameLog
	a := m.AddParty(&la)
	m.AddParty(&lb)
	a.Write(constFrames(9, 10))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	start := clk.Now()
	clk.waitArmedAfter(t, start)
	for i := 1; i <= 3; i++ {
		clk.Advance(20 * time.Millisecond)
		clk.waitArmedAfter(t, clk.Now())
	}
	if f := lb.take(); len(f) != 3 {
		t.Fatalf("%d frames after 3 ticks", len(f))
	}
	// A tick 50 ms late runs the missed cycles at once.
	clk.Advance(70 * time.Millisecond)
	clk.waitArmedAfter(t, clk.Now())
	if f := lb.take(); len(f) != 3 {
		t.Fatalf("%d frames after a late tick, want 3", len(f))
	}
	if st := m.Stats(); st.Mixes != 6 || st.JumpMixes != 2 {
		t.Fatalf("stats %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func BenchmarkMixerMixOnce3Parties(b *testing.B) {
	m := NewMixer(8000, MixerOptions{StartFrames: 1})
	var parties []*Party
	for range 3 {
		parties = append(parties, m.AddParty(nopSink{}))
	}
	parties[2].SetAudience(parties[1])
	frame := constFrames(100, 1)
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range parties {
			p.Write(frame)
		}
		m.MixOnce()
	}
}

func TestMixerConcealsShortGapsAndCanSendContinuously(t *testing.T) {
	m := NewMixer(8000, MixerOptions{BufferFrames: 5, StartFrames: 1, ConcealFrames: 2, Continuous: true})
	var la, lb frameLog
	a := m.AddParty(&la)
	m.AddParty(&lb)
	a.Write(constFrames(300, 1))
	m.MixOnce()
	heard(t, "b", &lb, 300)
	heard(t, "a", &la, 0) // continuous: silence rather than nothing
	// a runs dry for two cycles: concealed with silence, no restart.
	m.MixOnce()
	m.MixOnce()
	if f := lb.take(); len(f) != 2 {
		t.Fatalf("b received %d frames over a concealed gap, want 2", len(f))
	}
	la.take()
	if st := m.Stats(); st.Restarts != 0 {
		t.Fatalf("restarts %d during concealment", st.Restarts)
	}
	// a's next frame plays at once (no re-buffering).
	a.Write(constFrames(300, 1))
	m.MixOnce()
	heard(t, "b", &lb, 300)
	la.take()
	// A longer gap goes back to buffering.
	for range 3 {
		m.MixOnce()
	}
	if st := m.Stats(); st.Restarts != 1 {
		t.Fatalf("restarts %d after a long gap, want 1", st.Restarts)
	}
}
