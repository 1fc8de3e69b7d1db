package twilio

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/rs/zerolog"

	"github.com/parley-ai/parley/media"
)

type mediaStreamsFile struct {
	FromTwilio map[string]struct {
		DocText string          `json:"doc_text"`
		Parsed  json.RawMessage `json:"parsed"`
	} `json:"from_twilio"`
	ToTwilio map[string]struct {
		DocText string          `json:"doc_text"`
		Parsed  json.RawMessage `json:"parsed"`
	} `json:"to_twilio"`
	Session struct {
		Frames   []string `json:"frames"`
		Payloads struct {
			Tone struct {
				Value         string  `json:"value"`
				DecodedFirst8 []int16 `json:"decoded_first8"`
			} `json:"tone_payload_b64"`
		} `json:"payloads"`
	} `json:"synthetic_session_from_twilio"`
	FramesToTwilio []string `json:"synthetic_frames_to_twilio"`
}

func loadMediaStreams(t testing.TB) mediaStreamsFile {
	var f mediaStreamsFile
	readVector(t, "media_streams_messages.json", &f)
	return f
}

// TestParseMessageVectors parses every documented message and every frame
// of the synthetic session and compares with the parsed form in the file.
func TestParseMessageVectors(t *testing.T) {
	f := loadMediaStreams(t)
	check := func(t *testing.T, text string, parsed json.RawMessage) {
		got, err := ParseMessage([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		var want Message
		if err := json.Unmarshal(parsed, &want); err != nil {
			t.Fatal(err)
		}
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(&want)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Errorf("parsed\n%s\nwant\n%s", gotJSON, wantJSON)
		}
	}
	n := 0
	for name, ex := range f.FromTwilio {
		t.Run("from/"+name, func(t *testing.T) { check(t, ex.DocText, ex.Parsed) })
		n++
	}
	for name, ex := range f.ToTwilio {
		t.Run("to/"+name, func(t *testing.T) { check(t, ex.DocText, ex.Parsed) })
		n++
	}
	for i, fr := range append(append([]string{}, f.Session.Frames...), f.FramesToTwilio...) {
		m, err := ParseMessage([]byte(fr))
		if err != nil {
			t.Fatalf("synthetic frame %d: %v", i, err)
		}
		if m.Media != nil {
			mu, err := base64.StdEncoding.DecodeString(m.Media.Payload)
			if err != nil || len(mu) != 160 {
				t.Errorf("frame %d payload: %d bytes, %v", i, len(mu), err)
			}
		}
		n++
	}
	if n != 7+3+7+3 {
		t.Errorf("checked %d messages", n)
	}
	start, _ := ParseMessage([]byte(f.FromTwilio["start"].DocText))
	if start.Start.MediaFormat.SampleRate != 8000 || start.Start.CustomParameters["FirstName"] != "Jane" || start.SequenceNumber != "1" {
		t.Errorf("start parsed as %+v", start.Start)
	}
}

func TestParseMessageErrors(t *testing.T) {
	tests := []string{
		``, `null`, `[]`, `"media"`, `{}`, `{"event":""}`, `{"event":5}`,
		`{"event":"media","media":"x"}`, `{"event":"media","media":{"payload":5}}`,
		`{"event":"media"`, `{"event":"media"} x`, `{"event":"media",}`, `{"event":"a\x01"}`,
		`{"event":"a\q"}`, `{"event":"a","n":01}`, `{"event":"a","n":1.}`, `{"event":"a","n":-}`,
		`{"event":"a","x":tru}`, `{"event":"a","x":[1,]}`, `{"event":"a","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
		`{"event":"start","start":{"mediaFormat":{"sampleRate":"8000"}}}`,
	}
	for _, in := range tests {
		if _, err := ParseMessage([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseMessage(%q) = %v, want ErrMalformed", in, err)
		}
	}
	// Escapes are decoded, unknown fields and null ignored.
	m, err := ParseMessage([]byte(`{"x":{"y":[1,2.5e3,true,null,"\u00e9"]},"event":"m\u0065dia","media":{"payload":"AAEC\/w==","track":null},"streamSid":"MZ\ud83d\ude00"}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Event != "media" || m.Media.Payload != "AAEC/w==" || m.StreamSID != "MZ😀" {
		t.Errorf("parsed %+v %+v", m, m.Media)
	}
}

// wsPair returns a connected server and client WebSocket over loopback.
func wsPair(t testing.TB) (server, client *websocket.Conn) {
	t.Helper()
	conns := make(chan *websocket.Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		conns <- c
	}))
	t.Cleanup(hs.Close)
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	server = <-conns
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// recorder is a LegHandler that keeps everything.
type recorder struct {
	frames [][]int16
	dtmf   []byte
	marks  []string
}

func (r *recorder) OnAudio(pcm []int16) { r.frames = append(r.frames, append([]int16(nil), pcm...)) }
func (r *recorder) OnDTMF(d byte)       { r.dtmf = append(r.dtmf, d) }
func (r *recorder) OnMark(name string)  { r.marks = append(r.marks, name) }

func startedLeg(t testing.TB, frames ...string) (*Leg, *websocket.Conn) {
	t.Helper()
	srv, cli := wsPair(t)
	for _, fr := range frames {
		if err := cli.WriteMessage(websocket.TextMessage, []byte(fr)); err != nil {
			t.Fatal(err)
		}
	}
	leg := newLeg(srv, zerolog.Nop(), nil, time.Second)
	if err := leg.awaitStart(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return leg, cli
}

// TestLegSyntheticSession runs the synthetic session through a leg and
// checks what the handler sees, byte-exact outbound messages included.
func TestLegSyntheticSession(t *testing.T) {
	f := loadMediaStreams(t)
	leg, cli := startedLeg(t, f.Session.Frames...)
	info := leg.Info()
	if info.CallID != "CA0123456789abcdef0123456789abcdef" || info.StreamID != "MZ0123456789abcdef0123456789abcdef" || info.Params["tenant"] != "acme" || leg.AccountSID() != "AC0123456789abcdef0123456789abcdef" {
		t.Errorf("info %+v", info)
	}
	var rec recorder
	if err := leg.Run(context.Background(), &rec); err != nil {
		t.Fatalf("Run = %v, want nil after stop", err)
	}
	if len(rec.frames) != 2 || len(rec.frames[0]) != 160 {
		t.Fatalf("got %d frames", len(rec.frames))
	}
	for i, want := range f.Session.Payloads.Tone.DecodedFirst8 {
		if rec.frames[1][i] != want || rec.frames[0][i] != 0 {
			t.Fatalf("sample %d: %d/%d, want 0/%d", i, rec.frames[0][i], rec.frames[1][i], want)
		}
	}
	if string(rec.dtmf) != "5" || len(rec.marks) != 1 || rec.marks[0] != "turn-1-sentence-1" {
		t.Errorf("dtmf %q marks %q", rec.dtmf, rec.marks)
	}
	if st := leg.Stats(); st.FramesIn != 2 || st.Malformed != 0 || st.Unknown != 0 || st.SequenceGaps != 0 {
		t.Errorf("stats %+v", st)
	}

	// Outbound: the tone, a mark and a clear, byte-exact.
	mu, _ := base64.StdEncoding.DecodeString(f.Session.Payloads.Tone.Value)
	pcm := make([]int16, len(mu))
	media.MulawDecode(pcm, mu)
	if err := leg.WriteFrame(pcm); err != nil {
		t.Fatal(err)
	}
	if err := leg.Mark("turn-1-sentence-1"); err != nil {
		t.Fatal(err)
	}
	if err := leg.Clear(); err != nil {
		t.Fatal(err)
	}
	for i, want := range f.FramesToTwilio {
		_, got, err := cli.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("outbound %d:\n%s\nwant\n%s", i, got, want)
		}
	}
}

func mediaFrame(seq int, payload []byte) string {
	return `{"event":"media","sequenceNumber":"` + itoa(seq) + `","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"` +
		base64.StdEncoding.EncodeToString(payload) + `"},"streamSid":"MZ1"}`
}

func itoa(n int) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

const testStart = `{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"From":"+1","To":"+2"}},"streamSid":"MZ1"}`

// TestLegReframing sends chunks of odd sizes and expects seamless 20 ms
// frames, with skipped sequence numbers counted and outbound tracks ignored.
func TestLegReframing(t *testing.T) {
	mu := make([]byte, 1000)
	for i := range mu {
		mu[i] = byte(i % 251)
	}
	frames := []string{`{"event":"connected","protocol":"Call","version":"1.0.0"}`, testStart}
	sizes := []int{100, 60, 400, 1, 279, 160}
	pos, seq := 0, 2
	for _, n := range sizes {
		frames = append(frames, mediaFrame(seq, mu[pos:pos+n]))
		pos += n
		seq++
	}
	frames = append(frames, mediaFrame(seq+3, mu[:0])) // 3 lost messages
	frames = append(frames, strings.Replace(mediaFrame(seq+4, mu[:160]), `"inbound"`, `"outbound"`, 1))
	frames = append(frames, `{"event":"stop","sequenceNumber":"`+itoa(seq+5)+`","stop":{"accountSid":"AC1","callSid":"CA1"},"streamSid":"MZ1"}`)
	leg, _ := startedLeg(t, frames...)
	if leg.Info().From != "+1" || leg.Info().To != "+2" {
		t.Errorf("info %+v", leg.Info())
	}
	var rec recorder
	if err := leg.Run(context.Background(), &rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.frames) != 1000/160 {
		t.Fatalf("%d frames, want %d", len(rec.frames), 1000/160)
	}
	for i, fr := range rec.frames {
		for j, s := range fr {
			if want := media.MulawToLinear(mu[i*160+j]); s != want {
				t.Fatalf("frame %d sample %d = %d, want %d", i, j, s, want)
			}
		}
	}
	if st := leg.Stats(); st.SequenceGaps != 3 || st.FramesIn != 6 {
		t.Errorf("stats %+v", st)
	}
}

func TestLegStartErrors(t *testing.T) {
	tests := []struct {
		name   string
		frames []string
	}{
		{"16 kHz", []string{strings.Replace(testStart, "8000", "16000", 1)}},
		{"a-law", []string{strings.Replace(testStart, "x-mulaw", "x-alaw", 1)}},
		{"stereo", []string{strings.Replace(testStart, `"channels":1`, `"channels":2`, 1)}},
		{"no call sid", []string{strings.Replace(testStart, `"callSid":"CA1"`, `"callSid":""`, 1)}},
		{"start not an object", []string{`{"event":"start","start":[]}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, cli := wsPair(t)
			for _, fr := range tt.frames {
				_ = cli.WriteMessage(websocket.TextMessage, []byte(fr))
			}
			leg := newLeg(srv, zerolog.Nop(), nil, time.Second)
			if err := leg.awaitStart(context.Background(), 5*time.Second); err == nil {
				t.Fatal("start accepted")
			}
			if err := leg.WriteFrame(make([]int16, 160)); !errors.Is(err, ErrNotStarted) {
				t.Errorf("WriteFrame before start = %v", err)
			}
			if err := leg.Run(context.Background(), &recorder{}); !errors.Is(err, ErrNotStarted) {
				t.Errorf("Run before start = %v", err)
			}
		})
	}
	// Nothing arrives: the wait for start times out.
	srv, _ := wsPair(t)
	leg := newLeg(srv, zerolog.Nop(), nil, time.Second)
	if err := leg.awaitStart(context.Background(), 50*time.Millisecond); err == nil {
		t.Error("no start: accepted")
	}
}

func TestLegRunEnds(t *testing.T) {
	t.Run("context", func(t *testing.T) {
		leg, _ := startedLeg(t, testStart)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := leg.Run(ctx, &recorder{}); !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
	t.Run("closed by parley", func(t *testing.T) {
		leg, _ := startedLeg(t, testStart)
		done := make(chan error, 1)
		go func() { done <- leg.Run(context.Background(), &recorder{}) }()
		if err := leg.Hangup(context.Background(), "test"); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Run after Hangup = %v, want nil", err)
		}
		if err := leg.Mark("x"); !errors.Is(err, ErrClosed) {
			t.Errorf("Mark after close = %v", err)
		}
		if err := leg.Clear(); !errors.Is(err, ErrClosed) {
			t.Errorf("Clear after close = %v", err)
		}
	})
	t.Run("normal close without stop", func(t *testing.T) {
		leg, cli := startedLeg(t, testStart)
		_ = cli.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		if err := leg.Run(context.Background(), &recorder{}); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
	t.Run("abnormal close", func(t *testing.T) {
		leg, cli := startedLeg(t, testStart)
		_ = cli.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
		_ = cli.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, "x"))
		err := leg.Run(context.Background(), &recorder{})
		if !errors.Is(err, ErrDropped) {
			t.Errorf("Run = %v, want ErrDropped", err)
		}
		if leg.Stats().Malformed != 1 {
			t.Errorf("binary frame not counted: %+v", leg.Stats())
		}
	})
	t.Run("twice", func(t *testing.T) {
		leg, cli := startedLeg(t, testStart)
		_ = cli.WriteMessage(websocket.TextMessage, []byte(`{"event":"stop"}`))
		if err := leg.Run(context.Background(), &recorder{}); err != nil {
			t.Fatal(err)
		}
		if err := leg.Run(context.Background(), &recorder{}); err == nil {
			t.Error("second Run accepted")
		}
	})
}

type nopHandler struct{}

func (nopHandler) OnAudio([]int16) {}
func (nopHandler) OnDTMF(byte)     {}
func (nopHandler) OnMark(string)   {}

// BenchmarkInboundMedia measures parsing and decoding one 20 ms media
// message, as the leg's reader does per frame.
func BenchmarkInboundMedia(b *testing.B) {
	f := loadMediaStreams(b)
	data := []byte(f.Session.Frames[3])
	leg := newLeg(nil, zerolog.Nop(), nil, time.Second)
	var h nopHandler
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := leg.dispatch(data, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteFrame measures encoding and sending one 20 ms frame over a
// real loopback WebSocket.
func BenchmarkWriteFrame(b *testing.B) {
	srv, cli := wsPair(b)
	// Drain raw bytes so the reader's own allocations do not count.
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := cli.NetConn().Read(buf); err != nil {
				return
			}
		}
	}()
	leg := newLeg(srv, zerolog.Nop(), nil, time.Second)
	if err := leg.start(&Message{Event: EventStart, Start: &StartMessage{StreamSID: "MZ0123456789abcdef0123456789abcdef", CallSID: "CA1",
		MediaFormat: MediaFormat{Encoding: MulawEncoding, SampleRate: 8000, Channels: 1}}}); err != nil {
		b.Fatal(err)
	}
	pcm := make([]int16, 160)
	for i := range pcm {
		pcm[i] = int16(i * 97)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := leg.WriteFrame(pcm); err != nil {
			b.Fatal(err)
		}
	}
}
