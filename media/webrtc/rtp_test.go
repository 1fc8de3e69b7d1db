package webrtc

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/parley-ai/parley/media"
)

func TestPacketizerTimeline(t *testing.T) {
	frame := make([]int16, FrameSamples)
	t0 := time.Unix(1000, 0)
	type write struct {
		at         time.Duration
		wantTS     uint32 // relative to the first packet
		wantMarker bool
	}
	tests := []struct {
		name   string
		writes []write
	}{
		{"steady frames", []write{{0, 0, true}, {20 * time.Millisecond, 160, false}, {40 * time.Millisecond, 320, false}}},
		{"burst lead then pacing", []write{{0, 0, true}, {0, 160, false}, {20 * time.Millisecond, 320, false}, {40 * time.Millisecond, 480, false}}},
		{"jitter below the pause threshold", []write{{0, 0, true}, {90 * time.Millisecond, 160, false}}},
		{"pause of one second", []write{{0, 0, true}, {20 * time.Millisecond, 160, false}, {1040 * time.Millisecond, 8320, true}, {1060 * time.Millisecond, 8480, false}}},
		{"pause rounds down to whole frames", []write{{0, 0, true}, {20 * time.Millisecond, 160, false}, {1033 * time.Millisecond, 8160, true}}},
		{"two pauses", []write{{0, 0, true}, {500 * time.Millisecond, 4000, true}, {2 * time.Second, 16000, true}}},
	}
	for _, codec := range []string{CodecPCMU, CodecOpus} {
		for _, tc := range tests {
			t.Run(codec+"/"+tc.name, func(t *testing.T) {
				const seq0, ts0 = 65534, 4294967000 // both wrap during the test
				enc, err := newEncoder(codec)
				if err != nil {
					t.Fatal(err)
				}
				scale := clockScale(codec)
				p := newPacketizer(enc, scale, seq0, ts0)
				for i, w := range tc.writes {
					pkt, err := p.packet(frame, t0.Add(w.at))
					if err != nil {
						t.Fatal(err)
					}
					if got, want := pkt.SequenceNumber, uint16(seq0+i); got != want {
						t.Errorf("write %d: seq %d, want %d (consecutive across pauses)", i, got, want)
					}
					if got := pkt.Timestamp - ts0; got != w.wantTS*scale {
						t.Errorf("write %d: ts +%d, want +%d", i, got, w.wantTS*scale)
					}
					if pkt.Marker != w.wantMarker {
						t.Errorf("write %d: marker %v, want %v", i, pkt.Marker, w.wantMarker)
					}
					if codec == CodecPCMU && len(pkt.Payload) != FrameSamples || len(pkt.Payload) == 0 {
						t.Errorf("write %d: payload %d bytes", i, len(pkt.Payload))
					}
				}
			})
		}
	}
}

func TestPacketizerEncodesPCMU(t *testing.T) {
	pcm := []int16{0, 1000, -1000, 32767, -32768, 12345}
	p := newPacketizer(pcmuEncoder{}, 1, 0, 0)
	pkt, err := p.packet(pcm, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(pcm))
	media.MulawEncode(want, pcm)
	if !slices.Equal(pkt.Payload, want) {
		t.Fatalf("payload %v, want %v", pkt.Payload, want)
	}
	if pkt.Version != 2 {
		t.Fatalf("rtp version %d", pkt.Version)
	}
}

// pcmuPacket builds an inbound packet whose samples are seq-numbered ramps.
func pcmuPacket(seq uint16, ts uint32, samples int, pt uint8) *rtp.Packet {
	pcm := make([]int16, samples)
	for i := range pcm {
		pcm[i] = int16(1000 + int(seq)%8*1000)
	}
	payload := make([]byte, samples)
	media.MulawEncode(payload, pcm)
	return &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts}, Payload: payload}
}

func TestDepacketizer(t *testing.T) {
	type in struct {
		seq     uint16
		ts      uint32
		samples int
		pt      uint8
	}
	tests := []struct {
		name        string
		packets     []in
		wantFrames  int
		wantSilence int // frames that are all zero
		wantLate    uint64
		wantForeign uint64
		wantConceal uint64
	}{
		{"20 ms packets", []in{{1, 0, 160, 0}, {2, 160, 160, 0}, {3, 320, 160, 0}}, 3, 0, 0, 0, 0},
		{"10 ms packets reframed", []in{{1, 0, 80, 0}, {2, 80, 80, 0}, {3, 160, 80, 0}, {4, 240, 80, 0}}, 2, 0, 0, 0, 0},
		{"30 ms packets reframed", []in{{1, 0, 240, 0}, {2, 240, 240, 0}}, 3, 0, 0, 0, 0},
		{"duplicate and reordered dropped", []in{{5, 800, 160, 0}, {5, 800, 160, 0}, {4, 640, 160, 0}, {6, 960, 160, 0}}, 2, 0, 2, 0, 0},
		{"lost packets concealed", []in{{1, 0, 160, 0}, {4, 480, 160, 0}}, 4, 2, 0, 0, 320},
		{"sequence wraps", []in{{65535, 0, 160, 0}, {0, 160, 160, 0}, {1, 320, 160, 0}}, 3, 0, 0, 0, 0},
		{"huge jump resyncs", []in{{1, 0, 160, 0}, {2, 1_000_000, 160, 0}}, 2, 0, 0, 0, 0},
		{"another payload type", []in{{1, 0, 160, 8}, {2, 160, 160, 111}}, 0, 0, 0, 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var frames [][]int16
			d := newDepacketizer(pcmuDecoder{}, pcmuPayloadType, 1, func(f []int16) {
				if len(f) != FrameSamples {
					t.Fatalf("frame of %d samples", len(f))
				}
				frames = append(frames, slices.Clone(f))
			})
			for _, p := range tc.packets {
				d.push(pcmuPacket(p.seq, p.ts, p.samples, p.pt))
			}
			silent := 0
			for _, f := range frames {
				if !slices.ContainsFunc(f, func(s int16) bool { return s != 0 }) {
					silent++
				}
			}
			if len(frames) != tc.wantFrames || silent != tc.wantSilence {
				t.Errorf("%d frames (%d silent), want %d (%d silent)", len(frames), silent, tc.wantFrames, tc.wantSilence)
			}
			if d.late.Load() != tc.wantLate || d.foreign.Load() != tc.wantForeign || d.conceal.Load() != tc.wantConceal {
				t.Errorf("late %d foreign %d conceal %d, want %d %d %d", d.late.Load(), d.foreign.Load(), d.conceal.Load(), tc.wantLate, tc.wantForeign, tc.wantConceal)
			}
		})
	}
}

// BenchmarkPacketize is the cost of coding one 20 ms frame of speech-like
// audio (a chirp) into an RTP packet, per codec.
func BenchmarkPacketize(b *testing.B) {
	for _, codec := range []string{CodecPCMU, CodecOpus} {
		b.Run(codec, func(b *testing.B) {
			enc, err := newEncoder(codec)
			if err != nil {
				b.Fatal(err)
			}
			p := newPacketizer(enc, clockScale(codec), 0, 0)
			sig := chirp(SampleRate)
			now := time.Now()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				off := i % (SampleRate / FrameSamples) * FrameSamples
				if _, err := p.packet(sig[off:off+FrameSamples], now.Add(time.Duration(i)*media.FrameDuration)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDepacketize is the cost of decoding one 20 ms packet, per codec.
func BenchmarkDepacketize(b *testing.B) {
	for _, codec := range []string{CodecPCMU, CodecOpus} {
		b.Run(codec, func(b *testing.B) {
			pkts := encodeAll(b, codec, chirp(SampleRate))
			dec, err := newDecoder(codec)
			if err != nil {
				b.Fatal(err)
			}
			_, pt := capability(codec)
			d := newDepacketizer(dec, pt, clockScale(codec), func([]int16) {})
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				pkt := *pkts[i%len(pkts)]
				pkt.SequenceNumber = uint16(i)
				pkt.Timestamp = uint32(i*FrameSamples) * clockScale(codec)
				d.push(&pkt)
			}
		})
	}
}

// encodeAll codes pcm into 20 ms packets of codec, as a sender would.
func encodeAll(tb testing.TB, codec string, pcm []int16) []*rtp.Packet {
	tb.Helper()
	enc, err := newEncoder(codec)
	if err != nil {
		tb.Fatal(err)
	}
	_, pt := capability(codec)
	p := newPacketizer(enc, clockScale(codec), 1, 0)
	t0 := time.Now()
	var out []*rtp.Packet
	for i := 0; i+FrameSamples <= len(pcm); i += FrameSamples {
		pkt, err := p.packet(pcm[i:i+FrameSamples], t0.Add(time.Duration(i/FrameSamples)*media.FrameDuration))
		if err != nil {
			tb.Fatal(err)
		}
		c := pkt.Clone()
		c.PayloadType = pt
		out = append(out, c)
	}
	return out
}

// TestOpusRoundTrip codes a chirp through the Opus packetizer and
// depacketizer: the audio comes back (after the codec's delay) close to
// what was sent, a lost packet is concealed with audio rather than
// silence, and a corrupt payload costs one concealed frame, not the stream.
func TestOpusRoundTrip(t *testing.T) {
	sig := chirp(SampleRate)
	pkts := encodeAll(t, CodecOpus, sig)
	for _, p := range pkts {
		if len(p.Payload) >= FrameSamples/2 {
			t.Fatalf("opus payload of %d bytes: not compressed", len(p.Payload))
		}
	}
	decode := func(drop, corrupt int) ([]int16, *depacketizer) {
		dec, err := newDecoder(CodecOpus)
		if err != nil {
			t.Fatal(err)
		}
		var got []int16
		d := newDepacketizer(dec, opusPayloadType, clockScale(CodecOpus), func(f []int16) { got = append(got, f...) })
		for i, p := range pkts {
			switch i {
			case drop:
				continue
			case corrupt:
				c := p.Clone()
				c.Payload = []byte{0xff, 0xff, 0xff} // code 3 with an impossible frame count
				d.push(c)
				continue
			}
			d.push(p)
		}
		return got, d
	}
	got, d := decode(-1, -1)
	if len(got) != len(sig) || d.conceal.Load() != 0 || d.foreign.Load() != 0 {
		t.Fatalf("%d samples back of %d, conceal %d, foreign %d", len(got), len(sig), d.conceal.Load(), d.foreign.Load())
	}
	if c := bestCorrelation(sig[800:7200], got); c < 0.8 {
		t.Fatalf("decoded chirp correlates %.2f with the sent one, want >= 0.8", c)
	}

	got, d = decode(20, -1)
	if len(got) != len(sig) || d.conceal.Load() != uint64(FrameSamples) {
		t.Fatalf("lost packet: %d samples of %d, concealed %d", len(got), len(sig), d.conceal.Load())
	}
	if !slices.ContainsFunc(got[20*FrameSamples:21*FrameSamples], func(s int16) bool { return s != 0 }) {
		t.Fatal("a lost opus packet was filled with silence, want concealment")
	}

	got, d = decode(-1, 30)
	if len(got) != len(sig) || d.foreign.Load() != 1 || d.conceal.Load() != uint64(FrameSamples) {
		t.Fatalf("corrupt packet: %d samples of %d, foreign %d, concealed %d", len(got), len(sig), d.foreign.Load(), d.conceal.Load())
	}
}

// TestOpusPadsOddLengths: a write Opus cannot code as is goes out padded
// to the next frame length and the timeline advances by that length.
func TestOpusPadsOddLengths(t *testing.T) {
	enc, err := newEncoder(CodecOpus)
	if err != nil {
		t.Fatal(err)
	}
	p := newPacketizer(enc, clockScale(CodecOpus), 0, 0)
	now := time.Now()
	first, err := p.packet(make([]int16, 100), now)
	if err != nil {
		t.Fatal(err)
	}
	ts0 := first.Timestamp
	second, err := p.packet(make([]int16, FrameSamples), now.Add(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if got := second.Timestamp - ts0; got != 160*clockScale(CodecOpus) {
		t.Fatalf("100 samples advanced the timeline by %d ticks, want %d (padded to 20 ms)", got, 160*clockScale(CodecOpus))
	}
}
