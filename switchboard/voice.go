package switchboard

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/media"
)

// voice plays what parley says to a caller outside the AI conversation
// (transfer and queue announcements, hold music, the voicemail prompt):
// a paced playout on the call's tap, so supervisors listening in hear it too.
type voice struct {
	play   *media.Playout
	synth  dialog.Synthesizer
	rate   int
	idle   chan struct{} // cap 1: the playout ran empty
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func newVoice(c *call, synth dialog.Synthesizer) *voice {
	rate := c.leg.SampleRate()
	v := &voice{
		play:  media.NewPlayout(c.tap, rate, media.PlayoutOptions{MaxQueue: 2 * time.Minute}),
		synth: synth,
		rate:  rate,
		idle:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	v.play.OnIdle(func() {
		select {
		case v.idle <- struct{}{}:
		default:
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	go func() {
		defer close(v.done)
		_ = v.play.Run(ctx)
	}()
	return v
}

// say synthesizes text and queues it; it returns once the audio is queued.
func (v *voice) say(ctx context.Context, text string) error {
	res := media.NewResampler(v.synth.SampleRate(), v.rate)
	var buf []int16
	err := v.synth.Synthesize(ctx, text, func(pcm []int16) error {
		buf = res.Process(buf[:0], pcm)
		return v.play.Write(buf)
	})
	buf = res.Flush(buf[:0])
	if werr := v.play.Write(buf); err == nil {
		err = werr
	}
	return err
}

// queue plays pcm (at the leg's rate) after what is queued.
func (v *voice) queue(pcm []int16) { _ = v.play.Write(pcm) }

// clear drops what has not been played yet.
func (v *voice) clear() { v.play.Clear() }

// busy reports whether audio is queued or still playing.
func (v *voice) busy() bool { return v.play.Busy() }

// wait returns once everything queued has played, or when ctx or stop ends it.
func (v *voice) wait(ctx context.Context, stop <-chan struct{}) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for v.play.Busy() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return errStopped
		case <-v.done:
			return errStopped
		case <-t.C:
		}
	}
	return nil
}

var errStopped = errors.New("switchboard: stopped")

// stop ends the playout; queued audio is dropped. It is idempotent.
func (v *voice) stop() {
	v.once.Do(func() {
		v.cancel()
		<-v.done
	})
}

// holdMusic is a soft, slow arpeggio (about 8 s, looping cleanly) made
// here rather than shipped: a caller on hold hears that the line is alive.
func holdMusic(rate int) []int16 {
	holdOnce.Lock()
	defer holdOnce.Unlock()
	if m, ok := holdCache[rate]; ok {
		return m
	}
	// C major, A minor, F major, G major: four notes each, 500 ms a note.
	chords := [][]float64{
		{261.63, 329.63, 392.00, 523.25},
		{220.00, 261.63, 329.63, 440.00},
		{174.61, 220.00, 261.63, 349.23},
		{196.00, 246.94, 293.66, 392.00},
	}
	note := rate / 2
	out := make([]int16, 0, note*16)
	for _, ch := range chords {
		for _, f := range ch {
			for i := range note {
				t := float64(i) / float64(rate)
				// A soft attack and a long decay; a fifth of the note's
				// level an octave up gives it some warmth.
				env := math.Min(1, t/0.02) * math.Exp(-3*t)
				s := math.Sin(2*math.Pi*f*t) + 0.2*math.Sin(4*math.Pi*f*t)
				out = append(out, int16(2600*env*s))
			}
		}
	}
	holdCache[rate] = out
	return out
}

var (
	holdOnce  sync.Mutex
	holdCache = map[int][]int16{}
)

// beep is the tone before a voicemail recording: 1 kHz for 400 ms.
func beep(rate int) []int16 {
	n := rate * 2 / 5
	out := make([]int16, n)
	for i := range out {
		t := float64(i) / float64(rate)
		env := math.Min(1, math.Min(t, float64(n-i)/float64(rate))/0.01)
		out[i] = int16(9000 * env * math.Sin(2*math.Pi*1000*t))
	}
	return out
}

// liveASR transcribes one party of a human conversation as it goes: an
// endpointer finds each utterance, a recognizer stream takes its audio,
// and each finished utterance becomes a turn. Frames are handed over
// without blocking the media path; if the recognizer falls behind, frames
// are dropped (and the words with them) rather than delaying the call.
type liveASR struct {
	frames  chan []int16
	free    chan []int16 // frame buffers the recognizer is done with
	done    chan struct{}
	mu      sync.Mutex // guards closed against push
	closed  bool
	aborted atomic.Bool // drop the utterance in progress
}

// startASR starts transcribing speaker's audio at rate; onTurn receives
// each utterance.
func startASR(ctx context.Context, tr dialog.Transcriber, rate int, speaker parley.Speaker, onTurn func(parley.Turn, float64)) *liveASR {
	a := &liveASR{frames: make(chan []int16, 100), free: make(chan []int16, 128), done: make(chan struct{})}
	go a.run(ctx, tr, rate, speaker, onTurn)
	return a
}

// push hands over one frame (copied into a recycled buffer, so the media
// path does not allocate once the recognizer runs); after close it does
// nothing.
func (a *liveASR) push(pcm []int16) {
	var f []int16
	select {
	case f = <-a.free:
	default:
	}
	f = append(f[:0], pcm...)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	select {
	case a.frames <- f:
	default:
	}
}

// close finishes the utterance in progress and waits for its turn.
func (a *liveASR) close() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.frames)
	}
	a.mu.Unlock()
	<-a.done
}

// abort drops the utterance in progress (no final recognition) and
// returns once the recognizer is released.
func (a *liveASR) abort() {
	a.aborted.Store(true)
	a.close()
}

func (a *liveASR) run(ctx context.Context, tr dialog.Transcriber, rate int, speaker parley.Speaker, onTurn func(parley.Turn, float64)) {
	defer close(a.done)
	ep := media.NewEndpointer(media.EndpointConfig{Rate: rate})
	res := media.NewResampler(rate, tr.SampleRate())
	preFrames := 15 // 300 ms of pre-roll
	var pre [][]int16
	var st dialog.TranscribeStream
	var start time.Time
	var buf []int16
	write := func(f []int16) {
		if st == nil {
			return
		}
		buf = res.Process(buf[:0], f)
		if err := st.Write(buf); err != nil {
			_ = st.Close()
			st = nil
		}
	}
	finish := func(end time.Time) {
		if st == nil {
			return
		}
		buf = res.Flush(buf[:0])
		_ = st.Write(buf)
		t, err := st.Finish()
		st = nil
		if err == nil && t.Text != "" {
			onTurn(parley.Turn{Speaker: speaker, Text: t.Text, Start: start, End: end}, t.Confidence)
		}
	}
	defer func() {
		if st != nil && a.aborted.Load() {
			_ = st.Close()
		} else if st != nil {
			finish(time.Now())
		}
	}()
	for f := range a.frames {
		if a.aborted.Load() {
			continue
		}
		switch ep.Push(f) {
		case media.EndpointSpeechStart:
			if st == nil {
				s, err := tr.Start(ctx, dialog.ModeOpen)
				if err == nil {
					st = s
					res.Reset()
					start = time.Now().Add(-time.Duration(len(pre)) * media.FrameDuration)
					for _, p := range pre {
						write(p)
					}
				}
			}
			write(f)
		case media.EndpointSpeechEnd:
			write(f)
			finish(time.Now())
		default:
			write(f)
		}
		pre = append(pre, f)
		if len(pre) > preFrames {
			select { // the oldest pre-roll frame is done with: recycle it
			case a.free <- pre[0]:
			default:
			}
			pre = pre[1:]
		}
	}
}

// feedMusic writes music into party in real time, looping, until ctx ends.
func feedMusic(ctx context.Context, party *media.Party, music []int16, rate int) {
	frame := media.FrameSamples(rate)
	t := time.NewTicker(media.FrameDuration)
	defer t.Stop()
	pos := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if pos+frame > len(music) {
			pos = 0
		}
		_ = party.Write(music[pos : pos+frame])
		pos += frame
	}
}
