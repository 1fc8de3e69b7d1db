package webrtc

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-ai/parley"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
)

func TestCallAudioBothWays(t *testing.T) {
	_, base, calls := startServer(t, Config{}, true)
	browser, call, answer := dial(t, base, peerConfig(), calls)

	info := call.leg.Info()
	if info.Channel != parley.ChannelWebRTC || info.CallID != answer.CallID || info.From != "browser:127.0.0.1" || call.leg.SampleRate() != 8000 {
		t.Fatalf("info %+v rate %d, want webrtc call %s from browser:127.0.0.1 at 8000", info, call.leg.SampleRate(), answer.CallID)
	}
	if !strings.HasPrefix(info.CallID, "WR") || len(info.CallID) != 34 {
		t.Fatalf("call id %q", info.CallID)
	}

	sig := chirp(8000)
	padded := append(append(make([]int16, 1600), sig...), make([]int16, 4000)...)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for pcm := padded; len(pcm) >= 160; pcm = pcm[160:] {
			if browser.WriteFrame(pcm[:160]) != nil {
				return
			}
			<-tick.C
		}
	}()
	var back []int16
	timeout := time.After(20 * time.Second)
	// Count only sent audio: a sender stalled by a loaded machine makes the
	// timeline jump and the browser peer inserts silence there.
	s0 := browser.Stats()
	for {
		s := browser.Stats()
		if uint64(len(back))+(s.DroppedIn-s0.DroppedIn+1)*160 > uint64(len(padded))+s.ConcealedSamples-s0.ConcealedSamples {
			break
		}
		select {
		case f := <-browser.Audio():
			back = append(back, f...)
			browser.Release(f)
		case <-timeout:
			t.Fatalf("browser got %d of %d samples back", len(back), len(padded))
		}
	}
	tests := []struct {
		name string
		got  []int16
		min  float64
	}{
		{"caller audio at parley", call.rec.samples(), 0.95},
		{"echo at the browser (PCMU twice)", back, 0.9},
	}
	for _, tc := range tests {
		if n := segmentsFound(sig[80:len(sig)-80], stripGaps(tc.got), 10, tc.min); n < 9 {
			t.Errorf("%s: %d of 10 pieces of the chirp found (correlation >= %.2f), want >= 9", tc.name, n, tc.min)
		}
		t.Logf("%s: whole-chirp correlation %.4f", tc.name, bestCorrelation(sig[80:len(sig)-80], stripGaps(tc.got)))
	}
	_ = call.leg.Hangup(context.Background(), "test over")
	if err := waitErr(t, call); err != nil {
		t.Fatalf("Run after Hangup = %v, want nil", err)
	}
}

func TestCallMarksEcho(t *testing.T) {
	_, base, calls := startServer(t, Config{}, false)
	_, call, _ := dial(t, base, peerConfig(), calls)
	frame := chirp(160)
	for _, name := range []string{"one", "two", "three"} {
		if err := call.leg.WriteFrame(frame); err != nil {
			t.Fatal(err)
		}
		if err := call.leg.Mark(name); err != nil {
			t.Fatal(err)
		}
	}
	if err := call.leg.Clear(); err != nil {
		t.Fatalf("Clear = %v, want nil", err)
	}
	for _, want := range []string{"one", "two", "three"} {
		select {
		case got := <-call.rec.marks:
			if got != want {
				t.Fatalf("mark %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("mark %q not echoed", want)
		}
	}
	if got := call.leg.Stats().Marks; got != 3 {
		t.Fatalf("stats marks %d, want 3", got)
	}
}

func TestCallDTMF(t *testing.T) {
	_, base, calls := startServer(t, Config{}, false)
	browser, call, _ := dial(t, base, peerConfig(), calls)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := browser.WaitChannel(ctx, DTMFLabel); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"1", "x", "2#", "", "d*0"} {
		if msg == "" {
			continue
		}
		if err := browser.SendText(DTMFLabel, msg); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	for len(got) < 6 {
		select {
		case d := <-call.rec.dtmf:
			got = append(got, d)
		case <-ctx.Done():
			t.Fatalf("digits %q, want 6", got)
		}
	}
	if string(got) != "12#D*0" {
		t.Fatalf("digits %q, want 12#D*0", got)
	}
	// The bad message was counted, not delivered.
	if s := call.leg.Stats(); s.DTMF != 6 || s.Malformed != 1 {
		t.Fatalf("stats %+v, want 6 digits and 1 malformed", s)
	}
}

// cutConn is a UDP socket whose traffic can be cut to simulate a caller
// whose network went away.
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

func TestCallEnds(t *testing.T) {
	tests := []struct {
		name    string
		end     func(t *testing.T, browser *mwebrtc.Peer, call served, cut *cutConn)
		wantErr error
		// browserSees is the control message the browser must get, if any.
		browserSees string
	}{
		{"hang-up button", func(t *testing.T, b *mwebrtc.Peer, _ served, _ *cutConn) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := b.WaitChannel(ctx, ControlLabel); err != nil {
				t.Fatal(err)
			}
			if err := b.SendText(ControlLabel, `{"type":"hangup"}`); err != nil {
				t.Fatal(err)
			}
		}, nil, ""},
		{"page closed", func(_ *testing.T, b *mwebrtc.Peer, _ served, _ *cutConn) { _ = b.Close() }, nil, ""},
		{"parley hangs up", func(t *testing.T, b *mwebrtc.Peer, call served, _ *cutConn) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := b.WaitChannel(ctx, ControlLabel); err != nil {
				t.Fatal(err)
			}
			if err := call.leg.Hangup(ctx, "resolved"); err != nil {
				t.Fatal(err)
			}
		}, nil, `{"type":"hangup","reason":"resolved"}`},
		{"network gone", func(_ *testing.T, _ *mwebrtc.Peer, _ served, c *cutConn) { c.cut.Store(true) }, ErrDropped, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, base, calls := startServer(t, Config{}, false)
			conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cut := &cutConn{PacketConn: conn}
			cfg := peerConfig()
			cfg.Socket = cut
			browser, call, _ := dial(t, base, cfg, calls)
			tc.end(t, browser, call, cut)
			err = waitErr(t, call)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Run = %v, want %v", err, tc.wantErr)
			}
			if tc.browserSees != "" {
				select {
				case m := <-browser.Messages():
					if m.Label != ControlLabel || string(m.Data) != tc.browserSees {
						t.Fatalf("browser got %q on %q, want %q", m.Data, m.Label, tc.browserSees)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("browser got no hang-up message")
				}
				select {
				case <-browser.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("browser connection not closed")
				}
			}
			if err := call.leg.WriteFrame(make([]int16, 160)); !errors.Is(err, ErrClosed) {
				t.Fatalf("WriteFrame after the end = %v, want ErrClosed", err)
			}
			if err := call.leg.Mark("late"); !errors.Is(err, ErrClosed) {
				t.Fatalf("Mark after the end = %v, want ErrClosed", err)
			}
		})
	}
}

func TestRunContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, base, calls := startServerCtx(t, Config{}, false, ctx)
	_, call, _ := dial(t, base, peerConfig(), calls)
	cancel()
	if err := waitErr(t, call); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

func TestControlMessageFromParley(t *testing.T) {
	msg, err := json.Marshal(control{Type: controlHangup, Reason: "bye"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseControl(msg)
	if err != nil || c.Reason != "bye" {
		t.Fatalf("round trip %+v %v", c, err)
	}
}

// BenchmarkLegWriteFrame measures one outbound 20 ms frame through the leg
// (μ-law encoding, RTP, SRTP, UDP) to a connected browser peer.
func BenchmarkLegWriteFrame(b *testing.B) {
	_, base, calls := startServer(b, Config{}, false)
	browser, call, _ := dial(b, base, peerConfig(), calls)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case f := <-browser.Audio():
				browser.Release(f)
			case <-browser.Done():
				return
			}
		}
	}()
	frame := chirp(160)
	b.ReportAllocs()
	for b.Loop() {
		if err := call.leg.WriteFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = browser.Close()
	<-drained
}
