package webrtc

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/parley-ai/parley/media"
)

// SampleRate is the rate of every frame a Peer delivers and accepts: PCMU's
// 8 kHz, so no resampling happens at the edge.
const SampleRate = 8000

// FrameSamples is one 20 ms frame at SampleRate.
var FrameSamples = media.FrameSamples(SampleRate)

const (
	// maxPacketSamples bounds one outbound packet (60 ms of PCMU).
	maxPacketSamples = 480
	// pauseAfter is how far the wall clock may run ahead of the outbound RTP
	// timeline before the next packet is treated as a new talkspurt: more
	// than the playout's lead, less than a word.
	pauseAfter = 100 * time.Millisecond
	// maxConcealSamples bounds the silence inserted for a gap in the
	// inbound stream (lost packets, browser DTX); larger jumps resync.
	maxConcealSamples = SampleRate
)

// packetizer turns outbound PCM into PCMU RTP packets on a timeline that
// follows the wall clock: consecutive frames advance the timestamp by their
// length, and a pause (nothing written for longer than pauseAfter) advances
// it by the pause, with the marker bit on the first packet of the new
// talkspurt (RFC 3551 §4.1), while sequence numbers stay consecutive so the
// far end never counts a pause as loss. It is not safe for concurrent use.
type packetizer struct {
	pkt     rtp.Packet
	payload []byte
	nextTS  uint32    // timestamp of the next sample to send
	due     time.Time // wall time at which the sample at nextTS is due
	started bool
}

func newPacketizer(seq uint16, ts uint32) *packetizer {
	p := &packetizer{payload: make([]byte, maxPacketSamples), nextTS: ts}
	p.pkt.Version = 2
	p.pkt.SequenceNumber = seq - 1
	return p
}

// packet encodes pcm (at most maxPacketSamples) sent at now and returns the
// packet to write; it stays valid until the next call.
func (p *packetizer) packet(pcm []int16, now time.Time) *rtp.Packet {
	if len(pcm) > maxPacketSamples {
		pcm = pcm[:maxPacketSamples]
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
		p.nextTS += skip
		p.due = p.due.Add(time.Duration(skip) * time.Second / SampleRate)
		marker = true
	}
	payload := p.payload[:len(pcm)]
	media.MulawEncode(payload, pcm)
	p.pkt.Marker = marker
	p.pkt.SequenceNumber++
	p.pkt.Timestamp = p.nextTS
	p.pkt.Payload = payload
	p.nextTS += uint32(len(pcm))
	p.due = p.due.Add(time.Duration(len(pcm)) * time.Second / SampleRate)
	return &p.pkt
}

// depacketizer turns inbound PCMU RTP packets into 20 ms PCM frames. It
// drops duplicates and packets older than the newest one, fills a gap in
// the timeline (lost packets, discontinuous transmission) with silence of
// the gap's length up to one second, and resyncs on larger jumps, so the
// frames keep the caller's timing for voice activity detection. It is not
// safe for concurrent use.
type depacketizer struct {
	acc      []int16
	pcm      []int16
	lastSeq  uint16
	nextTS   uint32
	started  bool
	late     *atomic.Uint64 // duplicate or reordered packets dropped
	conceal  *atomic.Uint64 // samples of silence inserted for gaps
	foreign  *atomic.Uint64 // packets that were not PCMU
	emitFunc func([]int16)
}

func newDepacketizer(emit func([]int16)) *depacketizer {
	return &depacketizer{
		late:     new(atomic.Uint64),
		conceal:  new(atomic.Uint64),
		foreign:  new(atomic.Uint64),
		acc:      make([]int16, 0, FrameSamples),
		pcm:      make([]int16, 0, maxPacketSamples),
		emitFunc: emit,
	}
}

// push handles one packet; emit is called with each completed frame, which
// is only valid during the call.
func (d *depacketizer) push(pkt *rtp.Packet) {
	if pkt.PayloadType != pcmuPayloadType {
		d.foreign.Add(1)
		return
	}
	if d.started {
		if delta := int16(pkt.SequenceNumber - d.lastSeq); delta <= 0 {
			d.late.Add(1)
			return
		}
		if gap := int32(pkt.Timestamp - d.nextTS); gap > 0 && gap <= maxConcealSamples {
			d.conceal.Add(uint64(gap))
			d.silence(int(gap))
		}
	}
	d.started = true
	d.lastSeq = pkt.SequenceNumber
	payload := pkt.Payload
	d.nextTS = pkt.Timestamp + uint32(len(payload))
	for len(payload) > 0 {
		n := min(len(payload), cap(d.pcm))
		pcm := d.pcm[:n]
		media.MulawDecode(pcm, payload[:n])
		d.write(pcm)
		payload = payload[n:]
	}
}

// silence appends n zero samples to the frame stream.
func (d *depacketizer) silence(n int) {
	for n > 0 {
		k := min(n, FrameSamples-len(d.acc))
		start := len(d.acc)
		d.acc = d.acc[:start+k]
		clear(d.acc[start:])
		n -= k
		if len(d.acc) == FrameSamples {
			d.emitFunc(d.acc)
			d.acc = d.acc[:0]
		}
	}
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
