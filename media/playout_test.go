package media

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeSink records every call in order and signals each one on events.
type fakeSink struct {
	mu       sync.Mutex
	log      []string
	frames   [][]int16
	events   chan string
	writeErr error
	markErr  error
	clearErr error
}

func newFakeSink() *fakeSink { return &fakeSink{events: make(chan string, 4096)} }

func (s *fakeSink) WriteFrame(pcm []int16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writeErr != nil {
		return s.writeErr
	}
	s.frames = append(s.frames, append([]int16(nil), pcm...))
	s.log = append(s.log, "F")
	s.events <- "F"
	return nil
}

func (s *fakeSink) Mark(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.markErr != nil {
		return s.markErr
	}
	s.log = append(s.log, "mark:"+name)
	s.events <- "mark:" + name
	return nil
}

func (s *fakeSink) Clear() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, "clear")
	s.events <- "clear"
	return s.clearErr
}

func (s *fakeSink) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// expect waits for the next n sink calls and checks them.
func (s *fakeSink) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-s.events:
			if got != w {
				t.Fatalf("sink call %q, want %q (log %v)", got, w, s.snapshot())
			}
		case <-time.After(10 * time.Second): // deadlock guard only
			t.Fatalf("sink call %q never came (log %v)", w, s.snapshot())
		}
	}
}

// expectNone checks that no sink call is pending.
func (s *fakeSink) expectNone(t *testing.T) {
	t.Helper()
	select {
	case got := <-s.events:
		t.Fatalf("unexpected sink call %q (log %v)", got, s.snapshot())
	default:
	}
}

func ramp(from, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(from + i)
	}
	return out
}

// startPlayout runs p in the background and returns a stop function that
// cancels it and returns Run's error.
func startPlayout(p *Playout) func() error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var (
		once sync.Once
		err  error
	)
	return func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
}

func TestPlayoutPacing(t *testing.T) {
	clk := newFakeClock()
	sink := newFakeSink()
	p := NewPlayout(sink, 8000, PlayoutOptions{Clock: clk})
	idle := make(chan struct{}, 10)
	p.OnIdle(func() { idle <- struct{}{} })
	stop := startPlayout(p)
	defer stop()

	if err := p.Write(ramp(0, 5*160)); err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	// The burst starts with the lead: two frames at once, then one per tick.
	sink.expect(t, "F", "F")
	if d := clk.waitArmed(t); !d.Equal(start.Add(20 * time.Millisecond)) {
		t.Fatalf("first tick at %v, want start+20ms", d.Sub(start))
	}
	sink.expectNone(t)
	if !p.Busy() || p.Queued() != 3*160 || p.Position() != 2*160 {
		t.Fatalf("after lead: busy %v queued %d position %d", p.Busy(), p.Queued(), p.Position())
	}
	for i := 3; i <= 4; i++ {
		clk.Advance(20 * time.Millisecond)
		sink.expect(t, "F")
		if d := clk.waitArmed(t); !d.Equal(start.Add(time.Duration(i-1) * 20 * time.Millisecond)) {
			t.Fatalf("tick %d armed for %v", i, d.Sub(start))
		}
		sink.expectNone(t)
	}
	clk.Advance(20 * time.Millisecond)
	sink.expect(t, "F")
	<-idle
	if p.Queued() != 0 || p.Position() != 5*160 {
		t.Fatalf("drained: queued %d position %d", p.Queued(), p.Position())
	}
	// The far end still plays the two lead frames for 40 ms.
	if !p.Busy() {
		t.Fatal("not busy right after the last frame")
	}
	clk.Advance(40 * time.Millisecond)
	if p.Busy() {
		t.Fatal("busy after the far end played everything")
	}
	sink.mu.Lock()
	var got []int16
	for _, f := range sink.frames {
		if len(f) != 160 {
			t.Fatalf("frame of %d samples", len(f))
		}
		got = append(got, f...)
	}
	sink.mu.Unlock()
	if !equalInt16(got, ramp(0, 5*160)) {
		t.Fatal("frames do not carry the written audio in order")
	}
	if st := p.Stats(); st != (PlayoutStats{Frames: 5}) {
		t.Fatalf("stats %+v", st)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if err := p.Write(ramp(0, 10)); !errors.Is(err, ErrPlayoutClosed) {
		t.Fatalf("Write after Run = %v", err)
	}
}

func TestPlayoutMarksInOrder(t *testing.T) {
	clk := newFakeClock()
	sink := newFakeSink()
	p := NewPlayout(sink, 8000, PlayoutOptions{Clock: clk})
	// Queue everything before Run starts so the sequence is fixed.
	p.Write(ramp(0, 400)) // 2.5 frames
	p.Mark("a")
	p.Write(ramp(400, 160))
	p.Mark("b")
	p.Mark("c")
	stop := startPlayout(p)
	defer stop()

	sink.expect(t, "F", "F")
	clk.waitArmed(t)
	clk.Advance(20 * time.Millisecond)
	// Frame 3 holds the last 80 samples before "a" and the first 80
	// after it: the mark follows it.
	sink.expect(t, "F", "mark:a")
	clk.waitArmed(t)
	sink.expectNone(t)
	clk.Advance(20 * time.Millisecond)
	sink.expect(t, "F", "mark:b", "mark:c")
	if st := p.Stats(); st.Marks != 3 || st.Frames != 4 {
		t.Fatalf("stats %+v", st)
	}
	sink.mu.Lock()
	last := sink.frames[3]
	sink.mu.Unlock()
	if last[0] != 480 || last[79] != 559 || last[80] != 0 || last[159] != 0 {
		t.Fatalf("partial last frame not padded with silence: %v...", last[:4])
	}
	if p.Position() != 560 {
		t.Fatalf("position %d, want 560 (padding is not counted)", p.Position())
	}
	// A mark with nothing queued goes out at once, without a tick.
	p.Mark("now")
	sink.expect(t, "mark:now")
}

func TestPlayoutMarkBetweenFrames(t *testing.T) {
	clk := newFakeClock()
	sink := newFakeSink()
	p := NewPlayout(sink, 8000, PlayoutOptions{Clock: clk, Lead: 1})
	p.Write(ramp(0, 160))
	p.Mark("one")
	p.Write(ramp(160, 160))
	p.Mark("two")
	stop := startPlayout(p)
	defer stop()
	sink.expect(t, "F", "mark:one")
	clk.waitArmed(t)
	sink.expectNone(t)
	clk.Advance(20 * time.Millisecond)
	sink.expect(t, "F", "mark:two")
}

func TestPlayoutPartialFrames(t *testing.T) {
	clk := newFakeClock()
	sink := newFakeSink()
	p := NewPlayout(sink, 8000, PlayoutOptions{Clock: clk})
	stop := startPlayout(p)
	defer stop()
	// Streamed audio in odd chunks: the partial frame is held, and the
	// next chunk completes it without a gap.
	p.Write(ramp(0, 250))
	sink.expect(t, "F")
	clk.waitArmed(t)
	sink.expectNone(t)
	p.Write(ramp(250, 70))
	sink.expect(t, "F")
	sink.mu.Lock()
	second := sink.frames[1]
	sink.mu.Unlock()
	if !equalInt16(second, ramp(160, 160)) {
		t.Fatalf("second frame %v..., want the stream continued without padding", second[:4])
	}
	// A mark right after a partial frame releases it on the next tick
	// (the timer is still set for it) instead of holding it an extra one.
	p.Write(ramp(320, 30))
	p.Mark("eos")
	clk.Advance(20 * time.Millisecond)
	sink.expect(t, "F", "mark:eos")
	if p.Position() != 350 {
		t.Fatalf("position %d", p.Position())
	}
}

func TestPlayoutClear(t *testing.T) {
	clk := newFakeClock()
	sink := newFakeSink()
	p := NewPlayout(sink, 8000, PlayoutOptions{Clock: clk})
	stop := startPlayout(p)
	defer stop()
	p.Write(ramp(0, 10*160))
	p.Mark("end")
	sink.expect(t, "F", "F")
	clk.waitArmed(t)

	p.Clear()
	sink.expect(t, "clear")
	if p.Queued() != 0 || p.Busy() || p.Position() != 320 {
		t.Fatalf("after clear: queued %d busy %v position %d", p.Queued(), p.Busy(), p.Position())
	}
	// The pending tick finds nothing: no frame, no cancelled mark.
	clk.Advance(20 * time.Millisecond)
	sink.expectNone(t)

	// New audio starts a fresh burst with a full lead; positions continue.
	p.Write(ramp(1000, 3*160))
	p.Mark("new")
	sink.expect(t, "F", "F")
	clk.waitArmed(t)
	clk.Advance(20 * time.Millisecond)
	sink.expect(t, "F", "mark:new")
	if p.Position() != 320+480 {
		t.Fatalf("position %d after clear and replay", p.Position())
	}
	sink.mu.Lock()
	first := sink.frames[2][0]
	sink.mu.Unlock()
	if first != 1000 {
		t.Fatalf("first frame after clear starts with %d, want new audio", first)
	}
	if st := p.Stats(); st.Marks != 1 || st.Frames != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPlayoutQueueBound(t *testing.T) {
	p := NewPlayout(newFakeSink(), 8000, PlayoutOptions{MaxQueue: 100 * time.Millisecond})
	if err := p.Write(ramp(0, 700)); err != nil {
		t.Fatal(err)
	}
	err := p.Write(ramp(0, 300))
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("overflow error %v", err)
	}
	if p.Queued() != 800 || p.Stats().Dropped != 200 {
		t.Fatalf("queued %d dropped %d", p.Queued(), p.Stats().Dropped)
	}
	if err := p.Write(ramp(0, 1)); !errors.Is(err, ErrQueueFull) || p.Stats().Dropped != 201 {
		t.Fatalf("full queue accepted audio: %v", err)
	}
	if err := p.Write(nil); err != nil {
		t.Fatalf("empty write: %v", err)
	}
}

func TestPlayoutLateTicks(t *testing.T) {
	clk := newFakeClock()
	sink := newFakeSink()
	p := NewPlayout(sink, 8000, PlayoutOptions{Clock: clk})
	stop := startPlayout(p)
	defer stop()
	p.Write(ramp(0, 20*160))
	sink.expect(t, "F", "F")
	clk.waitArmed(t)
	// The loop wakes 50 ms after its deadline: one late tick, and it
	// refills the far end to the two-frame lead at once.
	clk.Advance(70 * time.Millisecond)
	sink.expect(t, "F", "F")
	clk.waitArmed(t)
	sink.expectNone(t)
	if st := p.Stats(); st.Late != 1 || st.Frames != 4 {
		t.Fatalf("stats %+v", st)
	}
	// Back on schedule: one frame per tick, no more late ticks.
	clk.Advance(20 * time.Millisecond)
	sink.expect(t, "F")
	clk.waitArmed(t)
	if st := p.Stats(); st.Late != 1 || st.Frames != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPlayoutRingWrapAndGrowth(t *testing.T) {
	clk := newFakeClock()
	sink := newFakeSink()
	p := NewPlayout(sink, 8000, PlayoutOptions{Clock: clk, Lead: 1})
	stop := startPlayout(p)
	defer stop()
	// Uneven writes interleaved with ticks wrap the ring, and one big
	// write makes it grow; the audio must come out intact.
	var want []int16
	next := 0
	write := func(n int) {
		a := ramp(next%30000, n)
		next += n
		want = append(want, a...)
		if err := p.Write(a); err != nil {
			t.Fatal(err)
		}
	}
	write(100)
	// A lone partial frame waits one tick for more audio, then goes out padded.
	clk.waitArmedAfter(t, clk.Now())
	sink.expectNone(t)
	clk.Advance(20 * time.Millisecond)
	sink.expect(t, "F")
	want = append(want, make([]int16, 60)...)
	write(7000)
	// The far end still plays the first frame, so the burst waits a tick.
	clk.waitArmedAfter(t, clk.Now())
	for i := 0; i < 1000; i++ {
		if i%7 == 0 {
			write(333)
		}
		if i == 20 {
			write(12000) // beyond the initial one-second ring
		}
		if q := p.Queued(); q > 0 && q < 160 {
			// The producer ends the stream with a mark, which releases
			// the partial last frame.
			p.Mark("end")
			clk.Advance(20 * time.Millisecond)
			sink.expect(t, "F", "mark:end")
			break
		}
		clk.Advance(20 * time.Millisecond)
		sink.expect(t, "F")
		if p.Queued() == 0 {
			break
		}
		clk.waitArmedAfter(t, clk.Now())
	}
	if p.Queued() != 0 {
		t.Fatalf("%d samples left", p.Queued())
	}
	sink.mu.Lock()
	var got []int16
	for _, f := range sink.frames {
		got = append(got, f...)
	}
	sink.mu.Unlock()
	if len(got) < len(want) || !equalInt16(got[:len(want)], want) {
		t.Fatalf("ring corrupted the audio: got %d samples, want %d", len(got), len(want))
	}
}

func TestPlayoutSinkErrors(t *testing.T) {
	tests := []struct {
		name string
		set  func(*fakeSink)
		act  func(*Playout)
		want string
	}{
		{"write", func(s *fakeSink) { s.writeErr = errors.New("socket closed") }, func(p *Playout) { p.Write(ramp(0, 160)) }, "write frame"},
		{"mark", func(s *fakeSink) { s.markErr = errors.New("socket closed") }, func(p *Playout) { p.Mark("x") }, "mark"},
		{"clear", func(s *fakeSink) { s.clearErr = errors.New("socket closed") }, func(p *Playout) { p.Clear() }, "clear"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newFakeSink()
			tt.set(sink)
			p := NewPlayout(sink, 8000, PlayoutOptions{Clock: newFakeClock()})
			done := make(chan error, 1)
			go func() { done <- p.Run(context.Background()) }()
			tt.act(p)
			select {
			case err := <-done:
				if err == nil || !errorsContains(err, tt.want) || !errorsContains(err, "socket closed") {
					t.Fatalf("Run returned %v", err)
				}
			case <-time.After(10 * time.Second): // deadlock guard only
				t.Fatal("Run did not stop on a sink error")
			}
		})
	}
}

func errorsContains(err error, s string) bool {
	return err != nil && contains(err.Error(), s)
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

func TestPlayoutOnIdleMayClearAndWrite(t *testing.T) {
	clk := newFakeClock()
	sink := newFakeSink()
	p := NewPlayout(sink, 8000, PlayoutOptions{Clock: clk})
	var once sync.Once
	p.OnIdle(func() {
		once.Do(func() {
			p.Clear()
			p.Write(ramp(0, 160))
		})
	})
	stop := startPlayout(p)
	defer stop()
	p.Write(ramp(0, 160))
	sink.expect(t, "F", "clear", "F")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestPlayoutDefaults(t *testing.T) {
	p := NewPlayout(newFakeSink(), 0, PlayoutOptions{})
	if p.Rate() != 8000 || p.lead != DefaultPlayoutLead || p.max != 8000*60 || p.clock != SystemClock {
		t.Fatalf("defaults: rate %d lead %d max %d", p.Rate(), p.lead, p.max)
	}
	if got := fmt.Sprint(NewPlayout(newFakeSink(), 48000, PlayoutOptions{}).frame); got != "960" {
		t.Fatalf("48 kHz frame = %s samples", got)
	}
}

func TestPlayoutSystemClock(t *testing.T) {
	// One short burst on the real clock: checks wiring, not timing.
	sink := newFakeSink()
	p := NewPlayout(sink, 8000, PlayoutOptions{})
	stop := startPlayout(p)
	p.Write(ramp(0, 4*160))
	p.Mark("done")
	sink.expect(t, "F", "F", "F", "F", "mark:done")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

type nopSink struct{}

func (nopSink) WriteFrame([]int16) error { return nil }
func (nopSink) Mark(string) error        { return nil }
func (nopSink) Clear() error             { return nil }

// BenchmarkPlayoutFrame measures the per-frame step: one frame written by
// a producer and one frame paced out to the sink.
func BenchmarkPlayoutFrame(b *testing.B) {
	p := NewPlayout(nopSink{}, 8000, PlayoutOptions{Clock: newFakeClock(), Lead: 1})
	frame := ramp(0, 160)
	now := time.Now()
	p.Write(frame)
	p.pump(now)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(FrameDuration)
		p.Write(frame)
		if _, err := p.pump(now); err != nil {
			b.Fatal(err)
		}
	}
	if p.Stats().Frames < uint64(b.N) {
		b.Fatalf("%d frames for %d iterations", p.Stats().Frames, b.N)
	}
}
