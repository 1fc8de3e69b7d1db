package webrtc

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley-ai/parley/media"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
)

// chromiumPath finds the browser the end-to-end test drives.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Fatal("chromium not found (apt packages chromium, chromium-driver): run scripts/setup.sh test")
	return ""
}

// speechWAV synthesizes the fake microphone's recording with flite.
func speechWAV(t *testing.T, dir string) string {
	t.Helper()
	flite, err := exec.LookPath("flite")
	if err != nil {
		t.Fatal("flite not found (apt package flite): run scripts/setup.sh test")
	}
	path := filepath.Join(dir, "caller.wav")
	text := "Hello, I would like to check the balance of my savings account, please."
	if out, err := exec.Command(flite, "-voice", "slt", "-t", text, "-o", path).CombinedOutput(); err != nil {
		t.Fatalf("flite: %v: %s", err, out)
	}
	return path
}

// loudest returns the n-sample window of pcm with the most energy.
func loudest(pcm []int16, n int) []int16 {
	best, at := -1.0, 0
	for i := 0; i+n <= len(pcm); i += n / 4 {
		if e := rms(pcm[i : i+n]); e > best {
			best, at = e, i
		}
	}
	return pcm[at : at+n]
}

// pageStats is what window.parleyCall.stats() reports.
type pageStats struct {
	BytesReceived    float64 `json:"bytesReceived"`
	PacketsReceived  float64 `json:"packetsReceived"`
	AudioLevel       float64 `json:"audioLevel"`
	TotalAudioEnergy float64 `json:"totalAudioEnergy"`
	BytesSent        float64 `json:"bytesSent"`
	PacketsSent      float64 `json:"packetsSent"`
	Codec            string  `json:"codec"`
}

// TestBrowserCall drives the real page in headless Chromium: the fake
// microphone plays synthesized speech, parley echoes it back, the test
// checks the speech arrived at parley (by correlation with the recording),
// that the page received audio back (getStats), the keypad and hang-up —
// in Opus (parley's preference; Chromium offers it first) and in PCMU.
func TestBrowserCall(t *testing.T) {
	for _, tc := range []struct {
		codecs []string
		want   string
	}{
		{nil, "audio/opus"},
		{[]string{mwebrtc.CodecPCMU}, "audio/PCMU"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			peer := peerConfig()
			peer.Codecs = tc.codecs
			testBrowserCall(t, Config{Peer: peer}, tc.want)
		})
	}
}

func testBrowserCall(t *testing.T, cfg Config, wantCodec string) {
	browserPath := chromiumPath(t)
	dir := t.TempDir()
	wav := speechWAV(t, dir)
	speech, rate, err := media.ReadWAVFile(wav)
	if err != nil {
		t.Fatal(err)
	}
	speech8k := media.Resample(speech, rate, 8000)
	ref := loudest(speech8k, 4000) // the loudest 0.5 s

	_, base, calls := startServer(t, cfg, true)

	profile := filepath.Join(dir, "profile")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(720, 860),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", wav),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	defer cancelCtx()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+PagePath+"?processing=off")); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	step, cancelStep := context.WithTimeout(ctx, 60*time.Second)
	defer cancelStep()

	if err := chromedp.Do(step,
		chromedp.WaitVisible(chromedp.ID("call")),
		chromedp.Click(chromedp.ID("call")),
	); err != nil {
		t.Fatalf("click Call us: %v", err)
	}
	var call served
	select {
	case call = <-calls:
	case <-step.Done():
		t.Fatal("the page's call never reached the handler")
	}
	if _, err := chromedp.Run(step, chromedp.Poll[bool](`window.parleyCall.state().phase === 'connected'`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		st, _ := chromedp.Run(step, chromedp.Evaluate[map[string]any](`window.parleyCall.state()`))
		t.Fatalf("page not connected: %v (state %v)", err, st)
	}

	// The whole recording (the fake microphone loops it) and a second
	// more of the caller's audio at parley.
	var got []int16
	for len(got) < len(speech8k)+8000 {
		select {
		case <-step.Done():
			t.Fatalf("only %d samples of caller audio arrived", len(got))
		case <-time.After(100 * time.Millisecond):
			got = call.rec.samples()
		}
	}
	if os.Getenv("PARLEY_KEEP_AUDIO") != "" {
		_ = media.WriteWAVFile(filepath.Join("..", "..", "test-artifacts", "call-caller-at-parley.wav"), got, 8000)
	}
	if level := rms(got); level < 300 {
		t.Errorf("caller audio level %.0f RMS, want speech (>= 300)", level)
	}
	if c := bestCorrelation(ref, stripGaps(got)); c < 0.8 {
		t.Errorf("correlation of the recording with what parley heard %.3f, want >= 0.8", c)
	} else {
		t.Logf("caller speech at parley: correlation %.3f with the recording, level %.0f RMS", c, rms(got))
	}

	// The echo reaches the page.
	stats, err := chromedp.Run(step, chromedp.Poll[pageStats](`(async () => {
		const s = await window.parleyCall.stats();
		return s.packetsReceived > 100 && s.totalAudioEnergy > 0.001 ? s : null;
	})()`, chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		last, _ := chromedp.Run(step, chromedp.Evaluate[pageStats](`window.parleyCall.stats()`, chromedp.EvalAwaitPromise))
		t.Fatalf("page received no audio back: %v (stats %+v)", err, last)
	}
	t.Logf("page stats: %+v", stats)
	if stats.Codec != wantCodec {
		t.Errorf("negotiated codec %q, want %s", stats.Codec, wantCodec)
	}

	// Keypad digits reach parley.
	if err := chromedp.Do(step,
		chromedp.Click(chromedp.CSS(`#keypad button[data-digit="4"]`)),
		chromedp.Click(chromedp.CSS(`#keypad button[data-digit="#"]`)),
	); err != nil {
		t.Fatal(err)
	}
	for _, want := range []byte("4#") {
		select {
		case d := <-call.rec.dtmf:
			if d != want {
				t.Fatalf("digit %q, want %q", d, want)
			}
		case <-step.Done():
			t.Fatalf("digit %q never arrived", want)
		}
	}

	shot, err := chromedp.Run(step, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	artifacts := filepath.Join("..", "..", "test-artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(artifacts, "call-page.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}

	// Hang up from the page: Run returns nil, the page says so.
	if err := chromedp.Do(step, chromedp.Click(chromedp.ID("hangup"))); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, call); err != nil {
		t.Fatalf("Run after the page hung up = %v, want nil", err)
	}
	status, err := chromedp.Run(step, chromedp.Text(chromedp.ID("status")))
	if err != nil || status != "Call ended" {
		t.Fatalf("status %q (%v), want Call ended", status, err)
	}
	if shot, err := chromedp.Run(step, chromedp.CaptureScreenshot()); err == nil {
		_ = os.WriteFile(filepath.Join(artifacts, "call-page-ended.png"), shot, 0o644)
	}

	// Call again; this time parley hangs up and the page shows it.
	if err := chromedp.Do(step, chromedp.Click(chromedp.ID("call"))); err != nil {
		t.Fatal(err)
	}
	select {
	case call = <-calls:
	case <-step.Done():
		t.Fatal("the second call never reached the handler")
	}
	if _, err := chromedp.Run(step, chromedp.Poll[bool](`window.parleyCall.state().phase === 'connected'`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("second call not connected: %v", err)
	}
	if err := call.leg.Hangup(step, "resolved"); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, call); err != nil {
		t.Fatalf("Run after parley hung up = %v, want nil", err)
	}
	if _, err := chromedp.Run(step, chromedp.Poll[bool](`document.getElementById('status').textContent === 'Call ended'`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		status, _ := chromedp.Run(step, chromedp.Text(chromedp.ID("status")))
		t.Fatalf("page status %q after parley hung up, want Call ended", status)
	}
}
