package twilio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/parley-ai/parley/media"
)

// Dialer plays Twilio's part of an incoming call against a parley server:
// the signed voice webhook, the TwiML answer, the signed WebSocket upgrade
// and a Media Streams session paced in real time. `parley call`, `parley
// bench` and the end-to-end tests use it in place of a phone.
type Dialer struct {
	// ServerURL is where the server listens, e.g. http://127.0.0.1:8080.
	ServerURL string
	// PublicURL is what the server believes its public URL is; requests are
	// signed for it and the stream URL is mapped from it back onto
	// ServerURL. Default: ServerURL.
	PublicURL string
	// AuthToken signs the requests (the server's Config.AuthToken).
	AuthToken string
	// AccountSID of the simulated call; a random AC... SID when empty.
	AccountSID string
	// From and To are the caller's and the dialled numbers.
	From, To string
	// HTTPClient sends the webhook; a client with a 10 s timeout when nil.
	HTTPClient *http.Client
	// OnAudio, when set, receives every frame the server sent, decoded to
	// 8 kHz PCM, with the time it starts playing to the simulated caller
	// (after what is already buffered). It runs on the call's reader
	// goroutine and must not block; pcm is only valid during the call.
	OnAudio func(pcm []int16, at time.Time)
	// MaxRecording bounds each recorded direction (default 30 minutes).
	MaxRecording time.Duration
}

// HTTPError is a non-success answer to the webhook or the upgrade.
type HTTPError struct {
	Step       string // "webhook" or "upgrade"
	StatusCode int
}

// Error says which step failed with which status.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("twilio sim: %s answered HTTP %d", e.Step, e.StatusCode)
}

// ErrCallEnded is returned by a SimCall's methods after the call ended.
var ErrCallEnded = errors.New("twilio sim: call ended")

// NewSID returns a random 34-character Twilio SID with the given two-letter
// prefix (CA, AC, MZ, ...).
func NewSID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails since Go 1.24
	return prefix + hex.EncodeToString(b[:])
}

// wsTwin maps http(s):// to ws(s)://.
func wsTwin(u string) string {
	switch {
	case strings.HasPrefix(u, "https://"):
		return "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		return "ws://" + strings.TrimPrefix(u, "http://")
	}
	return u
}

// Dial places a call. ctx bounds the webhook and the upgrade only. It
// returns once the stream's start message was sent; the simulated caller
// then streams silence until told to say something, until Hangup or Drop.
func (d *Dialer) Dial(ctx context.Context) (*SimCall, error) {
	server := strings.TrimSuffix(d.ServerURL, "/")
	if !strings.HasPrefix(server, "http://") && !strings.HasPrefix(server, "https://") {
		return nil, fmt.Errorf("twilio sim: server url %q must be http(s)://", d.ServerURL)
	}
	public := strings.TrimSuffix(d.PublicURL, "/")
	if public == "" {
		public = server
	}
	c := &SimCall{
		CallSID:    NewSID("CA"),
		AccountSID: d.AccountSID,
		StreamSID:  NewSID("MZ"),
		onAudio:    d.OnAudio,
		queue:      make(chan *simJob, 8),
		done:       make(chan struct{}),
		maxRec:     int(d.MaxRecording * MulawSampleRate / time.Second),
	}
	if c.AccountSID == "" {
		c.AccountSID = NewSID("AC")
	}
	if c.maxRec <= 0 {
		c.maxRec = 30 * 60 * MulawSampleRate
	}
	params := [][2]string{
		{"AccountSid", c.AccountSID},
		{"ApiVersion", "2010-04-01"},
		{"CallSid", c.CallSID},
		{"CallStatus", "ringing"},
		{"Called", d.To},
		{"Caller", d.From},
		{"Direction", "inbound"},
		{"From", d.From},
		{"To", d.To},
	}
	twiml, err := d.webhook(ctx, server+VoicePath, public+VoicePath, params)
	if err != nil {
		return nil, err
	}
	c.TwiML = twiml
	stream := twiml.Stream()
	if stream == nil {
		return nil, fmt.Errorf("twilio sim: answer has no <Connect><Stream>")
	}
	dialURL := stream.URL
	if pub := wsTwin(public); strings.HasPrefix(dialURL, pub) {
		dialURL = wsTwin(server) + strings.TrimPrefix(dialURL, pub)
	}
	header := http.Header{}
	header.Set(SignatureHeader, Signature(d.AuthToken, stream.URL, nil))
	header.Set("User-Agent", "Twilio.TmeWs/1.0")
	wsd := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := wsd.DialContext(ctx, dialURL, header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, &HTTPError{Step: "upgrade", StatusCode: resp.StatusCode}
		}
		return nil, fmt.Errorf("twilio sim: open stream %s: %w", dialURL, err)
	}
	c.conn = conn
	custom := make(map[string]string, len(stream.Parameters))
	for _, p := range stream.Parameters {
		custom[p.Name] = p.Value
	}
	start := Message{Event: EventStart, StreamSID: c.StreamSID, Start: &StartMessage{
		AccountSID: c.AccountSID, StreamSID: c.StreamSID, CallSID: c.CallSID,
		Tracks:           []string{"inbound"},
		MediaFormat:      MediaFormat{Encoding: MulawEncoding, SampleRate: MulawSampleRate, Channels: 1},
		CustomParameters: custom,
	}}
	err = c.writeJSON(&Message{Event: EventConnected, Protocol: "Call", Version: "1.0.0"}, false)
	if err == nil {
		err = c.writeJSON(&start, true)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("twilio sim: start stream: %w", err)
	}
	c.t0 = time.Now()
	c.wg.Add(2)
	go c.sender()
	go c.reader()
	return c, nil
}

// webhook posts the signed voice request and parses the TwiML answer.
func (d *Dialer) webhook(ctx context.Context, target, signedURL string, params [][2]string) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(EncodeForm(params)))
	if err != nil {
		return nil, fmt.Errorf("twilio sim: webhook request: %w", err)
	}
	req.Close = true // one request per call: leave no idle connection behind
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set(SignatureHeader, Signature(d.AuthToken, signedURL, params))
	hc := d.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("twilio sim: webhook: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("twilio sim: read webhook answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &HTTPError{Step: "webhook", StatusCode: resp.StatusCode}
	}
	twiml, err := ParseTwiML(body)
	if err != nil {
		return nil, fmt.Errorf("twilio sim: webhook answer: %w", err)
	}
	return twiml, nil
}

// SimCall is one simulated phone call in progress.
type SimCall struct {
	CallSID, AccountSID, StreamSID string
	// TwiML is the server's answer to the voice webhook.
	TwiML *Response

	conn    *websocket.Conn
	onAudio func([]int16, time.Time)
	queue   chan *simJob
	wg      sync.WaitGroup
	t0      time.Time
	maxRec  int

	wmu   sync.Mutex // serializes writes and the counters
	seq   uint64
	chunk uint64
	enc   []byte

	mu         sync.Mutex // playback and recording state
	playEnd    int        // sample index where buffered playback ends
	pending    []simMark
	caller, ai []int16
	clears     []time.Time
	stats      SimStats
	endOnce    sync.Once
	done       chan struct{}
	err        error
	hangingUp  bool
}

type simJob struct {
	pcm  []int16
	done chan error
}

type simMark struct {
	name string
	due  int // sample index
}

// SimStats counts what the simulated Twilio received from the server.
type SimStats struct {
	MediaIn   int // media messages
	SamplesIn int // decoded samples
	MarksIn   int // marks received (and echoed)
	Clears    int
	Malformed int // messages it could not parse
	Unknown   int
	FramesOut int // media messages sent
}

// sampleAt converts a time to a sample index on the call's timeline.
func (c *SimCall) sampleAt(t time.Time) int {
	return int(t.Sub(c.t0) * MulawSampleRate / time.Second)
}

func (c *SimCall) timeAt(sample int) time.Time {
	return c.t0.Add(time.Duration(sample) * time.Second / MulawSampleRate)
}

// writeJSON marshals and sends m, numbering it when counted.
func (c *SimCall) writeJSON(m *Message, counted bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if counted {
		c.seq++
		m.SequenceNumber = strconv.FormatUint(c.seq, 10)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, data)
}

// sendFrame sends one 20 ms media message with Twilio's string counters.
func (c *SimCall) sendFrame(pcm []int16) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.seq++
	c.chunk++
	mu := make([]byte, len(pcm))
	media.MulawEncode(mu, pcm)
	c.enc = c.enc[:0]
	c.enc = append(c.enc, `{"event":"media","sequenceNumber":"`...)
	c.enc = strconv.AppendUint(c.enc, c.seq, 10)
	c.enc = append(c.enc, `","media":{"track":"inbound","chunk":"`...)
	c.enc = strconv.AppendUint(c.enc, c.chunk, 10)
	c.enc = append(c.enc, `","timestamp":"`...)
	c.enc = strconv.AppendUint(c.enc, (c.chunk-1)*20, 10)
	c.enc = append(c.enc, `","payload":"`...)
	c.enc = base64.StdEncoding.AppendEncode(c.enc, mu)
	c.enc = append(c.enc, `"},"streamSid":"`...)
	c.enc = append(c.enc, c.StreamSID...)
	c.enc = append(c.enc, `"}`...)
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, c.enc)
}

// sender is the one goroutine that paces the caller's audio: every 20 ms
// it sends the next queued frame, or silence, as Twilio streams
// continuously; it also echoes marks whose audio has finished playing.
func (c *SimCall) sender() {
	defer c.wg.Done()
	ticker := time.NewTicker(media.FrameDuration)
	defer ticker.Stop()
	frame := make([]int16, frameSamples)
	var cur *simJob
	pos := 0
	for {
		select {
		case <-c.done:
			if cur != nil {
				cur.done <- ErrCallEnded
			}
			return
		case <-ticker.C:
		}
		if cur == nil {
			select {
			case cur = <-c.queue:
				pos = 0
			default:
			}
		}
		clear(frame)
		if cur != nil {
			pos += copy(frame, cur.pcm[pos:])
		}
		now := time.Now()
		if err := c.sendFrame(frame); err != nil {
			c.end(fmt.Errorf("twilio sim: send media: %w", err))
			continue
		}
		c.mu.Lock()
		c.stats.FramesOut++
		c.record(&c.caller, max(c.sampleAt(now), len(c.caller)), frame)
		due := c.dueMarks(c.sampleAt(now))
		c.mu.Unlock()
		if cur != nil && pos >= len(cur.pcm) {
			cur.done <- nil
			cur = nil
		}
		for _, name := range due {
			if err := c.echoMark(name); err != nil {
				c.end(fmt.Errorf("twilio sim: echo mark: %w", err))
			}
		}
	}
}

// dueMarks removes and returns the marks whose audio has played; c.mu held.
func (c *SimCall) dueMarks(now int) []string {
	var names []string
	n := 0
	for _, m := range c.pending {
		if m.due <= now {
			names = append(names, m.name)
			continue
		}
		c.pending[n] = m
		n++
	}
	c.pending = c.pending[:n]
	return names
}

// record writes pcm into a recording at sample offset at; c.mu held.
func (c *SimCall) record(rec *[]int16, at int, pcm []int16) {
	if at < 0 || at+len(pcm) > c.maxRec {
		return
	}
	if at > len(*rec) {
		*rec = append(*rec, make([]int16, at-len(*rec))...)
	}
	*rec = append((*rec)[:at], pcm...)
}

func (c *SimCall) echoMark(name string) error {
	return c.writeJSON(&Message{Event: EventMark, StreamSID: c.StreamSID, Mark: &MarkMessage{Name: name}}, true)
}

// reader receives what the server sends: media into the simulated
// playback buffer, marks (echoed when their audio has played) and clear
// (drops the buffer and echoes pending marks at once, as Twilio does).
func (c *SimCall) reader() {
	defer c.wg.Done()
	var pcm []int16
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				err = nil
			}
			c.mu.Lock()
			if c.hangingUp {
				err = nil
			}
			c.mu.Unlock()
			if err != nil {
				err = fmt.Errorf("twilio sim: stream read: %w", err)
			}
			c.end(err)
			return
		}
		m, err := ParseMessage(data)
		if err != nil {
			c.mu.Lock()
			c.stats.Malformed++
			c.mu.Unlock()
			continue
		}
		now := time.Now()
		switch {
		case m.Event == EventMedia && m.Media != nil:
			mu, err := base64.StdEncoding.DecodeString(m.Media.Payload)
			if err != nil {
				c.mu.Lock()
				c.stats.Malformed++
				c.mu.Unlock()
				continue
			}
			if cap(pcm) < len(mu) {
				pcm = make([]int16, len(mu))
			}
			pcm = pcm[:len(mu)]
			media.MulawDecode(pcm, mu)
			c.mu.Lock()
			at := max(c.sampleAt(now), c.playEnd)
			c.playEnd = at + len(pcm)
			c.record(&c.ai, at, pcm)
			c.stats.MediaIn++
			c.stats.SamplesIn += len(pcm)
			c.mu.Unlock()
			if c.onAudio != nil {
				c.onAudio(pcm, c.timeAt(at))
			}
		case m.Event == EventMark && m.Mark != nil:
			c.mu.Lock()
			c.stats.MarksIn++
			c.pending = append(c.pending, simMark{name: m.Mark.Name, due: c.playEnd})
			due := c.dueMarks(c.sampleAt(now))
			c.mu.Unlock()
			for _, name := range due {
				if err := c.echoMark(name); err != nil {
					c.end(fmt.Errorf("twilio sim: echo mark: %w", err))
				}
			}
		case m.Event == EventClear:
			c.mu.Lock()
			c.stats.Clears++
			c.clears = append(c.clears, now)
			cut := c.sampleAt(now)
			if len(c.ai) > cut && cut >= 0 {
				c.ai = c.ai[:cut]
			}
			c.playEnd = min(c.playEnd, cut)
			cancelled := make([]string, len(c.pending))
			for i, pm := range c.pending {
				cancelled[i] = pm.name
			}
			c.pending = c.pending[:0]
			c.mu.Unlock()
			for _, name := range cancelled {
				if err := c.echoMark(name); err != nil {
					c.end(fmt.Errorf("twilio sim: echo mark: %w", err))
				}
			}
		default:
			c.mu.Lock()
			c.stats.Unknown++
			c.mu.Unlock()
		}
	}
}

// end records why the call ended (first reason wins) and stops the
// goroutines.
func (c *SimCall) end(err error) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
		_ = c.conn.Close()
	})
}

// SendAudio queues 8 kHz PCM as the caller's speech and blocks until the
// sender goroutine has streamed all of it in real time (20 ms frames, the
// last one padded with silence).
func (c *SimCall) SendAudio(pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	job := &simJob{pcm: append([]int16(nil), pcm...), done: make(chan error, 1)}
	select {
	case c.queue <- job:
	case <-c.done:
		return ErrCallEnded
	}
	select {
	case err := <-job.done:
		return err
	case <-c.done:
		return ErrCallEnded
	}
}

// SendSilence streams d of silence after whatever is queued, and returns
// when it has been sent.
func (c *SimCall) SendSilence(d time.Duration) error {
	n := int(d * MulawSampleRate / time.Second)
	return c.SendAudio(make([]int16, n))
}

// SendDTMF sends a dtmf message for one key (0-9, *, #, A-D).
func (c *SimCall) SendDTMF(digit byte) error {
	if !strings.ContainsRune("0123456789*#ABCD", rune(digit)) {
		return fmt.Errorf("twilio sim: %q is not a DTMF key", digit)
	}
	if c.ended() {
		return ErrCallEnded
	}
	return c.writeJSON(&Message{Event: EventDTMF, StreamSID: c.StreamSID, DTMF: &DTMFMessage{Track: "inbound_track", Digit: string(digit)}}, true)
}

// SendRaw writes data as one text frame, for fault-injection tests (e.g. a
// malformed message in the middle of a call).
func (c *SimCall) SendRaw(data []byte) error {
	if c.ended() {
		return ErrCallEnded
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, data)
}

func (c *SimCall) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Hangup ends the call as Twilio does when the caller hangs up: a stop
// message, then a normal close. It waits for the call's goroutines.
func (c *SimCall) Hangup() error {
	var err error
	if !c.ended() {
		c.mu.Lock()
		c.hangingUp = true
		c.mu.Unlock()
		err = c.writeJSON(&Message{Event: EventStop, StreamSID: c.StreamSID, Stop: &StopMessage{AccountSID: c.AccountSID, CallSID: c.CallSID}}, true)
		c.wmu.Lock()
		_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.wmu.Unlock()
		c.end(nil)
	}
	c.wg.Wait()
	if err != nil {
		return fmt.Errorf("twilio sim: hang up: %w", err)
	}
	return nil
}

// Drop cuts the TCP connection without stop or close frame, as a network
// failure would, and waits for the call's goroutines.
func (c *SimCall) Drop() {
	c.mu.Lock()
	c.hangingUp = true
	c.mu.Unlock()
	if nc := c.conn.NetConn(); nc != nil {
		_ = nc.Close()
	}
	c.end(nil)
	c.wg.Wait()
}

// Done is closed when the call has ended, from either side.
func (c *SimCall) Done() <-chan struct{} { return c.done }

// Err is why the call ended: nil for a hang-up from either side.
func (c *SimCall) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Wait blocks until the call ends or ctx does, then returns Err.
func (c *SimCall) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		c.wg.Wait()
		return c.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns what the simulated Twilio has received so far.
func (c *SimCall) Stats() SimStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Recording returns both directions on one timeline starting when the
// stream started, at 8 kHz and of equal length: what the caller sent, and
// what the caller heard from the server (audio dropped by clear is not in
// it). Mix or interleave them for a WAV file.
func (c *SimCall) Recording() (caller, ai []int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := max(len(c.caller), len(c.ai))
	caller = make([]int16, n)
	ai = make([]int16, n)
	copy(caller, c.caller)
	copy(ai, c.ai)
	return caller, ai
}

// ClearTimes returns when each clear message arrived, for measuring
// barge-in latency.
func (c *SimCall) ClearTimes() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.clears...)
}

// Started is when the stream started: sample 0 of Recording.
func (c *SimCall) Started() time.Time { return c.t0 }
