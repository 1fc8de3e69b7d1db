package webrtc

import (
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testConfig is a loopback configuration with short timeouts so a dropped
// peer ends quickly.
func testConfig() Config {
	return Config{
		LoopbackOnly:           true,
		ICEDisconnectedTimeout: 2 * time.Second,
		DropTimeout:            time.Second,
		ConnectTimeout:         10 * time.Second,
	}
}

// cutConn is a UDP socket whose traffic can be cut to simulate a network
// that went away without a goodbye.
type cutConn struct {
	net.PacketConn
	cut atomic.Bool
}

func (c *cutConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.cut.Load() {
			return n, addr, err
		}
	}
}

func (c *cutConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// connect makes an offering and an answering peer on loopback, connected,
// with the given data channels.
func connect(t testing.TB, offerCfg, answerCfg Config, labels ...string) (offerer, answerer *Peer) {
	t.Helper()
	offerer, offer, err := NewOffer(offerCfg, labels...)
	if err != nil {
		t.Fatalf("NewOffer: %v", err)
	}
	t.Cleanup(func() { _ = offerer.Close() })
	answerer, answer, err := NewPeer(answerCfg, offer)
	if err != nil {
		t.Fatalf("NewPeer: %v", err)
	}
	t.Cleanup(func() { _ = answerer.Close() })
	if err := offerer.SetAnswer(answer); err != nil {
		t.Fatalf("SetAnswer: %v", err)
	}
	for _, p := range []*Peer{offerer, answerer} {
		select {
		case <-p.Connected():
		case <-p.Done():
			t.Fatalf("peer ended before connecting: %v", p.Err())
		case <-time.After(15 * time.Second):
			t.Fatalf("peer not connected; state %s", p.State())
		}
	}
	return offerer, answerer
}

// chirp is a 300→3000 Hz sweep: unlike a tone it correlates with itself
// at one lag only.
func chirp(n int) []int16 {
	out := make([]int16, n)
	dur := float64(n) / SampleRate
	for i := range out {
		tt := float64(i) / SampleRate
		f := 300 + (3000-300)*tt/(2*dur)
		out[i] = int16(8000 * math.Sin(2*math.Pi*f*tt))
	}
	return out
}

// bestCorrelation is the highest normalized cross-correlation of want
// against got at any lag.
func bestCorrelation(want, got []int16) float64 {
	best := 0.0
	var ew float64
	for _, s := range want {
		ew += float64(s) * float64(s)
	}
	for lag := 0; lag+len(want) <= len(got); lag++ {
		var dot, eg float64
		for i, s := range want {
			g := float64(got[lag+i])
			dot += float64(s) * g
			eg += g * g
		}
		if eg > 0 {
			if c := dot / math.Sqrt(ew*eg); c > best {
				best = c
			}
		}
	}
	return best
}

// segmentsFound splits want into n pieces and counts those found in got
// with a normalized correlation of at least min. A piece the machine's
// load cost (a frame dropped because the reader was descheduled for half
// a second) fails alone; broken audio fails them all.
func segmentsFound(want, got []int16, n int, min float64) int {
	size := len(want) / n
	found := 0
	for i := range n {
		if bestCorrelation(want[i*size:(i+1)*size], got) >= min {
			found++
		}
	}
	return found
}

// stripGaps removes runs of at least 40 exact-zero samples: the silence a
// receiver inserts where the sender's timeline jumped (a sender stalled by
// a loaded machine: real-time behaviour, not lost audio). Sent audio is
// never 5 ms of exact zeros.
func stripGaps(pcm []int16) []int16 {
	out := make([]int16, 0, len(pcm))
	run := 0
	for _, s := range pcm {
		if s != 0 {
			if run > 0 && run < 40 {
				out = append(out, make([]int16, run)...)
			}
			run = 0
			out = append(out, s)
			continue
		}
		run++
	}
	return out
}

// sendPaced writes pcm in 20 ms frames, one per 20 ms.
func sendPaced(t *testing.T, p *Peer, pcm []int16) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(pcm) >= FrameSamples {
		if err := p.WriteFrame(pcm[:FrameSamples]); err != nil {
			t.Errorf("WriteFrame: %v", err)
			return
		}
		pcm = pcm[FrameSamples:]
		<-tick.C
	}
}

// receive collects n samples of sent audio from p's Audio, plus the
// silence the peer inserts where the sender's timeline jumped.
func receive(t *testing.T, p *Peer, n int) []int16 {
	t.Helper()
	var got []int16
	timeout := time.After(20 * time.Second)
	s0 := p.Stats()
	for {
		s := p.Stats()
		if uint64(len(got))+(s.DroppedIn-s0.DroppedIn+1)*uint64(FrameSamples) > uint64(n)+s.ConcealedSamples-s0.ConcealedSamples {
			return got
		}
		select {
		case f := <-p.Audio():
			got = append(got, f...)
			p.Release(f)
		case <-p.Done():
			t.Fatalf("peer ended after %d of %d samples: %v", len(got), n, p.Err())
		case <-timeout:
			t.Fatalf("received %d of %d samples (stats %+v, before %+v)", len(got), n, p.Stats(), s0)
		}
	}
}

// TestPeerAudioBothWays sends a chirp each way in each codec. Opus codes
// the waveform less exactly than G.711, hence its lower correlation bound.
func TestPeerAudioBothWays(t *testing.T) {
	for _, codec := range []struct {
		name    string
		minCorr float64
	}{{CodecPCMU, 0.95}, {CodecOpus, 0.8}} {
		t.Run(codec.name, func(t *testing.T) {
			ocfg := testConfig()
			ocfg.Codecs = []string{codec.name}
			offerer, answerer := connect(t, ocfg, testConfig())
			if offerer.Codec() != codec.name || answerer.Codec() != codec.name {
				t.Fatalf("codecs %s / %s, want %s", offerer.Codec(), answerer.Codec(), codec.name)
			}
			sig := chirp(SampleRate) // 1 s
			// Lead-in and tail of silence so the chirp arrives whole.
			padded := append(append(make([]int16, SampleRate/5), sig...), make([]int16, SampleRate/2)...)
			tests := []struct {
				name     string
				from, to *Peer
			}{
				{"offerer to answerer", offerer, answerer},
				{"answerer to offerer", answerer, offerer},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					done := make(chan struct{})
					go func() { defer close(done); sendPaced(t, tc.from, padded) }()
					got := receive(t, tc.to, len(padded))
					<-done
					if n := segmentsFound(sig[80:len(sig)-80], stripGaps(got), 10, codec.minCorr); n < 9 {
						t.Fatalf("%d of 10 pieces of the sent chirp arrived (correlation >= %.2f), want >= 9", n, codec.minCorr)
					}
				})
			}
			if s := answerer.Stats(); s.FramesIn == 0 || s.FramesOut == 0 || s.ForeignPackets != 0 {
				t.Fatalf("stats %+v: want frames both ways, none foreign", s)
			}
		})
	}
}

// TestPeerCodecNegotiation: the answer takes the first configured codec
// the offer has, and an offer without one is refused as a bad offer.
func TestPeerCodecNegotiation(t *testing.T) {
	pcmuOnly := testConfig()
	pcmuOnly.Codecs = []string{CodecPCMU}
	opusOnly := testConfig()
	opusOnly.Codecs = []string{CodecOpus}
	if o, a := connect(t, pcmuOnly, testConfig()); o.Codec() != CodecPCMU || a.Codec() != CodecPCMU {
		t.Fatalf("pcmu offer to the default answerer: %s / %s", o.Codec(), a.Codec())
	}
	offerer, offer, err := NewOffer(opusOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer offerer.Close()
	p, _, err := NewPeer(pcmuOnly, offer)
	if !errors.Is(err, ErrBadOffer) || !strings.Contains(err.Error(), "configured for pcmu") {
		if p != nil {
			_ = p.Close()
		}
		t.Fatalf("opus-only offer to a pcmu-only answerer: %v, want ErrBadOffer", err)
	}
	if _, _, err := NewOffer(Config{Codecs: []string{"g722"}}); err == nil {
		t.Fatal("NewOffer with an unknown codec: no error")
	}
}

func TestPeerDataChannel(t *testing.T) {
	offerer, answerer := connect(t, testConfig(), testConfig(), "dtmf", "control")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := offerer.WaitChannel(ctx, "dtmf"); err != nil {
		t.Fatal(err)
	}
	if err := offerer.SendText("dtmf", "5"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-answerer.Messages():
		if m.Label != "dtmf" || string(m.Data) != "5" || !m.Text {
			t.Fatalf("message %+v, want text 5 on dtmf", m)
		}
	case <-ctx.Done():
		t.Fatal("no message")
	}
	// And back, on the channel the browser opened.
	if err := answerer.WaitChannel(ctx, "control"); err != nil {
		t.Fatal(err)
	}
	if err := answerer.SendText("control", `{"type":"hangup"}`); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-offerer.Messages():
		if m.Label != "control" || string(m.Data) != `{"type":"hangup"}` {
			t.Fatalf("message %+v", m)
		}
	case <-ctx.Done():
		t.Fatal("no message back")
	}
	if err := answerer.SendText("nope", "x"); !errors.Is(err, ErrChannelNotOpen) {
		t.Fatalf("SendText on an unknown channel = %v, want ErrChannelNotOpen", err)
	}
}

func TestPeerEnd(t *testing.T) {
	tests := []struct {
		name    string
		end     func(offerer, answerer *Peer, cut *cutConn)
		wantErr error // of the answerer
	}{
		{"closed here", func(_, a *Peer, _ *cutConn) { _ = a.Close() }, nil},
		{"closed by the far end", func(o, _ *Peer, _ *cutConn) { _ = o.Close() }, ErrRemoteClosed},
		{"network cut", func(_, _ *Peer, c *cutConn) { c.cut.Store(true) }, ErrDropped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cut := &cutConn{PacketConn: conn}
			ocfg := testConfig()
			ocfg.Socket = cut
			offerer, answerer := connect(t, ocfg, testConfig())
			tc.end(offerer, answerer, cut)
			select {
			case <-answerer.Done():
			case <-time.After(20 * time.Second):
				t.Fatalf("answerer did not end; state %s", answerer.State())
			}
			if err := answerer.Err(); !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("Err = %v, want %v", err, tc.wantErr)
			}
			if err := answerer.WriteFrame(make([]int16, FrameSamples)); !errors.Is(err, ErrClosed) {
				t.Fatalf("WriteFrame after the end = %v, want ErrClosed", err)
			}
			if err := answerer.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := answerer.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

func TestNewPeerBadOffer(t *testing.T) {
	tests := []struct{ name, sdp string }{
		{"empty", ""},
		{"not sdp", "hello"},
		{"no ice credentials", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := NewPeer(testConfig(), tc.sdp)
			if !errors.Is(err, ErrBadOffer) {
				if p != nil {
					_ = p.Close()
				}
				t.Fatalf("NewPeer = %v, want ErrBadOffer", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"ports", Config{PortMin: 10000, PortMax: 10100}, true},
		{"half a range", Config{PortMin: 10000}, false},
		{"inverted range", Config{PortMin: 10100, PortMax: 10000}, false},
		{"stun", Config{ICEServers: []string{"stun:stun.example.com:3478"}}, true},
		{"bad ice url", Config{ICEServers: []string{"http://x"}}, false},
		{"nat ip", Config{NAT1To1IPs: []string{"203.0.113.7"}}, true},
		{"bad nat ip", Config{NAT1To1IPs: []string{"example.com"}}, false},
		{"codecs", Config{Codecs: []string{CodecPCMU, CodecOpus}}, true},
		{"unknown codec", Config{Codecs: []string{"pcma"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func BenchmarkWriteFrame(b *testing.B) {
	offerer, answerer := connect(b, testConfig(), testConfig())
	drained := make(chan struct{})
	defer func() { _ = offerer.Close(); _ = answerer.Close(); <-drained }()
	frame := chirp(FrameSamples)
	go func() {
		defer close(drained)
		for {
			select {
			case f := <-offerer.Audio():
				offerer.Release(f)
			case <-offerer.Done():
				return
			}
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		if err := answerer.WriteFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}
