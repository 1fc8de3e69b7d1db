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
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const seq0, ts0 = 65534, 4294967000 // both wrap during the test
			p := newPacketizer(seq0, ts0)
			for i, w := range tc.writes {
				pkt := p.packet(frame, t0.Add(w.at))
				if got, want := pkt.SequenceNumber, uint16(seq0+i); got != want {
					t.Errorf("write %d: seq %d, want %d (consecutive across pauses)", i, got, want)
				}
				if got := pkt.Timestamp - ts0; got != w.wantTS {
					t.Errorf("write %d: ts +%d, want +%d", i, got, w.wantTS)
				}
				if pkt.Marker != w.wantMarker {
					t.Errorf("write %d: marker %v, want %v", i, pkt.Marker, w.wantMarker)
				}
				if len(pkt.Payload) != FrameSamples {
					t.Errorf("write %d: payload %d bytes", i, len(pkt.Payload))
				}
			}
		})
	}
}

func TestPacketizerEncodesPCMU(t *testing.T) {
	pcm := []int16{0, 1000, -1000, 32767, -32768, 12345}
	p := newPacketizer(0, 0)
	pkt := p.packet(pcm, time.Now())
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
		{"not pcmu", []in{{1, 0, 160, 8}, {2, 160, 160, 111}}, 0, 0, 0, 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var frames [][]int16
			d := newDepacketizer(func(f []int16) {
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

func BenchmarkPacketize(b *testing.B) {
	p := newPacketizer(0, 0)
	frame := make([]int16, FrameSamples)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = p.packet(frame, now.Add(time.Duration(i)*media.FrameDuration))
	}
}

func BenchmarkDepacketize(b *testing.B) {
	d := newDepacketizer(func([]int16) {})
	pkt := pcmuPacket(0, 0, FrameSamples, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		pkt.SequenceNumber = uint16(i)
		pkt.Timestamp = uint32(i * FrameSamples)
		d.push(pkt)
	}
}
