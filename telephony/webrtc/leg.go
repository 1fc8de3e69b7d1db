package webrtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
)

var _ parley.Leg = (*Leg)(nil)

// Errors a Leg returns.
var (
	// ErrDropped wraps the peer's reason when the browser's network went
	// away without a hang-up.
	ErrDropped = errors.New("webrtc: caller dropped")
	// ErrClosed is returned by writes after the leg ended.
	ErrClosed = errors.New("webrtc: leg closed")
	// ErrMarkQueueFull is returned by Mark when the reader has not taken
	// the earlier marks.
	ErrMarkQueueFull = errors.New("webrtc: mark queue full")
)

// markQueue bounds marks waiting for Run's goroutine.
const markQueue = 64

// LegStats counts what crossed a leg besides the peer's own counters.
type LegStats struct {
	Peer      mwebrtc.Stats
	DTMF      uint64 // digits delivered
	Marks     uint64 // marks echoed
	Malformed uint64 // data-channel messages that broke the protocol
}

// Leg is one browser caller as a parley.Leg: 8 kHz PCM16 frames both ways
// over a PCMU WebRTC track, keypad digits over the "dtmf" data channel and
// hang-up both ways over "control".
//
// A browser has no far-end playout buffer parley can address: audio goes
// out as RTP the moment WriteFrame is called, and the browser's jitter
// buffer holds only tens of milliseconds. So Mark echoes a mark (through
// Run's goroutine) as soon as the audio before it has been written, and
// Clear has nothing to drop. While nothing is written the leg sends
// nothing; the next packet's RTP timestamp says how long the pause was and
// the browser plays silence meanwhile.
type Leg struct {
	peer *mwebrtc.Peer
	info parley.LegInfo
	log  zerolog.Logger

	marks   chan string
	running atomic.Bool

	closeOnce sync.Once
	closed    atomic.Bool

	dtmf, marksOut, malformed atomic.Uint64
	warnedBad                 bool // reader goroutine only
}

func newLeg(peer *mwebrtc.Peer, info parley.LegInfo, log zerolog.Logger) *Leg {
	return &Leg{peer: peer, info: info, log: log, marks: make(chan string, markQueue)}
}

// Info describes the call: Channel webrtc, the generated CallID and From
// "browser:<remote address>".
func (l *Leg) Info() parley.LegInfo { return l.info }

// SampleRate is PCMU's 8 kHz.
func (l *Leg) SampleRate() int { return mwebrtc.SampleRate }

// Stats returns a snapshot of the leg's counters.
func (l *Leg) Stats() LegStats {
	return LegStats{Peer: l.peer.Stats(), DTMF: l.dtmf.Load(), Marks: l.marksOut.Load(), Malformed: l.malformed.Load()}
}

// Run delivers the caller's audio, digits and mark echoes to h from the
// calling goroutine until the caller hangs up (nil: the page's hang-up
// button or a closed page), parley hangs up (nil), ctx ends (ctx.Err()) or
// the browser's network goes away (an error wrapping ErrDropped). Marks
// still queued when it returns are echoed first.
func (l *Leg) Run(ctx context.Context, h parley.LegHandler) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("webrtc: Run called twice")
	}
	audio, msgs, done := l.peer.Audio(), l.peer.Messages(), l.peer.Done()
	for {
		select {
		case <-ctx.Done():
			l.flushMarks(h)
			return ctx.Err()
		case f := <-audio:
			h.OnAudio(f)
			l.peer.Release(f)
		case name := <-l.marks:
			l.marksOut.Add(1)
			h.OnMark(name)
		case m := <-msgs:
			if l.onMessage(m, h) {
				l.log.Info().Msg("webrtc: caller hung up")
				l.Close()
				l.flushMarks(h)
				return nil
			}
		case <-done:
			l.flushMarks(h)
			err := l.peer.Err()
			if err == nil || errors.Is(err, mwebrtc.ErrRemoteClosed) {
				return nil
			}
			return fmt.Errorf("%w: %w", ErrDropped, err)
		}
	}
}

// flushMarks echoes the marks still queued, as a far end would on hang-up.
func (l *Leg) flushMarks(h parley.LegHandler) {
	for {
		select {
		case name := <-l.marks:
			l.marksOut.Add(1)
			h.OnMark(name)
		default:
			return
		}
	}
}

// onMessage handles one data-channel message; true means the page hung up.
func (l *Leg) onMessage(m mwebrtc.DataMessage, h parley.LegHandler) bool {
	switch m.Label {
	case DTMFLabel:
		digits, err := parseDigits(m.Data)
		if err != nil {
			l.bad(err)
			return false
		}
		for _, d := range digits {
			l.dtmf.Add(1)
			h.OnDTMF(d)
		}
		return false
	case ControlLabel:
		c, err := parseControl(m.Data)
		if err != nil {
			l.bad(err)
			return false
		}
		return c.Type == controlHangup
	}
	l.bad(fmt.Errorf("%w: unknown data channel %q", errMalformed, m.Label))
	return false
}

// bad counts a protocol violation, logging the first one.
func (l *Leg) bad(err error) {
	l.malformed.Add(1)
	if !l.warnedBad {
		l.warnedBad = true
		l.log.Warn().Err(err).Msg("webrtc: bad data-channel message (counted; further ones not logged)")
	}
}

// WriteFrame sends one frame of 8 kHz PCM16 to the caller now.
func (l *Leg) WriteFrame(pcm []int16) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if err := l.peer.WriteFrame(pcm); err != nil {
		if errors.Is(err, mwebrtc.ErrClosed) {
			return ErrClosed
		}
		return err
	}
	return nil
}

// Mark queues name to be echoed to LegHandler.OnMark by Run's goroutine:
// the audio written before it has already left (see Leg).
func (l *Leg) Mark(name string) error {
	if l.ended() {
		return ErrClosed
	}
	select {
	case l.marks <- name:
		return nil
	default:
		return ErrMarkQueueFull
	}
}

// ended reports whether the leg was closed or its connection ended.
func (l *Leg) ended() bool {
	if l.closed.Load() {
		return true
	}
	select {
	case <-l.peer.Done():
		return true
	default:
		return false
	}
}

// Clear has nothing to drop: the browser buffers no more than its jitter
// buffer. It returns nil.
func (l *Leg) Clear() error { return nil }

// Hangup tells the page the call ended (it shows "Call ended") and closes
// the connection; Run returns nil.
func (l *Leg) Hangup(ctx context.Context, reason string) error {
	if l.closed.Load() {
		return nil
	}
	l.log.Info().Str("reason", reason).Msg("webrtc: hanging up")
	l.sayGoodbye(ctx, reason)
	l.Close()
	return nil
}

// hangupWait bounds the wait for the page's control channel when a call
// is hung up right after it connected, before the channel opened.
const hangupWait = 3 * time.Second

// sayGoodbye tells the page why the call ends, on the control channel,
// when the connection is up; the page falls back to noticing the closed
// connection otherwise.
func (l *Leg) sayGoodbye(ctx context.Context, reason string) {
	select {
	case <-l.peer.Connected():
	default:
		return
	}
	msg, err := json.Marshal(control{Type: controlHangup, Reason: reason})
	if err != nil {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, hangupWait)
	defer cancel()
	if err := l.peer.WaitChannel(wctx, ControlLabel); err != nil {
		l.log.Debug().Err(err).Msg("webrtc: no control channel for the hang-up message")
		return
	}
	if err := l.peer.SendText(ControlLabel, string(msg)); err != nil {
		l.log.Debug().Err(err).Msg("webrtc: hang-up message not sent")
	}
}

// Close closes the connection without a goodbye message. It is idempotent.
func (l *Leg) Close() {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		if err := l.peer.Close(); err != nil {
			l.log.Debug().Err(err).Msg("webrtc: close")
		}
	})
}
