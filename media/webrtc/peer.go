package webrtc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"
)

const (
	// audioQueue is how many inbound frames may wait for the reader
	// (500 ms); newer frames are dropped and counted beyond it.
	audioQueue = 25
	// messageQueue bounds data-channel messages waiting for the reader.
	messageQueue = 32
	// MaxMessageSize bounds one data-channel message; larger ones are
	// dropped and counted.
	MaxMessageSize = 4 << 10
	// closeFlush bounds how long Close waits for queued data-channel
	// messages (a goodbye) to leave before the connection goes down.
	closeFlush = time.Second
)

// DataMessage is one message received on a data channel.
type DataMessage struct {
	Label string // the channel's label
	Text  bool   // a text message (else binary)
	Data  []byte // owned by the receiver
}

// Stats counts what crossed a peer.
type Stats struct {
	FramesIn         uint64 // 20 ms frames delivered on Audio
	FramesOut        uint64 // packets written to the outbound track
	DroppedIn        uint64 // frames dropped because the reader fell behind
	LatePackets      uint64 // duplicate or reordered packets dropped
	ConcealedSamples uint64 // silence inserted for gaps in the inbound stream
	ForeignPackets   uint64 // inbound packets of another payload type, or undecodable
	Messages         uint64 // data-channel messages delivered
	DroppedMessages  uint64 // data-channel messages dropped (queue full or too large)
}

// Peer is one WebRTC connection with one audio track each way and any
// number of data channels. Inbound audio arrives on Audio as 20 ms 8 kHz
// frames from one pion reader goroutine; WriteFrame sends outbound frames
// as RTP of the negotiated codec (Codec). Done closes when the connection ends for any reason; Close
// must be called in every case to release it.
type Peer struct {
	pc    *webrtc.PeerConnection
	mux   *ice.UDPMuxDefault
	track *webrtc.TrackLocalStaticRTP
	cfg   Config
	log   zerolog.Logger
	codec string

	audio chan []int16
	free  chan []int16
	msgs  chan DataMessage

	wmu sync.Mutex
	out *packetizer

	dcMu     sync.Mutex
	channels map[string]*dataChannel

	trackTaken atomic.Bool
	wg         sync.WaitGroup // pion callbacks and loops Close waits for
	wgMu       sync.Mutex     // orders wg.Add against Close's Wait
	closing    bool           // guarded by wgMu

	stateMu      sync.Mutex
	connected    chan struct{}
	isConnected  bool
	dropTimer    *time.Timer
	connectTimer *time.Timer

	done      chan struct{}
	endOnce   sync.Once
	err       error // set before done closes
	closeOnce sync.Once
	closeErr  error

	framesIn, framesOut, droppedIn, messages, droppedMessages atomic.Uint64
	late, concealed, foreign                                  atomic.Uint64
}

type dataChannel struct {
	dc   *webrtc.DataChannel
	open chan struct{}
}

// NewPeer answers a browser's offer: it checks the offer (ErrBadOffer),
// negotiates audio both ways in the first codec of cfg.Codecs the offer
// has, and the offer's data channels, gathers every candidate and returns
// the complete answer (non-trickle ICE).
func NewPeer(cfg Config, offerSDP string) (*Peer, string, error) {
	offered, err := offeredCodecs(offerSDP)
	codec := pickCodec(cfg.codecs(), offered)
	if err == nil && codec == "" {
		err = fmt.Errorf("%w: audio offers %s, parley is configured for %s", ErrBadOffer,
			strings.Join(offered, ", "), strings.Join(cfg.codecs(), ", "))
	}
	if err != nil {
		if cfg.Socket != nil {
			_ = cfg.Socket.Close()
		}
		return nil, "", err
	}
	p, err := newPeer(cfg, codec)
	if err != nil {
		return nil, "", err
	}
	p.pc.OnDataChannel(p.addChannel)
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		_ = p.Close()
		return nil, "", fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	sender, err := p.pc.AddTrack(p.track)
	if err != nil {
		_ = p.Close()
		return nil, "", fmt.Errorf("webrtc: add track: %w", err)
	}
	p.drainRTCP(sender)
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		_ = p.Close()
		return nil, "", fmt.Errorf("%w: answer: %w", ErrBadOffer, err)
	}
	sdp, err := p.setLocal(answer)
	if err != nil {
		_ = p.Close()
		return nil, "", err
	}
	p.startConnectTimer()
	return p, sdp, nil
}

// NewOffer makes the offering side, as a browser would: a send-receive
// audio track in the first codec of cfg.Codecs and one data channel per
// label. The returned offer carries every candidate; pass the far end's
// answer to SetAnswer. parley uses it to test and load-test its own WebRTC
// server.
func NewOffer(cfg Config, labels ...string) (*Peer, string, error) {
	p, err := newPeer(cfg, cfg.codecs()[0])
	if err != nil {
		return nil, "", err
	}
	tr, err := p.pc.AddTransceiverFromTrack(p.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	if err != nil {
		_ = p.Close()
		return nil, "", fmt.Errorf("webrtc: add transceiver: %w", err)
	}
	p.drainRTCP(tr.Sender())
	for _, label := range labels {
		dc, err := p.pc.CreateDataChannel(label, nil)
		if err != nil {
			_ = p.Close()
			return nil, "", fmt.Errorf("webrtc: data channel %q: %w", label, err)
		}
		p.addChannel(dc)
	}
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		_ = p.Close()
		return nil, "", fmt.Errorf("webrtc: create offer: %w", err)
	}
	sdp, err := p.setLocal(offer)
	if err != nil {
		_ = p.Close()
		return nil, "", err
	}
	return p, sdp, nil
}

// SetAnswer completes an offer made by NewOffer with the far end's answer.
func (p *Peer) SetAnswer(answerSDP string) error {
	if len(answerSDP) > MaxSDPSize {
		return fmt.Errorf("webrtc: answer of %d bytes exceeds %d", len(answerSDP), MaxSDPSize)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answerSDP}); err != nil {
		return fmt.Errorf("webrtc: set answer: %w", err)
	}
	p.startConnectTimer()
	return nil
}

func newPeer(cfg Config, codec string) (*Peer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		if cfg.Socket != nil {
			_ = cfg.Socket.Close()
		}
		return nil, err
	}
	enc, err := newEncoder(codec)
	if err != nil {
		if cfg.Socket != nil {
			_ = cfg.Socket.Close()
		}
		return nil, err
	}
	api, mux, err := cfg.api(codec)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(cfg.configuration())
	if err != nil {
		if mux != nil {
			_ = mux.Close()
		}
		return nil, fmt.Errorf("webrtc: new peer connection: %w", err)
	}
	capab, _ := capability(codec)
	track, err := webrtc.NewTrackLocalStaticRTP(capab, "audio", "parley")
	if err != nil {
		_ = pc.Close()
		if mux != nil {
			_ = mux.Close()
		}
		return nil, fmt.Errorf("webrtc: new track: %w", err)
	}
	p := &Peer{
		pc:        pc,
		mux:       mux,
		track:     track,
		cfg:       cfg,
		log:       cfg.Log,
		codec:     codec,
		audio:     make(chan []int16, audioQueue),
		free:      make(chan []int16, audioQueue),
		msgs:      make(chan DataMessage, messageQueue),
		out:       newPacketizer(enc, clockScale(codec), uint16(rand.Uint32()), rand.Uint32()),
		channels:  map[string]*dataChannel{},
		connected: make(chan struct{}),
		done:      make(chan struct{}),
	}
	for range audioQueue {
		p.free <- make([]int16, FrameSamples)
	}
	pc.OnConnectionStateChange(func(webrtc.PeerConnectionState) {
		// Handlers run on their own goroutines and may arrive out of
		// order: act on the current state, not the reported one.
		p.onState(pc.ConnectionState())
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeAudio || !p.trackTaken.CompareAndSwap(false, true) {
			return
		}
		if !p.enter() {
			return
		}
		defer p.wg.Done()
		p.readTrack(tr)
	})
	return p, nil
}

// enter registers a goroutine Close must wait for; false once closing.
func (p *Peer) enter() bool {
	p.wgMu.Lock()
	defer p.wgMu.Unlock()
	if p.closing {
		return false
	}
	p.wg.Add(1)
	return true
}

// setLocal sets the local description and waits for candidate gathering,
// returning the complete description.
func (p *Peer) setLocal(desc webrtc.SessionDescription) (string, error) {
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(desc); err != nil {
		return "", fmt.Errorf("webrtc: set local description: %w", err)
	}
	t := time.NewTimer(p.cfg.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		p.log.Warn().Dur("timeout", p.cfg.GatherTimeout).Msg("webrtc: candidate gathering timed out; answering with the candidates found so far")
	}
	ld := p.pc.LocalDescription()
	if ld == nil {
		return "", errors.New("webrtc: no local description")
	}
	return ld.SDP, nil
}

// drainRTCP reads the sender's RTCP so the report interceptor sees it.
func (p *Peer) drainRTCP(sender *webrtc.RTPSender) {
	if !p.enter() {
		return
	}
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
}

// readTrack decodes the inbound track into frames until it ends.
func (p *Peer) readTrack(tr *webrtc.TrackRemote) {
	if c := tr.Codec(); codecOf(c.MimeType) != p.codec {
		p.log.Warn().Str("codec", c.MimeType).Str("negotiated", p.codec).Msg("webrtc: inbound track in another codec; ignored")
		return
	}
	dec, err := newDecoder(p.codec)
	if err != nil {
		p.log.Error().Err(err).Msg("webrtc: inbound audio cannot be decoded")
		return
	}
	d := newDepacketizer(dec, uint8(tr.PayloadType()), clockScale(p.codec), p.emit)
	d.late, d.conceal, d.foreign = &p.late, &p.concealed, &p.foreign
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			p.foreign.Add(1)
			continue
		}
		d.push(&pkt)
	}
}

// emit hands one frame to the Audio channel, or drops it when the reader
// holds every buffer.
func (p *Peer) emit(frame []int16) {
	select {
	case b := <-p.free:
		copy(b, frame)
		p.framesIn.Add(1)
		p.audio <- b // never blocks: audio has room for every buffer
	default:
		p.droppedIn.Add(1)
	}
}

// addChannel tracks a data channel and forwards its messages.
func (p *Peer) addChannel(dc *webrtc.DataChannel) {
	c := &dataChannel{dc: dc, open: make(chan struct{})}
	label := dc.Label()
	p.dcMu.Lock()
	if _, dup := p.channels[label]; dup {
		p.dcMu.Unlock()
		p.log.Warn().Str("label", label).Msg("webrtc: second data channel with the same label ignored")
		return
	}
	p.channels[label] = c
	p.dcMu.Unlock()
	var openOnce sync.Once
	dc.OnOpen(func() { openOnce.Do(func() { close(c.open) }) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if len(m.Data) > MaxMessageSize {
			p.droppedMessages.Add(1)
			return
		}
		msg := DataMessage{Label: label, Text: m.IsString, Data: append([]byte(nil), m.Data...)}
		select {
		case p.msgs <- msg:
			p.messages.Add(1)
		default:
			p.droppedMessages.Add(1)
		}
	})
}

// onState follows the connection state: connected, a grace period while
// disconnected, and the end on failure or a close by the far end.
func (p *Peer) onState(s webrtc.PeerConnectionState) {
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	switch s {
	case webrtc.PeerConnectionStateConnected:
		if !p.isConnected {
			p.isConnected = true
			close(p.connected)
			p.log.Debug().Msg("webrtc: connected")
		}
		if p.connectTimer != nil {
			p.connectTimer.Stop()
		}
		if p.dropTimer != nil {
			p.dropTimer.Stop()
			p.dropTimer = nil
			p.log.Info().Msg("webrtc: reconnected")
		}
	case webrtc.PeerConnectionStateDisconnected:
		if p.dropTimer == nil {
			p.log.Info().Dur("grace", p.cfg.DropTimeout).Msg("webrtc: disconnected")
			p.dropTimer = time.AfterFunc(p.cfg.DropTimeout, func() {
				if p.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
					p.end(fmt.Errorf("%w: disconnected for %s", ErrDropped, p.cfg.DropTimeout))
				}
			})
		}
	case webrtc.PeerConnectionStateFailed:
		p.end(fmt.Errorf("%w: ice failed", ErrDropped))
	case webrtc.PeerConnectionStateClosed:
		p.end(ErrRemoteClosed) // a no-op after a local Close
	}
}

// startConnectTimer drops the peer if it does not connect in time.
func (p *Peer) startConnectTimer() {
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	if p.isConnected || p.connectTimer != nil {
		return
	}
	p.connectTimer = time.AfterFunc(p.cfg.ConnectTimeout, func() {
		p.stateMu.Lock()
		ok := p.isConnected
		p.stateMu.Unlock()
		if !ok {
			p.end(fmt.Errorf("%w: not connected within %s", ErrDropped, p.cfg.ConnectTimeout))
		}
	})
}

// end records why the peer ended and closes Done; the first reason wins.
func (p *Peer) end(err error) {
	p.endOnce.Do(func() {
		p.err = err
		close(p.done)
		if err != nil {
			p.log.Info().Err(err).Msg("webrtc: peer ended")
		}
	})
}

// Audio delivers inbound 20 ms frames in order. Give each frame back with
// Release once used; until then it is not overwritten.
func (p *Peer) Audio() <-chan []int16 { return p.audio }

// Release returns a frame received from Audio to the peer's pool.
func (p *Peer) Release(frame []int16) {
	if cap(frame) < FrameSamples {
		return
	}
	select {
	case p.free <- frame[:FrameSamples]:
	default: // not one of ours, or released twice
	}
}

// Messages delivers data-channel messages from the far end.
func (p *Peer) Messages() <-chan DataMessage { return p.msgs }

// Connected closes once the connection is first established.
func (p *Peer) Connected() <-chan struct{} { return p.connected }

// Done closes when the peer ended: closed here or by the far end, or
// dropped. Err says which.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Err is nil after a local Close, ErrRemoteClosed when the far end closed
// the connection and wraps ErrDropped when the network went away. It is
// only meaningful once Done is closed.
func (p *Peer) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Codec is the negotiated audio codec, CodecOpus or CodecPCMU.
func (p *Peer) Codec() string { return p.codec }

// State is the connection state as pion names it (new, connecting,
// connected, disconnected, failed, closed).
func (p *Peer) State() string { return p.pc.ConnectionState().String() }

// Stats returns a snapshot of the peer's counters.
func (p *Peer) Stats() Stats {
	return Stats{
		FramesIn: p.framesIn.Load(), FramesOut: p.framesOut.Load(), DroppedIn: p.droppedIn.Load(),
		LatePackets: p.late.Load(), ConcealedSamples: p.concealed.Load(), ForeignPackets: p.foreign.Load(),
		Messages: p.messages.Load(), DroppedMessages: p.droppedMessages.Load(),
	}
}

// WriteFrame sends pcm (8 kHz, normally one 20 ms frame) now as RTP of the
// negotiated codec; Opus pads a length it cannot code with silence up to
// the next frame length. Pacing is the caller's job. It returns ErrClosed
// once the peer ended.
func (p *Peer) WriteFrame(pcm []int16) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	select {
	case <-p.done:
		return ErrClosed
	default:
	}
	now := time.Now()
	for len(pcm) > 0 {
		n := min(len(pcm), maxPacketSamples)
		pkt, err := p.out.packet(pcm[:n], now)
		if err != nil {
			return err
		}
		if err := p.track.WriteRTP(pkt); err != nil {
			if errors.Is(err, io.ErrClosedPipe) {
				return ErrClosed
			}
			return fmt.Errorf("webrtc: write rtp: %w", err)
		}
		p.framesOut.Add(1)
		pcm = pcm[n:]
	}
	return nil
}

// WaitChannel waits until the data channel label is open.
func (p *Peer) WaitChannel(ctx context.Context, label string) error {
	for {
		p.dcMu.Lock()
		c := p.channels[label]
		p.dcMu.Unlock()
		if c != nil {
			select {
			case <-c.open:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("webrtc: wait for data channel %q: %w", label, ctx.Err())
			case <-p.done:
				return ErrClosed
			}
		}
		// The far end has not announced the channel yet.
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("webrtc: wait for data channel %q: %w", label, ctx.Err())
		case <-p.done:
			t.Stop()
			return ErrClosed
		}
	}
}

// SendText sends a text message on the open data channel label.
func (p *Peer) SendText(label, text string) error {
	p.dcMu.Lock()
	c := p.channels[label]
	p.dcMu.Unlock()
	if c == nil {
		return fmt.Errorf("%w: %q", ErrChannelNotOpen, label)
	}
	select {
	case <-c.open:
	default:
		return fmt.Errorf("%w: %q", ErrChannelNotOpen, label)
	}
	if err := c.dc.SendText(text); err != nil {
		return fmt.Errorf("webrtc: send on %q: %w", label, err)
	}
	return nil
}

// flush waits, at most closeFlush, for queued data-channel messages to
// leave.
func (p *Peer) flush() {
	deadline := time.Now().Add(closeFlush)
	for time.Now().Before(deadline) {
		pending := uint64(0)
		p.dcMu.Lock()
		for _, c := range p.channels {
			pending += c.dc.BufferedAmount()
		}
		p.dcMu.Unlock()
		if pending == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Close ends the peer (Err stays nil unless it had already ended), closes
// the connection and waits for its goroutines. It is idempotent.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() {
		p.flush()
		p.end(nil)
		p.stateMu.Lock()
		if p.dropTimer != nil {
			p.dropTimer.Stop()
		}
		if p.connectTimer != nil {
			p.connectTimer.Stop()
		}
		p.stateMu.Unlock()
		if err := p.pc.Close(); err != nil {
			p.closeErr = fmt.Errorf("webrtc: close: %w", err)
		}
		if p.mux != nil {
			_ = p.mux.Close()
		}
		p.wgMu.Lock()
		p.closing = true
		p.wgMu.Unlock()
		p.wg.Wait()
	})
	return p.closeErr
}
