package main

// End-to-end tests: the real server on a loopback port, called over the
// real HTTP + WebSocket wire exactly as Twilio calls it, with synthesized
// caller speech. The AI's replies are checked by recognizing the audio the
// caller heard.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/configs"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/dialog/flite"
	"github.com/parley-ai/parley/media"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
	"github.com/parley-ai/parley/telephony/twilio"
	twebrtc "github.com/parley-ai/parley/telephony/webrtc"
)

const e2eToken = "e2e-auth-token-0123456789abcdef"

// testServer is one parley server shared by the end-to-end tests.
var testServer struct {
	srv  *server
	url  string
	stop func()
	tts  *flite.Synthesizer
}

func TestMain(m *testing.M) {
	code, err := runWithServer(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runWithServer(m *testing.M) (int, error) {
	before := goleak.IgnoreCurrent()
	dir, err := os.MkdirTemp("", "parley-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	url := "http://" + ln.Addr().String()
	env := map[string]string{
		"PARLEY_LISTEN":            ln.Addr().String(),
		"PARLEY_PUBLIC_URL":        url,
		"PARLEY_DATA_DIR":          dir,
		"PARLEY_TWILIO_AUTH_TOKEN": e2eToken,
		"PARLEY_LOG_LEVEL":         "warn",
		"PARLEY_WEBRTC_LOOPBACK":   "true",
	}
	cfg, err := configs.Load("", func(k string) string { return env[k] })
	if err != nil {
		return 0, err
	}
	// Short timeouts keep the silence test quick.
	cfg.Dialog.NoInputTimeout = 3 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := newServer(ctx, cfg, serverLogger(os.Stderr, "warn"))
	if err != nil {
		cancel()
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx, ln) }()
	tts, err := flite.New(flite.Config{Voice: "slt"})
	if err != nil {
		cancel()
		return 0, err
	}
	testServer.srv, testServer.url, testServer.tts = srv, url, tts
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		return code, fmt.Errorf("server: %w", err)
	}
	if code == 0 {
		if err := goleak.Find(before, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"), goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2")); err != nil {
			return 1, fmt.Errorf("goroutines leaked after the server stopped: %w", err)
		}
	}
	return code, nil
}

// speak synthesizes caller speech as 8 kHz phone audio.
func speak(t *testing.T, text string) []int16 {
	t.Helper()
	pcm, err := testServer.tts.SynthesizeAll(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	return media.Resample(pcm, testServer.tts.SampleRate(), twilio.MulawSampleRate)
}

func sayFunc(t *testing.T) func(string) ([]int16, error) {
	return func(s string) ([]int16, error) { return speak(t, s), nil }
}

func dialer() twilio.Dialer {
	return twilio.Dialer{ServerURL: testServer.url, AuthToken: e2eToken, From: "+14155550111", To: "+18005550199"}
}

// storedCall waits for the async store to hold the ended call.
func storedCall(t *testing.T, id string) parley.Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if err := testServer.srv.store.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		c, err := testServer.srv.store.GetCall(ctx, id)
		if err == nil && !c.EndedAt.IsZero() {
			return c
		}
		select {
		case <-ctx.Done():
			t.Fatalf("call %s not stored as ended: %v %+v", id, err, c)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func hasAll(text string, words ...string) bool {
	for _, w := range words {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}

func TestCallIsGreetedAndAnswered(t *testing.T) {
	rep, err := placeCall(context.Background(), callOptions{
		Dialer:      dialer(),
		Steps:       []callStep{{stepSay, "what are your opening hours"}},
		HangupAfter: true,
	}, sayFunc(t))
	if err != nil {
		t.Fatal(err)
	}
	recognizeTurns(context.Background(), testServer.srv.eng.stt, rep)
	if len(rep.Turns) != 2 {
		t.Fatalf("turns: %+v", rep.Turns)
	}
	greet, ans := rep.Turns[0].AI, rep.Turns[1].AI
	t.Logf("greeting heard: %q", greet)
	t.Logf("answer heard: %q (latency %v)", ans, rep.Turns[1].Latency)
	if !hasAll(greet, "calling", "northwind") {
		t.Errorf("greeting not heard: %q", greet)
	}
	if !hasAll(ans, "open", "day") {
		t.Errorf("opening-hours answer not heard: %q", ans)
	}
	if rep.Turns[1].Latency <= 0 {
		t.Errorf("no reply latency measured")
	}
	c := storedCall(t, rep.CallSID)
	if c.Outcome != parley.OutcomeResolved || len(c.Turns) < 3 {
		t.Fatalf("stored call: outcome %q, %d turns", c.Outcome, len(c.Turns))
	}
	var caller parley.Turn
	for _, tu := range c.Turns {
		if tu.Speaker == parley.SpeakerCaller {
			caller = tu
		}
	}
	if !strings.Contains(caller.Text, "open") || caller.Signals == nil || caller.Signals.Intent != "opening_hours" {
		t.Fatalf("caller turn stored: %+v signals %+v", caller, caller.Signals)
	}
	if err := os.MkdirAll("../../test-artifacts", 0o755); err == nil {
		writeStereo("../../test-artifacts/e2e-opening-hours.wav", rep.Caller, rep.AI, twilio.MulawSampleRate)
	}
}

func TestBargeInClearsAndKeepsOnlyHeardText(t *testing.T) {
	ctx := context.Background()
	w := &audioWatch{}
	d := dialer()
	d.OnAudio = w.onAudio
	call, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer call.Hangup()
	if _, _, ok := w.waitReply(ctx, call.Done(), call.Started(), 1200*time.Millisecond, 15*time.Second); !ok {
		t.Fatal("no greeting")
	}
	// A question with a long answer, then talk over the answer.
	if err := call.SendAudio(speak(t, "what are your fees")); err != nil {
		t.Fatal(err)
	}
	asked := time.Now()
	start, ok := time.Time{}, false
	for i := 0; i < 300 && !ok; i++ {
		start, ok = w.firstAfter(asked.Add(-300 * time.Millisecond))
		time.Sleep(20 * time.Millisecond)
	}
	if !ok {
		t.Fatal("no answer started")
	}
	time.Sleep(time.Until(start.Add(1500 * time.Millisecond)))
	interrupt := speak(t, "what are your opening hours")
	talkStart := time.Now().Add(leadingSilence(interrupt))
	if err := call.SendAudio(interrupt); err != nil {
		t.Fatal(err)
	}
	clears := call.ClearTimes()
	if len(clears) == 0 {
		t.Fatal("no clear was sent while the caller talked over the AI")
	}
	lat := clears[0].Sub(talkStart)
	t.Logf("clear %v after the caller started talking over the AI", lat)
	if lat < 0 || lat > 2*time.Second {
		t.Fatalf("clear at %v relative to the barge-in", lat)
	}
	// The barging question is answered.
	if _, _, ok := w.waitReply(ctx, call.Done(), time.Now(), 1200*time.Millisecond, 15*time.Second); !ok {
		t.Fatal("no answer after the barge-in")
	}
	if err := call.Hangup(); err != nil {
		t.Fatal(err)
	}
	c := storedCall(t, call.CallSID)
	var cut *parley.Turn
	for i, tu := range c.Turns {
		if tu.Speaker == parley.SpeakerAI && tu.Interrupted {
			cut = &c.Turns[i]
		}
	}
	if cut == nil {
		t.Fatalf("no interrupted AI turn stored: %+v", c.Turns)
	}
	t.Logf("heard %q of %q", cut.Text, cut.Intended)
	if len(cut.Text) >= len(cut.Intended) || !strings.HasPrefix(cut.Intended, strings.TrimSuffix(cut.Text, "…")) {
		t.Fatalf("history holds more than the heard part: heard %q, intended %q", cut.Text, cut.Intended)
	}
	last := c.Turns[len(c.Turns)-1]
	if last.Speaker != parley.SpeakerAI || !strings.Contains(strings.ToLower(last.Text), "open") {
		t.Fatalf("barging question not answered, last turn %+v", last)
	}
}

// leadingSilence is how long pcm starts in silence (the synthesizer pads).
func leadingSilence(pcm []int16) time.Duration {
	for i, s := range pcm {
		if s > 300 || s < -300 {
			return time.Duration(i) * time.Second / twilio.MulawSampleRate
		}
	}
	return 0
}

func TestDTMFDigitsAndMalformedFramesKeepTheCall(t *testing.T) {
	ctx := context.Background()
	w := &audioWatch{}
	d := dialer()
	d.OnAudio = w.onAudio
	call, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer call.Hangup()
	if _, _, ok := w.waitReply(ctx, call.Done(), call.Started(), 1200*time.Millisecond, 15*time.Second); !ok {
		t.Fatal("no greeting")
	}
	// Garbage on the socket in the middle of a call is counted, not fatal.
	for _, raw := range []string{`{not json`, `{"event":"media","media":{"payload":"@@@"}}`, `{"event":"surprise"}`} {
		if err := call.SendRaw([]byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	if err := call.SendAudio(speak(t, "i want to check my balance")); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := w.waitReply(ctx, call.Done(), time.Now(), 1200*time.Millisecond, 15*time.Second); !ok {
		t.Fatal("no reply after malformed frames")
	}
	// A whole card number keyed in by mistake must never be stored.
	for _, k := range "4111111111111111#" {
		if err := call.SendDTMF(byte(k)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond)
	}
	if _, _, ok := w.waitReply(ctx, call.Done(), time.Now(), 1200*time.Millisecond, 15*time.Second); !ok {
		t.Fatal("no reply to the card number")
	}
	for _, k := range "4821" {
		if err := call.SendDTMF(byte(k)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(120 * time.Millisecond)
	}
	if _, _, ok := w.waitReply(ctx, call.Done(), time.Now(), 1200*time.Millisecond, 15*time.Second); !ok {
		t.Fatal("no reply to the keypad digits")
	}
	if err := call.Hangup(); err != nil {
		t.Fatal(err)
	}
	c := storedCall(t, call.CallSID)
	var dtmf, afterDTMF string
	for i, tu := range c.Turns {
		if tu.DTMF != "" {
			dtmf = tu.DTMF
			for _, n := range c.Turns[i+1:] {
				if n.Speaker == parley.SpeakerAI {
					afterDTMF = n.Text
					break
				}
			}
		}
	}
	if dtmf != "4821" {
		t.Fatalf("keypad turn %q, turns %+v", dtmf, c.Turns)
	}
	for _, tu := range c.Turns {
		if strings.Contains(tu.DTMF+tu.Text+tu.Intended, "4111111111111111") {
			t.Fatalf("card number stored unredacted: %+v", tu)
		}
	}
	if compact := strings.ReplaceAll(afterDTMF, " ", ""); !strings.Contains(compact, "4821") {
		for _, tu := range c.Turns {
			t.Logf("%s: %q %s", tu.Speaker, tu.Text, tu.DTMF)
		}
		t.Fatalf("the AI did not use the digits: %q", afterDTMF)
	}
}

func TestMetricsAreServed(t *testing.T) {
	d := dialer()
	call, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := call.Hangup(); err != nil {
		t.Fatal(err)
	}
	storedCall(t, call.CallSID)
	resp, err := http.Get(testServer.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{"parley_calls_started_total", "parley_turns_total", "parley_stage_latency_seconds_bucket", "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
}

func TestCallHistoryNeedsASupervisor(t *testing.T) {
	// No session: 401 and no transcript.
	resp, err := http.Get(testServer.url + "/api/calls")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated /api/calls: %d", resp.StatusCode)
	}
	// A supervisor created as `parley users add` does logs in and sees calls.
	d := dialer()
	d.From = "+14155550177"
	call, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	call.Hangup()
	storedCall(t, call.CallSID)
	var out, errb bytes.Buffer
	c := cli{
		stdin:  strings.NewReader("correct horse battery\n"),
		getenv: func(k string) string { return map[string]string{"PARLEY_DATA_DIR": testServer.srv.cfg.DataDir}[k] },
		stdout: &out, stderr: &errb,
	}
	if err := c.users(context.Background(), []string{"add", "sue", "--role", "supervisor", "--password-stdin"}); err != nil {
		t.Fatalf("users add: %v %s", err, errb.String())
	}
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	resp, err = cl.Post(testServer.url+"/api/login", "application/json", strings.NewReader(`{"name":"sue","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	resp, err = cl.Get(testServer.url + "/api/calls?number=%2B14155550177")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), call.CallSID) {
		t.Fatalf("/api/calls as supervisor: %d %s", resp.StatusCode, body)
	}
}

func TestBadSignatureIsRefused(t *testing.T) {
	d := dialer()
	d.AuthToken = "not-the-token"
	_, err := d.Dial(context.Background())
	var he *twilio.HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong token: %v", err)
	}
	// No signature at all: 403 and nothing else.
	resp, err := http.PostForm(testServer.url+"/twilio/voice", url.Values{"CallSid": {"CA123"}, "From": {"+1"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(body) != 0 {
		t.Fatalf("unsigned webhook: %d %q", resp.StatusCode, body)
	}
}

func TestHangupAndDropEndCallsCleanly(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("drop=%v", drop), func(t *testing.T) {
			ctx := context.Background()
			w := &audioWatch{}
			d := dialer()
			d.OnAudio = w.onAudio
			call, err := d.Dial(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, ok := w.waitReply(ctx, call.Done(), call.Started(), 1200*time.Millisecond, 15*time.Second); !ok {
				t.Fatal("no greeting")
			}
			if err := call.SendAudio(speak(t, "how do I activate my card")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond) // hang up while the AI may still be answering
			if drop {
				call.Drop()
			} else if err := call.Hangup(); err != nil {
				t.Fatal(err)
			}
			c := storedCall(t, call.CallSID)
			want := parley.OutcomeResolved
			if drop {
				want = parley.OutcomeDropped
			}
			if c.Outcome != want {
				t.Fatalf("outcome %q (%s), want %q", c.Outcome, c.Reason, want)
			}
			var callerSaid bool
			for _, tu := range c.Turns {
				callerSaid = callerSaid || (tu.Speaker == parley.SpeakerCaller && strings.Contains(tu.Text, "card"))
			}
			if !callerSaid {
				t.Fatalf("transcript lost: %+v", c.Turns)
			}
			for i := 0; testServer.srv.sb.Active() > 0 && i < 100; i++ {
				time.Sleep(20 * time.Millisecond)
			}
			if n := testServer.srv.sb.Active(); n != 0 {
				t.Fatalf("%d calls still active after hang-up", n)
			}
		})
	}
}

func TestSilenceRepromptsThenSaysGoodbye(t *testing.T) {
	rep, err := placeCall(context.Background(), callOptions{Dialer: dialer()}, sayFunc(t))
	if err != nil {
		t.Fatal(err)
	}
	if rep.EndedBy != "server" {
		t.Fatalf("a silent caller was not hung up by the server: %+v", rep)
	}
	c := storedCall(t, rep.CallSID)
	var ai []string
	for _, tu := range c.Turns {
		if tu.Speaker == parley.SpeakerAI {
			ai = append(ai, tu.Text)
		}
	}
	if len(ai) < 3 || !strings.Contains(strings.ToLower(ai[len(ai)-1]), "goodbye") {
		t.Fatalf("AI turns of a silent call: %q", ai)
	}
}

// A browser caller (WebRTC, what the /call page does) reaches the same AI.
func TestBrowserCallerTalksToTheAI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	browser, offer, err := mwebrtc.NewOffer(mwebrtc.Config{LoopbackOnly: true}, twebrtc.DTMFLabel, twebrtc.ControlLabel)
	if err != nil {
		t.Fatal(err)
	}
	defer browser.Close()
	body, _ := json.Marshal(map[string]string{"type": "offer", "sdp": offer})
	resp, err := http.Post(testServer.url+twebrtc.CallPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		SDP    string `json:"sdp"`
		CallID string `json:"call_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || answer.CallID == "" {
		t.Fatalf("offer: %d %v %+v", resp.StatusCode, err, answer)
	}
	if err := browser.SetAnswer(answer.SDP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-browser.Connected():
	case <-ctx.Done():
		t.Fatal("browser never connected")
	}
	// listen collects what the browser hears until quiet after some audio.
	listen := func() []int16 {
		var got []int16
		quiet := time.NewTimer(10 * time.Second)
		for {
			select {
			case f := <-browser.Audio():
				got = append(got, f...)
				browser.Release(f)
				quiet.Reset(1200 * time.Millisecond)
			case <-quiet.C:
				return got
			case <-ctx.Done():
				return got
			}
		}
	}
	heard := func(pcm []int16) string {
		tr, err := testServer.srv.eng.stt.TranscribePCM(ctx, pcm, 8000, dialog.ModeOpen)
		if err != nil {
			t.Fatal(err)
		}
		return tr.Text
	}
	// The caller answers the greeting at once (recognizing what they heard
	// comes later: on a loaded machine it could outlast the no-input timeout).
	q := speak(t, "what are your opening hours")
	greeting := listen()
	tick := time.NewTicker(20 * time.Millisecond)
	for i := 0; i+160 <= len(q); i += 160 {
		<-tick.C
		if err := browser.WriteFrame(q[i : i+160]); err != nil {
			t.Fatal(err)
		}
	}
	silence := make([]int16, 160)
	done := make(chan struct{})
	go func() { // keep the line open as a real microphone does
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				browser.WriteFrame(silence)
			}
		}
	}()
	answerPCM := listen()
	close(done)
	if g := heard(greeting); !hasAll(g, "automated", "help you today") {
		t.Fatalf("browser did not hear the greeting: %q", g)
	}
	a := heard(answerPCM)
	if !hasAll(a, "open", "day") {
		t.Fatalf("browser did not hear the opening-hours answer: %q", a)
	}
	if err := browser.SendText(twebrtc.ControlLabel, `{"type":"hangup"}`); err != nil {
		t.Fatal(err)
	}
	c := storedCall(t, answer.CallID)
	if c.Channel != parley.ChannelWebRTC || c.Outcome != parley.OutcomeResolved {
		t.Fatalf("stored browser call: %+v", c)
	}
}
