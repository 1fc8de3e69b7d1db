package webrtc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	mwebrtc "github.com/parley-ai/parley/media/webrtc"
)

// peerConfig is a loopback peer configuration with short drop timeouts.
func peerConfig() mwebrtc.Config {
	return mwebrtc.Config{
		LoopbackOnly:           true,
		ICEDisconnectedTimeout: 2 * time.Second,
		DropTimeout:            time.Second,
	}
}

// recorder is a parley.LegHandler that keeps what the leg delivered and,
// when echo is set, plays the caller's audio straight back.
type recorder struct {
	leg  *Leg
	echo bool

	mu    sync.Mutex
	audio []int16

	dtmf  chan byte
	marks chan string
}

func newRecorder(leg *Leg, echo bool) *recorder {
	return &recorder{leg: leg, echo: echo, dtmf: make(chan byte, 64), marks: make(chan string, 64)}
}

func (r *recorder) OnAudio(pcm []int16) {
	r.mu.Lock()
	r.audio = append(r.audio, pcm...)
	r.mu.Unlock()
	if r.echo {
		_ = r.leg.WriteFrame(pcm)
	}
}

func (r *recorder) OnDTMF(d byte)      { r.dtmf <- d }
func (r *recorder) OnMark(name string) { r.marks <- name }

func (r *recorder) samples() []int16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int16(nil), r.audio...)
}

// served is one call as the handler saw it.
type served struct {
	leg *Leg
	rec *recorder
	err chan error // Run's result
}

// startServer runs a fiber app with a Server on 127.0.0.1:0 whose handler
// runs each leg with a recorder and hands the call to the test.
func startServer(t testing.TB, cfg Config, echo bool) (srv *Server, base string, calls chan served) {
	t.Helper()
	return startServerCtx(t, cfg, echo, nil)
}

// startServerCtx is startServer with Run's context replaced by runCtx when
// it is not nil.
func startServerCtx(t testing.TB, cfg Config, echo bool, runCtx context.Context) (srv *Server, base string, calls chan served) {
	t.Helper()
	calls = make(chan served, 8)
	if cfg.Peer.ICEDisconnectedTimeout == 0 {
		cfg.Peer = peerConfig()
	}
	srv, err := NewServer(cfg, func(ctx context.Context, leg *Leg) {
		if runCtx != nil {
			ctx = runCtx
		}
		s := served{leg: leg, rec: newRecorder(leg, echo), err: make(chan error, 1)}
		calls <- s
		s.err <- leg.Run(ctx, s.rec)
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return srv, serveApp(t, srv), calls
}

// serveApp runs srv in a fiber app on 127.0.0.1:0 until the test ends.
func serveApp(t testing.TB, srv *Server) string {
	t.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	srv.Register(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = app.Listener(ln) }()
	t.Cleanup(func() {
		srv.Close()
		_ = app.Shutdown()
		<-done
	})
	return "http://" + ln.Addr().String()
}

// postOffer sends an offer the way the page does.
func postOffer(base, sdp string) (int, callResponse, string, error) {
	body, _ := json.Marshal(callRequest{Type: "offer", SDP: sdp})
	resp, err := http.Post(base+CallPath, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, callResponse{}, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, callResponse{}, "", err
	}
	var cr callResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &cr); err != nil {
			return resp.StatusCode, cr, string(raw), fmt.Errorf("answer: %w", err)
		}
	}
	return resp.StatusCode, cr, string(raw), nil
}

// dial places a call from a Go "browser" (a pion peer that offers PCMU
// and the page's data channels) and waits until both ends are connected.
func dial(t testing.TB, base string, cfg mwebrtc.Config, calls chan served) (*mwebrtc.Peer, served, callResponse) {
	t.Helper()
	browser, offer, err := mwebrtc.NewOffer(cfg, DTMFLabel, ControlLabel)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = browser.Close() })
	code, answer, raw, err := postOffer(base, offer)
	if err != nil || code != http.StatusOK {
		t.Fatalf("POST offer: %d %s %v", code, raw, err)
	}
	if err := browser.SetAnswer(answer.SDP); err != nil {
		t.Fatal(err)
	}
	var call served
	select {
	case call = <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("handler not called")
	}
	select {
	case <-browser.Connected():
	case <-browser.Done():
		t.Fatalf("browser ended: %v", browser.Err())
	case <-time.After(15 * time.Second):
		t.Fatalf("browser not connected: %s", browser.State())
	}
	return browser, call, answer
}

// waitErr waits for Run's result.
func waitErr(t testing.TB, call served) error {
	t.Helper()
	select {
	case err := <-call.err:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// chirp is a 300→3000 Hz sweep at 8 kHz: it correlates with itself at one
// lag only.
func chirp(n int) []int16 {
	out := make([]int16, n)
	dur := float64(n) / 8000
	for i := range out {
		tt := float64(i) / 8000
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

// rms is the root mean square level of pcm.
func rms(pcm []int16) float64 {
	if len(pcm) == 0 {
		return 0
	}
	var e float64
	for _, s := range pcm {
		e += float64(s) * float64(s)
	}
	return math.Sqrt(e / float64(len(pcm)))
}
