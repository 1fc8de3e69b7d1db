package twilio

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/media"
)

var _ parley.Leg = (*Leg)(nil)

// Errors a Leg returns.
var (
	// ErrDropped wraps the read error when the socket fails before Twilio
	// sent stop: the caller is gone without a normal hang-up.
	ErrDropped = errors.New("twilio: media stream dropped")
	// ErrClosed is returned by writes after the leg was closed.
	ErrClosed = errors.New("twilio: leg closed")
	// ErrNotStarted is returned when the stream's start message has not
	// arrived yet.
	ErrNotStarted = errors.New("twilio: media stream not started")
)

// frameSamples is one 20 ms frame at Twilio's 8 kHz.
var frameSamples = media.FrameSamples(MulawSampleRate)

// LegStats counts what crossed a leg's socket.
type LegStats struct {
	FramesIn     uint64 // 20 ms frames delivered to LegHandler.OnAudio
	FramesOut    uint64 // media messages sent
	MarksIn      uint64 // mark echoes received
	MarksOut     uint64 // marks sent
	DTMF         uint64 // digits received
	Malformed    uint64 // frames that were not valid Media Streams messages
	Unknown      uint64 // valid messages with an event parley does not expect
	SequenceGaps uint64 // sequence numbers skipped by Twilio (lost messages)
}

// legStats is the atomic twin of LegStats: the reader updates it while any
// goroutine may read a snapshot.
type legStats struct {
	framesIn, framesOut, marksIn, marksOut, dtmf, malformed, unknown, gaps atomic.Uint64
}

// Leg is one phone call's Twilio Media Streams WebSocket, as a parley.Leg:
// inbound mu-law is decoded to 8 kHz PCM16 frames, outbound frames are
// encoded back, marks and clear follow Twilio's semantics.
type Leg struct {
	conn         *websocket.Conn
	log          zerolog.Logger
	rest         *restClient // nil: no REST credentials
	writeTimeout time.Duration

	// Set once by awaitStart, read-only afterwards.
	info      parley.LegInfo
	accountID string
	started   atomic.Bool

	// Reader state, owned by the goroutine in awaitStart and then Run.
	running     atomic.Bool
	f           frame
	readBuf     []byte
	mulawIn     []byte
	pcmIn       []int16
	acc         []int16
	lastSeq     uint64
	haveSeq     bool
	warnedBad   bool
	warnedOther bool

	// Writer state, guarded by wmu.
	wmu       sync.Mutex
	closed    bool
	mediaHead []byte // {"event":"media","streamSid":"...","media":{"payload":"
	sidJSON   []byte // the stream SID as a JSON string
	mulawOut  []byte
	out       []byte

	closeOnce sync.Once
	stopped   atomic.Bool // closed by parley (Hangup/Close): not a drop
	stats     legStats
}

// newLeg wraps an upgraded socket.
func newLeg(conn *websocket.Conn, log zerolog.Logger, rest *restClient, writeTimeout time.Duration) *Leg {
	return &Leg{
		conn:         conn,
		log:          log,
		rest:         rest,
		writeTimeout: writeTimeout,
		acc:          make([]int16, 0, frameSamples),
		readBuf:      make([]byte, 0, 1024),
	}
}

// Info describes the call; valid once the start message arrived (always
// the case for a Leg handed to a CallHandler).
func (l *Leg) Info() parley.LegInfo { return l.info }

// SampleRate is Twilio's 8 kHz.
func (l *Leg) SampleRate() int { return MulawSampleRate }

// AccountSID is the Twilio account the call belongs to.
func (l *Leg) AccountSID() string { return l.accountID }

// Stats returns a snapshot of the leg's counters.
func (l *Leg) Stats() LegStats {
	s := &l.stats
	return LegStats{
		FramesIn: s.framesIn.Load(), FramesOut: s.framesOut.Load(),
		MarksIn: s.marksIn.Load(), MarksOut: s.marksOut.Load(), DTMF: s.dtmf.Load(),
		Malformed: s.malformed.Load(), Unknown: s.unknown.Load(), SequenceGaps: s.gaps.Load(),
	}
}

// readMessage reads the next text frame into the reused read buffer.
func (l *Leg) readMessage() ([]byte, bool, error) {
	typ, r, err := l.conn.NextReader()
	if err != nil {
		return nil, false, err
	}
	buf := l.readBuf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			l.readBuf = buf
			return nil, false, err
		}
	}
	l.readBuf = buf
	return buf, typ == websocket.TextMessage, nil
}

// awaitStart reads until Twilio's start message and checks the media
// format. Messages before start other than connected are counted and
// dropped.
func (l *Leg) awaitStart(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = l.conn.SetReadDeadline(deadline)
	defer func() { _ = l.conn.SetReadDeadline(time.Time{}) }()
	for {
		data, text, err := l.readMessage()
		if err != nil {
			return fmt.Errorf("twilio: waiting for start: %w", err)
		}
		if !text || l.f.scan(data) != nil {
			l.malformed(data)
			continue
		}
		seq := l.f.seq
		l.trackSequence(seq)
		switch string(l.f.event) {
		case EventConnected:
		case EventStart:
			var m Message
			if err := json.Unmarshal(data, &m); err != nil || m.Start == nil {
				return fmt.Errorf("twilio: start message: %w", ErrMalformed)
			}
			return l.start(&m)
		default:
			l.other(l.f.event)
		}
	}
}

// start records the stream's identity and prepares the outbound buffers.
func (l *Leg) start(m *Message) error {
	s := m.Start
	f := s.MediaFormat
	if f.Encoding != MulawEncoding || f.SampleRate != MulawSampleRate || f.Channels != 1 {
		return fmt.Errorf("twilio: start: unsupported media format %s/%d/%d", f.Encoding, f.SampleRate, f.Channels)
	}
	sid := s.StreamSID
	if sid == "" {
		sid = m.StreamSID
	}
	if sid == "" || s.CallSID == "" {
		return fmt.Errorf("twilio: start: missing streamSid or callSid: %w", ErrMalformed)
	}
	params := s.CustomParameters
	if params == nil {
		params = map[string]string{}
	}
	l.info = parley.LegInfo{
		CallID:    s.CallSID,
		StreamID:  sid,
		Channel:   parley.ChannelTwilio,
		From:      params[ParamFrom],
		To:        params[ParamTo],
		Params:    params,
		StartedAt: time.Now(),
	}
	l.accountID = s.AccountSID
	l.log = l.log.With().Str("call_id", s.CallSID).Str("stream_sid", sid).Logger()
	sidJSON, _ := json.Marshal(sid)
	l.wmu.Lock()
	l.sidJSON = sidJSON
	l.mediaHead = append(append([]byte(`{"event":"media","streamSid":`), sidJSON...), `,"media":{"payload":"`...)
	l.wmu.Unlock()
	l.started.Store(true)
	return nil
}

// Run reads the stream on the calling goroutine and delivers audio, DTMF
// and mark echoes to h until Twilio sends stop (nil), parley closes the
// leg (nil), ctx ends (ctx.Err()) or the socket fails (ErrDropped).
// Malformed or unknown messages are counted and never end the call.
func (l *Leg) Run(ctx context.Context, h parley.LegHandler) error {
	if !l.started.Load() {
		return ErrNotStarted
	}
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("twilio: Run called twice")
	}
	// Ending ctx unblocks the read below. The deadline must never be set
	// after Run returned: the server releases the connection then, and a
	// late SetReadDeadline from the AfterFunc goroutine would touch a freed
	// connection (seen as a crash when a call's context ended just as its
	// stream closed).
	var deadlineMu sync.Mutex
	returned := false
	stop := context.AfterFunc(ctx, func() {
		deadlineMu.Lock()
		defer deadlineMu.Unlock()
		if !returned {
			_ = l.conn.SetReadDeadline(time.Now())
		}
	})
	defer func() {
		stop()
		deadlineMu.Lock()
		returned = true
		deadlineMu.Unlock()
	}()
	for {
		data, text, err := l.readMessage()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case l.stopped.Load():
				return nil
			case websocket.IsCloseError(err, websocket.CloseNormalClosure):
				return nil
			}
			return fmt.Errorf("%w: %w", ErrDropped, err)
		}
		if !text {
			l.malformed(data)
			continue
		}
		done, err := l.dispatch(data, h)
		if err != nil {
			l.malformed(data)
			continue
		}
		if done {
			l.log.Debug().Msg("twilio: stream stopped")
			return nil
		}
	}
}

// dispatch handles one text message; done is true after stop.
func (l *Leg) dispatch(data []byte, h parley.LegHandler) (done bool, err error) {
	if err := l.f.scan(data); err != nil {
		return false, err
	}
	l.trackSequence(l.f.seq)
	switch string(l.f.event) {
	case EventMedia:
		return false, l.onMedia(h)
	case EventStop:
		return true, nil
	case EventConnected:
		return false, nil
	case EventDTMF, EventMark:
		var m Message
		if err := json.Unmarshal(data, &m); err != nil {
			return false, err
		}
		if m.DTMF != nil && len(m.DTMF.Digit) == 1 {
			l.stats.dtmf.Add(1)
			h.OnDTMF(m.DTMF.Digit[0])
			return false, nil
		}
		if m.Mark != nil {
			l.stats.marksIn.Add(1)
			h.OnMark(m.Mark.Name)
			return false, nil
		}
		return false, ErrMalformed
	}
	l.other(l.f.event)
	return false, nil
}

// onMedia decodes the payload of the scanned media message and hands the
// audio to h in 20 ms frames, re-framing when Twilio's chunks are another
// size. It does not allocate in steady state.
func (l *Leg) onMedia(h parley.LegHandler) error {
	if len(l.f.track) != 0 && string(l.f.track) != "inbound" {
		return nil // a <Start><Stream> outbound track: not the caller
	}
	n := base64.StdEncoding.DecodedLen(len(l.f.payload))
	if cap(l.mulawIn) < n {
		l.mulawIn = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(l.mulawIn[:n], l.f.payload)
	if err != nil {
		return err
	}
	if cap(l.pcmIn) < n {
		l.pcmIn = make([]int16, n)
	}
	pcm := l.pcmIn[:n]
	media.MulawDecode(pcm, l.mulawIn[:n])
	for len(pcm) > 0 {
		if len(l.acc) == 0 && len(pcm) >= frameSamples {
			l.stats.framesIn.Add(1)
			h.OnAudio(pcm[:frameSamples])
			pcm = pcm[frameSamples:]
			continue
		}
		k := copy(l.acc[len(l.acc):frameSamples], pcm)
		l.acc = l.acc[:len(l.acc)+k]
		pcm = pcm[k:]
		if len(l.acc) == frameSamples {
			l.stats.framesIn.Add(1)
			h.OnAudio(l.acc)
			l.acc = l.acc[:0]
		}
	}
	return nil
}

// trackSequence counts sequence numbers Twilio skipped.
func (l *Leg) trackSequence(seq []byte) {
	n, ok := parseCounter(seq)
	if !ok {
		return
	}
	if l.haveSeq && n > l.lastSeq+1 {
		l.stats.gaps.Add(n - l.lastSeq - 1)
	}
	if !l.haveSeq || n > l.lastSeq {
		l.lastSeq = n
		l.haveSeq = true
	}
}

func (l *Leg) malformed(data []byte) {
	l.stats.malformed.Add(1)
	if !l.warnedBad {
		l.warnedBad = true
		const maxShown = 200
		if len(data) > maxShown {
			data = data[:maxShown]
		}
		l.log.Warn().Bytes("frame", data).Msg("twilio: malformed media streams message (counted; further ones not logged)")
	}
}

func (l *Leg) other(event []byte) {
	l.stats.unknown.Add(1)
	if !l.warnedOther {
		l.warnedOther = true
		l.log.Warn().Bytes("event", event).Msg("twilio: unexpected media streams event (counted; further ones not logged)")
	}
}

// WriteFrame sends one frame of 8 kHz PCM16 to the caller as a media
// message. It encodes into reused buffers and does not allocate; writes are
// serialized with marks and clears and bounded by the write timeout.
func (l *Leg) WriteFrame(pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.writable(); err != nil {
		return err
	}
	if cap(l.mulawOut) < len(pcm) {
		l.mulawOut = make([]byte, len(pcm))
	}
	mu := l.mulawOut[:len(pcm)]
	media.MulawEncode(mu, pcm)
	enc := base64.StdEncoding.EncodedLen(len(mu))
	need := len(l.mediaHead) + enc + 3
	if cap(l.out) < need {
		l.out = make([]byte, 0, need)
	}
	out := append(l.out[:0], l.mediaHead...)
	base64.StdEncoding.Encode(out[len(out):len(out)+enc], mu)
	out = append(out[:len(out)+enc], `"}}`...)
	l.out = out
	if err := l.write(out); err != nil {
		return fmt.Errorf("twilio: write media: %w", err)
	}
	l.stats.framesOut.Add(1)
	return nil
}

// Mark asks Twilio to echo name once the audio sent so far has played
// (or at once, as a cancellation, when a later Clear drops it).
func (l *Leg) Mark(name string) error {
	nameJSON, err := json.Marshal(name)
	if err != nil {
		return fmt.Errorf("twilio: mark: %w", err)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.writable(); err != nil {
		return err
	}
	msg := make([]byte, 0, 64+len(l.sidJSON)+len(nameJSON))
	msg = append(msg, `{"event":"mark","streamSid":`...)
	msg = append(msg, l.sidJSON...)
	msg = append(msg, `,"mark":{"name":`...)
	msg = append(msg, nameJSON...)
	msg = append(msg, "}}"...)
	if err := l.write(msg); err != nil {
		return fmt.Errorf("twilio: write mark: %w", err)
	}
	l.stats.marksOut.Add(1)
	return nil
}

// Clear drops the audio Twilio has buffered but not yet played; Twilio
// then echoes every pending mark at once.
func (l *Leg) Clear() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.writable(); err != nil {
		return err
	}
	msg := make([]byte, 0, 40+len(l.sidJSON))
	msg = append(msg, `{"event":"clear","streamSid":`...)
	msg = append(msg, l.sidJSON...)
	msg = append(msg, '}')
	if err := l.write(msg); err != nil {
		return fmt.Errorf("twilio: write clear: %w", err)
	}
	return nil
}

// writable reports why nothing can be written; wmu must be held.
func (l *Leg) writable() error {
	switch {
	case l.closed:
		return ErrClosed
	case l.mediaHead == nil:
		return ErrNotStarted
	}
	return nil
}

// write sends one text frame with a deadline; wmu must be held.
func (l *Leg) write(msg []byte) error {
	if err := l.conn.SetWriteDeadline(time.Now().Add(l.writeTimeout)); err != nil {
		return err
	}
	return l.conn.WriteMessage(websocket.TextMessage, msg)
}

// Hangup ends the call: through Twilio's REST API (Status=completed) when
// credentials are configured, and by closing the stream in every case.
// A call that already ended counts as success.
func (l *Leg) Hangup(ctx context.Context, reason string) error {
	l.log.Info().Str("reason", reason).Msg("twilio: hanging up")
	var err error
	if l.rest != nil && l.info.CallID != "" {
		err = l.rest.completeCall(ctx, l.info.CallID)
		if err != nil {
			err = fmt.Errorf("twilio: hang up %s: %w", l.info.CallID, err)
		}
	}
	l.Close()
	return err
}

// ErrNoCredentials is returned by REST operations when the server has no
// AccountSID and AuthToken.
var ErrNoCredentials = errors.New("twilio: no REST credentials configured")

// Redirect replaces the call's running TwiML with r through the REST API,
// e.g. to move the caller into a <Dial><Conference> for a warm transfer.
// Twilio then stops the <Connect><Stream>, so Run returns soon after.
func (l *Leg) Redirect(ctx context.Context, r *Response) error {
	if l.rest == nil {
		return ErrNoCredentials
	}
	doc, err := r.MarshalTwiML()
	if err != nil {
		return err
	}
	if err := l.rest.redirectCall(ctx, l.info.CallID, string(doc)); err != nil {
		return fmt.Errorf("twilio: redirect %s: %w", l.info.CallID, err)
	}
	l.log.Info().Msg("twilio: call redirected")
	return nil
}

// Close closes the WebSocket without touching the call through REST; after
// a <Connect><Stream> Twilio then continues with the next TwiML verb (none:
// the call ends). It is idempotent and makes Run return nil.
func (l *Leg) Close() {
	l.closeOnce.Do(func() {
		l.stopped.Store(true)
		l.wmu.Lock()
		l.closed = true
		l.wmu.Unlock()
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = l.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(l.writeTimeout))
		_ = l.conn.Close()
	})
}
