package webrtc

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/parley-ai/parley/media"
)

// SampleRate is the rate of every frame a Peer delivers and accepts: 8 kHz,
// the rate of the phone network, the recognizer's input and PCMU; Opus is
// coded narrowband at this rate, so no resampling happens at the edge.
const SampleRate = 8000

// FrameSamples is one 20 ms frame at SampleRate.
var FrameSamples = media.FrameSamples(SampleRate)

const (
	// maxPacketSamples bounds one outbound packet (60 ms).
	maxPacketSamples = 480
	// maxPayload bounds one RTP payload in and out (an Ethernet MTU).
	maxPayload = 1500
	// pauseAfter is how far the wall clock may run ahead of the outbound RTP
	// timeline before the next packet is treated as a new talkspurt: more
	// than the playout's lead, less than a word.
	pauseAfter = 100 * time.Millisecond
	// maxConcealSamples bounds the concealment inserted for a gap in the
	// inbound stream (lost packets, browser DTX); larger jumps resync.
	maxConcealSamples = SampleRate
)

// packetizer turns outbound PCM into RTP packets of the negotiated codec
// on a timeline that follows the wall clock: consecutive frames advance the
// timestamp by their length, and a pause (nothing written for longer than
// pauseAfter) advances it by the pause, with the marker bit on the first
// packet of the new talkspurt (RFC 3551 §4.1), while sequence numbers stay
// consecutive so the far end never counts a pause as loss. It is not safe
// for concurrent use.
type packetizer struct {
	pkt     rtp.Packet
	enc     encoder
	scale   uint32 // RTP clock ticks per sample
	payload []byte
	nextTS  uint32    // RTP timestamp of the next sample to send
	due     time.Time // wall time at which the sample at nextTS is due
	started bool
}

func newPacketizer(enc encoder, scale uint32, seq uint16, ts uint32) *packetizer {
	p := &packetizer{enc: enc, scale: scale, payload: make([]byte, maxPayload), nextTS: ts}
	p.pkt.Version = 2
	p.pkt.SequenceNumber = seq - 1
	return p
}

// packet encodes pcm (at most maxPacketSamples) sent at now and returns the
// packet to write, valid until the next call.
func (p *packetizer) packet(pcm []int16, now time.Time) (*rtp.Packet, error) {
	if len(pcm) > maxPacketSamples {
		pcm = pcm[:maxPacketSamples]
	}
	n, samples, err := p.enc.encode(pcm, p.payload)
	if err != nil {
		return nil, err
	}
	marker := false
	switch {
	case !p.started:
		p.started, marker = true, true
		p.due = now
	case now.Sub(p.due) > pauseAfter:
		gap := now.Sub(p.due)
		// Whole frames, so timestamps stay on the 20 ms grid the far end
		// reframes on.
		skip := uint32(int64(gap) * SampleRate / int64(time.Second))
		skip -= skip % uint32(FrameSamples)
		p.nextTS += skip * p.scale
		p.due = p.due.Add(time.Duration(skip) * time.Second / SampleRate)
		marker = true
	}
	p.pkt.Marker = marker
	p.pkt.SequenceNumber++
	p.pkt.Timestamp = p.nextTS
	p.pkt.Payload = p.payload[:n]
	p.nextTS += uint32(samples) * p.scale
	p.due = p.due.Add(time.Duration(samples) * time.Second / SampleRate)
	return &p.pkt, nil
}

// depacketizer turns inbound RTP packets of the negotiated codec into
// 20 ms PCM frames. It drops duplicates and packets older than the newest
// one, fills a gap in the timeline of up to one second (lost packets with
// the codec's concealment — Opus's, or silence for PCMU —, a sender's
// pause with silence) and resyncs on larger jumps, so the frames keep the
// caller's timing for voice activity detection. It is not safe for
// concurrent use.
type depacketizer struct {
	dec      decoder
	pt       uint8  // the negotiated payload type
	scale    uint32 // RTP clock ticks per sample
	acc      []int16
	pcm      []int16
	gap      []int16
	lastSeq  uint16
	nextTS   uint32
	started  bool
	late     *atomic.Uint64 // duplicate or reordered packets dropped
	conceal  *atomic.Uint64 // samples inserted for gaps
	foreign  *atomic.Uint64 // packets of another payload type, or undecodable
	emitFunc func([]int16)
}

func newDepacketizer(dec decoder, pt uint8, scale uint32, emit func([]int16)) *depacketizer {
	return &depacketizer{
		dec:      dec,
		pt:       pt,
		scale:    scale,
		late:     new(atomic.Uint64),
		conceal:  new(atomic.Uint64),
		foreign:  new(atomic.Uint64),
		acc:      make([]int16, 0, FrameSamples),
		pcm:      make([]int16, maxPayload),
		gap:      make([]int16, maxConcealSamples),
		emitFunc: emit,
	}
}

// push handles one packet; emit is called with each completed frame, which
// is only valid during the call.
func (d *depacketizer) push(pkt *rtp.Packet) {
	if pkt.PayloadType != d.pt {
		d.foreign.Add(1)
		return
	}
	if d.started {
		delta := int16(pkt.SequenceNumber - d.lastSeq)
		if delta <= 0 {
			d.late.Add(1)
			return
		}
		if gap := int32(pkt.Timestamp-d.nextTS) / int32(d.scale); gap > 0 && gap <= maxConcealSamples {
			// Missing sequence numbers are lost audio; a jump in time
			// alone is the sender's pause (a new talkspurt): silence.
			d.concealed(int(gap), delta > 1)
		}
	}
	d.started = true
	d.lastSeq = pkt.SequenceNumber
	n, err := d.dec.decode(pkt.Payload, d.pcm)
	if err != nil {
		// Undecodable: conceal a frame in its place.
		d.foreign.Add(1)
		d.concealed(FrameSamples, true)
		n = FrameSamples
	} else {
		d.write(d.pcm[:n])
	}
	d.nextTS = pkt.Timestamp + uint32(n)*d.scale
}

// concealed appends n samples for audio that never came: the codec's
// concealment for lost audio, silence for a pause.
func (d *depacketizer) concealed(n int, lost bool) {
	d.conceal.Add(uint64(n))
	g := d.gap[:n]
	if lost {
		d.dec.conceal(g)
	} else {
		clear(g)
	}
	d.write(g)
}

// write appends pcm to the frame stream, emitting whole frames.
func (d *depacketizer) write(pcm []int16) {
	for len(pcm) > 0 {
		if len(d.acc) == 0 && len(pcm) >= FrameSamples {
			d.emitFunc(pcm[:FrameSamples])
			pcm = pcm[FrameSamples:]
			continue
		}
		k := copy(d.acc[len(d.acc):FrameSamples], pcm)
		d.acc = d.acc[:len(d.acc)+k]
		pcm = pcm[k:]
		if len(d.acc) == FrameSamples {
			d.emitFunc(d.acc)
			d.acc = d.acc[:0]
		}
	}
}
