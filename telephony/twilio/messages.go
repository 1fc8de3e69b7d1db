package twilio

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// Media Streams event names. Twilio sends connected, start, media, dtmf,
// mark and stop; parley sends media, mark and clear.
const (
	EventConnected = "connected"
	EventStart     = "start"
	EventMedia     = "media"
	EventDTMF      = "dtmf"
	EventMark      = "mark"
	EventStop      = "stop"
	EventClear     = "clear"
)

// Media format Twilio streams on <Connect><Stream>; the only one parley
// accepts.
const (
	MulawEncoding   = "audio/x-mulaw"
	MulawSampleRate = 8000
)

// Message is one Media Streams WebSocket text frame in either direction, in
// Twilio's JSON shape. Counters (sequenceNumber, chunk, timestamp) are JSON
// strings on the wire and stay strings here.
type Message struct {
	Event          string        `json:"event"`
	SequenceNumber string        `json:"sequenceNumber,omitempty"`
	StreamSID      string        `json:"streamSid,omitempty"`
	Protocol       string        `json:"protocol,omitempty"` // connected only
	Version        string        `json:"version,omitempty"`  // connected only
	Start          *StartMessage `json:"start,omitempty"`
	Media          *MediaMessage `json:"media,omitempty"`
	DTMF           *DTMFMessage  `json:"dtmf,omitempty"`
	Mark           *MarkMessage  `json:"mark,omitempty"`
	Stop           *StopMessage  `json:"stop,omitempty"`
}

// StartMessage is the body of the start event: which call and stream this
// socket carries, its audio format and the <Parameter>s of the TwiML.
type StartMessage struct {
	AccountSID       string            `json:"accountSid"`
	StreamSID        string            `json:"streamSid"`
	CallSID          string            `json:"callSid"`
	Tracks           []string          `json:"tracks"`
	MediaFormat      MediaFormat       `json:"mediaFormat"`
	CustomParameters map[string]string `json:"customParameters"`
}

// MediaFormat describes the audio of a stream; sampleRate and channels are
// JSON numbers.
type MediaFormat struct {
	Encoding   string `json:"encoding"`
	SampleRate int    `json:"sampleRate"`
	Channels   int    `json:"channels"`
}

// MediaMessage carries base64 mu-law audio. Messages to Twilio carry only
// the payload.
type MediaMessage struct {
	Track     string `json:"track,omitempty"`
	Chunk     string `json:"chunk,omitempty"`
	Timestamp string `json:"timestamp,omitempty"`
	Payload   string `json:"payload"`
}

// DTMFMessage is one key the caller pressed.
type DTMFMessage struct {
	Track string `json:"track,omitempty"`
	Digit string `json:"digit"`
}

// MarkMessage names a point in the outbound audio.
type MarkMessage struct {
	Name string `json:"name"`
}

// StopMessage is the body of the stop event.
type StopMessage struct {
	AccountSID string `json:"accountSid"`
	CallSID    string `json:"callSid"`
}

// ErrMalformed is returned (wrapped) for a frame that is not a valid Media
// Streams message.
var ErrMalformed = errors.New("twilio: malformed media streams message")

// ParseMessage decodes one Media Streams text frame. It rejects invalid
// JSON, a top level that is not an object, a missing event and fields of the
// wrong JSON type; unknown fields are ignored. Use it off the hot path; the
// leg's reader parses media frames without allocating.
func ParseMessage(data []byte) (*Message, error) {
	var f frame
	if err := f.scan(data); err != nil {
		return nil, err
	}
	m := new(Message)
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// The scanner matches names exactly, encoding/json case-insensitively;
	// the scanner's view of the fields it knows wins.
	m.Event = string(f.event)
	m.SequenceNumber = string(f.seq)
	m.StreamSID = string(f.streamSID)
	if f.hasMedia {
		m.Media = &MediaMessage{Track: string(f.track), Chunk: string(f.chunk), Timestamp: string(f.timestamp), Payload: string(f.payload)}
	} else {
		m.Media = nil
	}
	return m, nil
}

// frame is the allocation-free view of a message that the hot path needs:
// the event, the counters and, for media, the payload. Byte slices point into
// the scanned data or into scratch (for strings with escapes); they are valid
// until the next scan.
type frame struct {
	event, seq, streamSID   []byte
	track, chunk, timestamp []byte
	payload                 []byte
	hasMedia                bool
	scratch                 []byte
	data                    []byte
	pos, depth              int
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 32

func (f *frame) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrMalformed, f.pos, fmt.Sprintf(format, args...))
}

// scan parses data, filling f. It validates the whole document as JSON.
func (f *frame) scan(data []byte) error {
	*f = frame{scratch: f.scratch[:0], data: data}
	f.ws()
	if f.pos >= len(f.data) || f.data[f.pos] != '{' {
		return f.errorf("top level is not an object")
	}
	if err := f.object(f.topField); err != nil {
		return err
	}
	f.ws()
	if f.pos != len(f.data) {
		return f.errorf("trailing data")
	}
	if len(f.event) == 0 {
		return f.errorf("no event")
	}
	return nil
}

func (f *frame) topField(key []byte) error {
	switch string(key) {
	case "event":
		return f.stringField(&f.event)
	case "sequenceNumber":
		return f.stringField(&f.seq)
	case "streamSid":
		return f.stringField(&f.streamSID)
	case "media":
		f.ws()
		if f.literal("null") {
			f.hasMedia = false
			f.track, f.chunk, f.timestamp, f.payload = nil, nil, nil, nil
			return nil
		}
		if f.pos >= len(f.data) || f.data[f.pos] != '{' {
			return f.errorf("media is not an object")
		}
		f.hasMedia = true
		return f.object(f.mediaField)
	}
	return f.value()
}

func (f *frame) mediaField(key []byte) error {
	switch string(key) {
	case "track":
		return f.stringField(&f.track)
	case "chunk":
		return f.stringField(&f.chunk)
	case "timestamp":
		return f.stringField(&f.timestamp)
	case "payload":
		return f.stringField(&f.payload)
	}
	return f.value()
}

// stringField reads a string (or null, leaving dst nil) into dst.
func (f *frame) stringField(dst *[]byte) error {
	f.ws()
	if f.literal("null") {
		*dst = nil
		return nil
	}
	s, err := f.str()
	if err != nil {
		return err
	}
	*dst = s
	return nil
}

func (f *frame) ws() {
	for f.pos < len(f.data) {
		switch f.data[f.pos] {
		case ' ', '\t', '\n', '\r':
			f.pos++
		default:
			return
		}
	}
}

// literal consumes lit if it is next.
func (f *frame) literal(lit string) bool {
	if len(f.data)-f.pos >= len(lit) && string(f.data[f.pos:f.pos+len(lit)]) == lit {
		f.pos += len(lit)
		return true
	}
	return false
}

// object parses an object at f.pos, calling field for each member with the
// value still unread.
func (f *frame) object(field func(key []byte) error) error {
	f.depth++
	if f.depth > maxDepth {
		return f.errorf("nested too deep")
	}
	f.pos++ // '{'
	f.ws()
	if f.pos < len(f.data) && f.data[f.pos] == '}' {
		f.pos++
		f.depth--
		return nil
	}
	for {
		f.ws()
		key, err := f.str()
		if err != nil {
			return err
		}
		f.ws()
		if f.pos >= len(f.data) || f.data[f.pos] != ':' {
			return f.errorf("expected ':'")
		}
		f.pos++
		if err := field(key); err != nil {
			return err
		}
		f.ws()
		if f.pos >= len(f.data) {
			return f.errorf("unterminated object")
		}
		switch f.data[f.pos] {
		case ',':
			f.pos++
		case '}':
			f.pos++
			f.depth--
			return nil
		default:
			return f.errorf("expected ',' or '}'")
		}
	}
}

func (f *frame) skipField([]byte) error { return f.value() }

// value validates and skips any JSON value.
func (f *frame) value() error {
	f.ws()
	if f.pos >= len(f.data) {
		return f.errorf("missing value")
	}
	switch c := f.data[f.pos]; {
	case c == '{':
		return f.object(f.skipField)
	case c == '[':
		return f.array()
	case c == '"':
		_, err := f.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return f.number()
	case f.literal("true"), f.literal("false"), f.literal("null"):
		return nil
	default:
		return f.errorf("unexpected %q", c)
	}
}

func (f *frame) array() error {
	f.depth++
	if f.depth > maxDepth {
		return f.errorf("nested too deep")
	}
	f.pos++ // '['
	f.ws()
	if f.pos < len(f.data) && f.data[f.pos] == ']' {
		f.pos++
		f.depth--
		return nil
	}
	for {
		if err := f.value(); err != nil {
			return err
		}
		f.ws()
		if f.pos >= len(f.data) {
			return f.errorf("unterminated array")
		}
		switch f.data[f.pos] {
		case ',':
			f.pos++
		case ']':
			f.pos++
			f.depth--
			return nil
		default:
			return f.errorf("expected ',' or ']'")
		}
	}
}

func (f *frame) digits() int {
	start := f.pos
	for f.pos < len(f.data) && f.data[f.pos] >= '0' && f.data[f.pos] <= '9' {
		f.pos++
	}
	return f.pos - start
}

func (f *frame) number() error {
	if f.data[f.pos] == '-' {
		f.pos++
	}
	if f.pos < len(f.data) && f.data[f.pos] == '0' {
		f.pos++
	} else if f.digits() == 0 {
		return f.errorf("bad number")
	}
	if f.pos < len(f.data) && f.data[f.pos] == '.' {
		f.pos++
		if f.digits() == 0 {
			return f.errorf("bad fraction")
		}
	}
	if f.pos < len(f.data) && (f.data[f.pos] == 'e' || f.data[f.pos] == 'E') {
		f.pos++
		if f.pos < len(f.data) && (f.data[f.pos] == '+' || f.data[f.pos] == '-') {
			f.pos++
		}
		if f.digits() == 0 {
			return f.errorf("bad exponent")
		}
	}
	return nil
}

// str reads a JSON string at f.pos and returns its decoded bytes. Strings
// without escapes are returned in place; others are decoded into scratch.
func (f *frame) str() ([]byte, error) {
	if f.pos >= len(f.data) || f.data[f.pos] != '"' {
		return nil, f.errorf("expected string")
	}
	f.pos++
	start := f.pos
	for f.pos < len(f.data) {
		c := f.data[f.pos]
		switch {
		case c == '"':
			s := f.data[start:f.pos]
			f.pos++
			return s, nil
		case c == '\\':
			return f.escapedStr(start)
		case c < 0x20:
			return nil, f.errorf("control character in string")
		}
		f.pos++
	}
	return nil, f.errorf("unterminated string")
}

func (f *frame) escapedStr(start int) ([]byte, error) {
	from := len(f.scratch)
	f.scratch = append(f.scratch, f.data[start:f.pos]...)
	for f.pos < len(f.data) {
		c := f.data[f.pos]
		switch {
		case c == '"':
			f.pos++
			return f.scratch[from:len(f.scratch):len(f.scratch)], nil
		case c < 0x20:
			return nil, f.errorf("control character in string")
		case c != '\\':
			f.scratch = append(f.scratch, c)
			f.pos++
			continue
		}
		f.pos++
		if f.pos >= len(f.data) {
			break
		}
		e := f.data[f.pos]
		f.pos++
		switch e {
		case '"', '\\', '/':
			f.scratch = append(f.scratch, e)
		case 'b':
			f.scratch = append(f.scratch, '\b')
		case 'f':
			f.scratch = append(f.scratch, '\f')
		case 'n':
			f.scratch = append(f.scratch, '\n')
		case 'r':
			f.scratch = append(f.scratch, '\r')
		case 't':
			f.scratch = append(f.scratch, '\t')
		case 'u':
			r, ok := f.hex4()
			if !ok {
				return nil, f.errorf("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				save := f.pos
				if f.literal(`\u`) {
					if r2, ok := f.hex4(); ok {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							f.scratch = utf8.AppendRune(f.scratch, d)
							continue
						}
					}
				}
				f.pos = save
				r = utf8.RuneError
			}
			f.scratch = utf8.AppendRune(f.scratch, r)
		default:
			return nil, f.errorf("bad escape \\%c", e)
		}
	}
	return nil, f.errorf("unterminated string")
}

func (f *frame) hex4() (rune, bool) {
	if len(f.data)-f.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range f.data[f.pos : f.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	f.pos += 4
	return r, true
}

// parseCounter parses a decimal counter such as sequenceNumber without
// allocating; ok is false for anything but 1..19 digits.
func parseCounter(b []byte) (n uint64, ok bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
