package twilio

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp keeps one process-wide goroutine that refreshes the
		// cached Date header; it is started once and never stopped.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// fasthttp's worker-pool cleaner sleeps 10 s between sweeps and
		// exits on its next wake-up after Shutdown.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	)
}

const (
	testToken   = "0123456789abcdef0123456789abcdef"
	testAccount = "AC0123456789abcdef0123456789abcdef"
	testPublic  = "https://parley.example.com"
)

// startServer runs a fiber app with the Server on 127.0.0.1:0.
func startServer(t *testing.T, cfg Config, h CallHandler) (*Server, string) {
	t.Helper()
	srv, err := NewServer(cfg, h, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	srv.Register(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = app.Listener(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		_ = app.Shutdown()
		<-served
	})
	return srv, "http://" + ln.Addr().String()
}

// echoHandler echoes every inbound frame and reports DTMF and mark echoes.
type echoHandler struct {
	leg   *Leg
	dtmf  chan byte
	marks chan string
}

func (h *echoHandler) OnAudio(pcm []int16) { _ = h.leg.WriteFrame(pcm) }
func (h *echoHandler) OnDTMF(d byte)       { h.dtmf <- d }
func (h *echoHandler) OnMark(name string)  { h.marks <- name }

type callResult struct {
	err   error
	stats LegStats
}

// echoServer starts a server whose calls run an echoHandler; the legs and
// Run results come out of the returned channels.
func echoServer(t *testing.T, cfg Config) (*Server, string, chan *echoHandler, chan callResult) {
	legs := make(chan *echoHandler, 4)
	results := make(chan callResult, 4)
	srv, base := startServer(t, cfg, func(ctx context.Context, leg *Leg) {
		h := &echoHandler{leg: leg, dtmf: make(chan byte, 16), marks: make(chan string, 16)}
		legs <- h
		err := leg.Run(ctx, h)
		results <- callResult{err: err, stats: leg.Stats()}
	})
	return srv, base, legs, results
}

func tone(n int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	return pcm
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

func TestEndToEndEchoCall(t *testing.T) {
	_, base, legs, results := echoServer(t, Config{PublicURL: testPublic, AuthToken: testToken})
	heard := make(chan struct{}, 1)
	d := &Dialer{ServerURL: base, PublicURL: testPublic, AuthToken: testToken, From: "+14155550100", To: "+15005550006",
		OnAudio: func(pcm []int16, at time.Time) {
			for _, s := range pcm {
				if s > 4000 || s < -4000 {
					select {
					case heard <- struct{}{}:
					default:
					}
					return
				}
			}
		}}
	call, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h := waitFor(t, legs, "call handler")
	info := h.leg.Info()
	if info.CallID != call.CallSID || info.StreamID != call.StreamSID || info.From != "+14155550100" || info.To != "+15005550006" {
		t.Errorf("leg info %+v does not match the call %s/%s", info, call.CallSID, call.StreamSID)
	}
	if info.Params[ParamDirection] != "inbound" || info.Params[ParamAccountSID] != call.AccountSID || h.leg.SampleRate() != 8000 {
		t.Errorf("stream parameters %v", info.Params)
	}
	if len(call.CallSID) != 34 || !strings.HasPrefix(call.CallSID, "CA") {
		t.Errorf("call sid %q is not a real-looking sid", call.CallSID)
	}

	// Audio goes out, comes back as echo.
	if err := call.SendAudio(tone(1600)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, heard, "echoed audio")

	// A mark is echoed once the audio before it has played.
	if err := h.leg.Mark("m1"); err != nil {
		t.Fatal(err)
	}
	if got := waitFor(t, h.marks, "mark echo"); got != "m1" {
		t.Errorf("mark echo %q, want m1", got)
	}

	// A mark after 1 s of audio is echoed no earlier than that audio
	// would have finished playing.
	before := time.Now()
	for range 50 {
		if err := h.leg.WriteFrame(tone(160)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.leg.Mark("after-1s"); err != nil {
		t.Fatal(err)
	}
	if got := waitFor(t, h.marks, "timed mark echo"); got != "after-1s" {
		t.Errorf("mark echo %q, want after-1s", got)
	}
	if elapsed := time.Since(before); elapsed < time.Second-time.Millisecond {
		t.Errorf("mark echoed after %v, before its 1 s of audio could play", elapsed)
	}

	// DTMF reaches the handler.
	if err := call.SendDTMF('5'); err != nil {
		t.Fatal(err)
	}
	if got := waitFor(t, h.dtmf, "dtmf"); got != '5' {
		t.Errorf("dtmf %q, want 5", got)
	}

	// Queue 3 s of audio, mark it, clear: the mark comes back at once as a
	// cancellation and the simulated caller records the clear.
	for range 150 {
		if err := h.leg.WriteFrame(tone(160)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.leg.Mark("long"); err != nil {
		t.Fatal(err)
	}
	if err := h.leg.Clear(); err != nil {
		t.Fatal(err)
	}
	if got := waitFor(t, h.marks, "cancelled mark"); got != "long" {
		t.Errorf("mark after clear %q, want long", got)
	}
	if n := len(call.ClearTimes()); n != 1 {
		t.Errorf("%d clears recorded, want 1", n)
	}

	// Malformed and unknown messages mid-call are counted, the call goes on.
	for _, raw := range []string{`{"event":"media",`, `not json`, `{"event":"media","media":{"payload":"!!"}}`, `{"event":"bogus"}`} {
		if err := call.SendRaw([]byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	if err := call.SendDTMF('#'); err != nil {
		t.Fatal(err)
	}
	if got := waitFor(t, h.dtmf, "dtmf after malformed frames"); got != '#' {
		t.Errorf("dtmf %q, want #", got)
	}
	st := h.leg.Stats()
	if st.Malformed != 3 || st.Unknown != 1 {
		t.Errorf("malformed=%d unknown=%d, want 3 and 1", st.Malformed, st.Unknown)
	}
	if st.FramesIn == 0 || st.FramesOut < 200 || st.MarksOut != 3 || st.MarksIn != 3 || st.DTMF != 2 {
		t.Errorf("stats %+v", st)
	}

	if err := call.Hangup(); err != nil {
		t.Fatal(err)
	}
	res := waitFor(t, results, "Run to return")
	if res.err != nil {
		t.Errorf("Run after stop = %v, want nil", res.err)
	}
	if res.stats.SequenceGaps != 0 {
		t.Errorf("sequence gaps %d on a clean call", res.stats.SequenceGaps)
	}
	caller, ai := call.Recording()
	if len(caller) != len(ai) || len(caller) < 1600 {
		t.Errorf("recording lengths %d/%d", len(caller), len(ai))
	}
	// The echo cannot precede what the caller said, and the cleared audio
	// never reached the caller's ear.
	firstLoud := func(pcm []int16) (first, loud int) {
		first = -1
		for i, s := range pcm {
			if s > 4000 || s < -4000 {
				if first < 0 {
					first = i
				}
				loud++
			}
		}
		return first, loud
	}
	callerFirst, _ := firstLoud(caller)
	aiFirst, aiLoud := firstLoud(ai)
	if callerFirst < 0 || aiFirst < callerFirst {
		t.Errorf("echo starts at sample %d, caller's tone at %d", aiFirst, callerFirst)
	}
	if limit := 1600 + 50*160 + 150*160; aiLoud >= limit {
		t.Errorf("%d loud samples heard, the clear removed nothing", aiLoud)
	}
	if sim := call.Stats(); sim.Clears != 1 || sim.MarksIn != 3 || sim.MediaIn == 0 || sim.Malformed != 0 {
		t.Errorf("sim stats %+v", sim)
	}
	if err := call.Wait(context.Background()); err != nil {
		t.Errorf("simulated call ended with %v", err)
	}
	h.leg.Close() // idempotent: the server closes it too once the handler returns
	if err := h.leg.WriteFrame(tone(160)); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteFrame after the call = %v, want ErrClosed", err)
	}
}

func TestEndToEndDroppedSocket(t *testing.T) {
	_, base, legs, results := echoServer(t, Config{PublicURL: testPublic, AuthToken: testToken})
	d := &Dialer{ServerURL: base, PublicURL: testPublic, AuthToken: testToken, From: "+1", To: "+2"}
	call, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, legs, "call handler")
	call.Drop()
	res := waitFor(t, results, "Run to return")
	if !errors.Is(res.err, ErrDropped) {
		t.Errorf("Run after a dropped socket = %v, want ErrDropped", res.err)
	}
}

func TestEndToEndServerHangupREST(t *testing.T) {
	var mu sync.Mutex
	var got []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		_ = r.ParseForm()
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.PostForm.Encode()+" "+user+":"+pass)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"code":21220,"message":"Call is not in-progress. Cannot redirect.","more_info":"https://www.twilio.com/docs/errors/21220","status":400}`)
	}))
	defer api.Close()
	hungUp := make(chan error, 1)
	_, base := startServer(t, Config{PublicURL: testPublic, AuthToken: testToken, AccountSID: testAccount, APIBaseURL: api.URL},
		func(ctx context.Context, leg *Leg) {
			hungUp <- leg.Hangup(ctx, "test")
		})
	d := &Dialer{ServerURL: base, PublicURL: testPublic, AuthToken: testToken, From: "+1", To: "+2"}
	call, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := waitFor(t, hungUp, "hangup"); err != nil {
		t.Errorf("Hangup with 21220 = %v, want nil", err)
	}
	if err := call.Wait(context.Background()); err != nil {
		t.Errorf("call ended with %v, want a clean close", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := "POST /2010-04-01/Accounts/" + testAccount + "/Calls/" + call.CallSID + ".json Status=completed " + testAccount + ":" + testToken
	if len(got) != 1 || got[0] != want {
		t.Errorf("REST requests %q, want [%q]", got, want)
	}
}

func TestRESTHangupErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr bool
	}{
		{"success", 200, `{"sid":"CA1","status":"completed"}`, false},
		{"already ended", 400, `{"code":21220,"message":"Call is not in-progress.","status":400}`, false},
		{"bad request", 400, `{"status":400,"code":20001,"message":"Bad request","more_info":"https://www.twilio.com/docs/errors/20001"}`, true},
		{"server error html", 502, `<html>bad gateway</html>`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer api.Close()
			u, _ := url.Parse(api.URL)
			rc := &restClient{accountSID: testAccount, authToken: testToken, base: u, timeout: 5 * time.Second}
			err := rc.completeCall(context.Background(), "CA0123456789abcdef0123456789abcdef")
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
	// A cancelled context aborts the request.
	block := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer api.Close()
	defer close(block)
	u, _ := url.Parse(api.URL)
	rc := &restClient{accountSID: testAccount, authToken: testToken, base: u, timeout: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rc.completeCall(ctx, "CA1"); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestBadSignaturesForbidden(t *testing.T) {
	called := make(chan struct{}, 1)
	_, base := startServer(t, Config{PublicURL: testPublic, AuthToken: testToken}, func(ctx context.Context, leg *Leg) { called <- struct{}{} })

	// Dialer with the wrong token: webhook refused.
	d := &Dialer{ServerURL: base, PublicURL: testPublic, AuthToken: "wrong", From: "+1", To: "+2"}
	_, err := d.Dial(context.Background())
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 403 || he.Step != "webhook" {
		t.Errorf("dial with wrong token: %v, want webhook 403", err)
	}
	// Signed for the Host the request really went to instead of the
	// configured public URL: refused.
	d = &Dialer{ServerURL: base, AuthToken: testToken, From: "+1", To: "+2"}
	if _, err := d.Dial(context.Background()); !errors.As(err, &he) || he.StatusCode != 403 {
		t.Errorf("dial signed for the wrong URL: %v, want 403", err)
	}

	body := "CallSid=CA1&From=%2B1&To=%2B2"
	for _, sig := range []string{"", "bogus", Signature(testToken, testPublic+VoicePath, [][2]string{{"CallSid", "CA2"}, {"From", "+1"}, {"To", "+2"}})} {
		for _, path := range []string{VoicePath, StatusPath} {
			req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
			req.Close = true
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if sig != "" {
				req.Header.Set(SignatureHeader, sig)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 403 || len(data) != 0 || resp.Header.Get("Content-Type") != "" {
				t.Errorf("%s with signature %q: %d %q (content-type %q), want bare 403", path, sig, resp.StatusCode, data, resp.Header.Get("Content-Type"))
			}
		}
	}

	// Upgrade with a bad or missing signature: 403 before upgrading.
	wsURL := "ws" + strings.TrimPrefix(base, "http") + MediaPath
	for _, sig := range []string{"", Signature("wrong", "wss://parley.example.com/twilio/media", nil), Signature(testToken, "https://parley.example.com/twilio/media", nil)} {
		header := http.Header{}
		if sig != "" {
			header.Set(SignatureHeader, sig)
		}
		conn, resp, err := websocket.DefaultDialer.Dial(wsURL, header)
		if err == nil {
			conn.Close()
			t.Errorf("upgrade with signature %q accepted", sig)
			continue
		}
		if resp == nil || resp.StatusCode != 403 {
			t.Errorf("upgrade with signature %q: %v, want 403", sig, err)
		}
	}
	// A correctly signed upgrade is accepted (and then times out waiting for start is not needed: close at once).
	header := http.Header{}
	header.Set(SignatureHeader, Signature(testToken, "wss://parley.example.com/twilio/media", nil))
	conn, _, err := websocket.DefaultDialer.Dial(wsURL, header)
	if err != nil {
		t.Fatalf("signed upgrade refused: %v", err)
	}
	conn.Close()
	// A plain GET is not an upgrade.
	req, _ := http.NewRequest(http.MethodGet, base+MediaPath, nil)
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET: %d, want 426", resp.StatusCode)
	}
	select {
	case <-called:
		t.Error("call handler ran for a stream without start")
	default:
	}
}

// TestServerCloseEndsCalls checks that Close cancels running calls and
// waits for their handlers.
func TestServerCloseEndsCalls(t *testing.T) {
	srv, base, legs, results := echoServer(t, Config{PublicURL: testPublic, AuthToken: testToken})
	d := &Dialer{ServerURL: base, PublicURL: testPublic, AuthToken: testToken, From: "+1", To: "+2"}
	call, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, legs, "call handler")
	srv.Close()
	res := waitFor(t, results, "Run to return")
	if !errors.Is(res.err, context.Canceled) {
		t.Errorf("Run after server Close = %v, want context.Canceled", res.err)
	}
	if err := call.Wait(context.Background()); err != nil {
		t.Errorf("simulated call ended with %v, want a clean close", err)
	}
	if err := call.SendDTMF('1'); !errors.Is(err, ErrCallEnded) {
		t.Errorf("SendDTMF after the end = %v", err)
	}
	if err := call.SendAudio(tone(160)); !errors.Is(err, ErrCallEnded) {
		t.Errorf("SendAudio after the end = %v", err)
	}
}

func TestDialerErrors(t *testing.T) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Post(VoicePath, func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "text/xml")
		return c.SendString(`<Response><Say>We are closed.</Say><Hangup/></Response>`)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = app.Listener(ln) }()
	defer func() { _ = app.Shutdown(); <-served }()

	if _, err := (&Dialer{ServerURL: "http://" + ln.Addr().String()}).Dial(context.Background()); err == nil || !strings.Contains(err.Error(), "no <Connect><Stream>") {
		t.Errorf("answer without stream: %v", err)
	}
	if _, err := (&Dialer{ServerURL: "ftp://x"}).Dial(context.Background()); err == nil {
		t.Error("ftp server url accepted")
	}
	var he *HTTPError
	if _, err := (&Dialer{ServerURL: "http://" + ln.Addr().String() + "/nowhere"}).Dial(context.Background()); !errors.As(err, &he) || he.StatusCode != 404 || he.Error() == "" {
		t.Errorf("404 webhook: %v", err)
	}
}

// TestSimulatedSilenceAndRecording streams silence and speech and checks
// the recording's timeline: the caller track holds the speech after the
// silence, both tracks are the same length.
func TestSimulatedSilenceAndRecording(t *testing.T) {
	_, base, legs, results := echoServer(t, Config{PublicURL: testPublic, AuthToken: testToken})
	call, err := (&Dialer{ServerURL: base, PublicURL: testPublic, AuthToken: testToken, From: "+1", To: "+2"}).Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, legs, "call handler")
	if err := call.SendSilence(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := call.SendAudio(tone(800)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Done():
		t.Fatal("call ended early")
	default:
	}
	if err := call.Hangup(); err != nil {
		t.Fatal(err)
	}
	if res := waitFor(t, results, "Run"); res.err != nil {
		t.Fatal(res.err)
	}
	caller, ai := call.Recording()
	if len(caller) != len(ai) {
		t.Fatalf("tracks %d and %d samples", len(caller), len(ai))
	}
	first := -1
	for i, s := range caller {
		if s != 0 {
			first = i
			break
		}
	}
	if first < 1600 {
		t.Errorf("speech starts at sample %d, before the 200 ms of silence ended", first)
	}
	if call.Started().IsZero() {
		t.Error("no start time")
	}
}

// TestLegRedirect moves a live call to other TwiML through the REST API.
func TestLegRedirect(t *testing.T) {
	twimls := make(chan string, 1)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		twimls <- r.PostForm.Get("Twiml")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"sid":"CA1","status":"in-progress"}`)
	}))
	defer api.Close()
	errs := make(chan error, 3)
	_, base := startServer(t, Config{PublicURL: testPublic, AuthToken: testToken, AccountSID: testAccount, APIBaseURL: api.URL},
		func(ctx context.Context, leg *Leg) {
			conf := &RawVerb{XMLName: xml.Name{Local: "Dial"}, Inner: []byte(`<Conference beep="false">call-` + leg.Info().CallID + `</Conference>`)}
			errs <- leg.Redirect(ctx, &Response{Verbs: []Verb{&Say{Text: "Connecting you to an agent."}, conf}})
			errs <- leg.Redirect(ctx, &Response{Verbs: []Verb{&Say{Text: strings.Repeat("long ", 1000)}}})
			errs <- leg.Redirect(ctx, &Response{Verbs: []Verb{&Pause{Length: -1}}})
		})
	call, err := (&Dialer{ServerURL: base, PublicURL: testPublic, AuthToken: testToken, From: "+1", To: "+2"}).Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := waitFor(t, errs, "redirect"); err != nil {
		t.Fatal(err)
	}
	r, err := ParseTwiML([]byte(waitFor(t, twimls, "REST update")))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Verbs) != 2 || r.Verbs[1].(*RawVerb).XMLName.Local != "Dial" || !strings.Contains(string(r.Verbs[1].(*RawVerb).Inner), call.CallSID) {
		t.Errorf("redirected to %+v", r.Verbs)
	}
	if err := waitFor(t, errs, "long redirect"); !errors.Is(err, ErrTwiML) {
		t.Errorf("redirect with 5000 bytes of TwiML = %v, want ErrTwiML", err)
	}
	if err := waitFor(t, errs, "invalid redirect"); !errors.Is(err, ErrTwiML) {
		t.Errorf("redirect with invalid TwiML = %v, want ErrTwiML", err)
	}
	_ = call.Wait(context.Background())

	// Without credentials there is no REST API to ask.
	leg, _ := startedLeg(t, testStart)
	if err := leg.Redirect(context.Background(), &Response{}); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("redirect without credentials = %v", err)
	}
}
