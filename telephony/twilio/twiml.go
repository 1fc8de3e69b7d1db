package twilio

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"unicode/utf8"
)

// ErrTwiML is returned (wrapped) for TwiML that parley must not send or
// cannot understand.
var ErrTwiML = errors.New("twilio: invalid twiml")

// Response is a TwiML document: the verbs Twilio executes in order.
// Marshal it with MarshalTwiML; attributes come out in field order, so the
// same Response always renders to the same bytes.
type Response struct {
	Verbs []Verb
}

// Verb is one TwiML verb: *Connect, *Say, *Pause, *Hangup, *Redirect,
// *Reject, or *RawVerb for the verbs parley passes through untouched.
type Verb interface {
	verbName() string
}

// Connect connects the call to a bidirectional Media Stream; verbs after it
// run only once parley closes the WebSocket.
type Connect struct {
	XMLName xml.Name `xml:"Connect"`
	Action  string   `xml:"action,attr,omitempty"`
	Method  string   `xml:"method,attr,omitempty"`
	Stream  *Stream  `xml:"Stream"`
}

// Stream is the <Stream> inside <Connect>. URL must be an absolute wss://
// URL without query string (Twilio ignores or rejects anything else); data
// for the stream goes in Parameters, which arrive in start.customParameters.
type Stream struct {
	XMLName              xml.Name    `xml:"Stream"`
	URL                  string      `xml:"url,attr"`
	Name                 string      `xml:"name,attr,omitempty"`
	Track                string      `xml:"track,attr,omitempty"`
	StatusCallback       string      `xml:"statusCallback,attr,omitempty"`
	StatusCallbackMethod string      `xml:"statusCallbackMethod,attr,omitempty"`
	Parameters           []Parameter `xml:"Parameter"`
}

// Parameter is one name/value pair handed to the stream.
type Parameter struct {
	XMLName xml.Name `xml:"Parameter"`
	Name    string   `xml:"name,attr"`
	Value   string   `xml:"value,attr"`
}

// Say speaks Text with Twilio's text-to-speech.
type Say struct {
	XMLName  xml.Name `xml:"Say"`
	Voice    string   `xml:"voice,attr,omitempty"`
	Language string   `xml:"language,attr,omitempty"`
	Loop     int      `xml:"loop,attr,omitempty"`
	Text     string   `xml:",chardata"`
}

// Pause waits Length seconds (Twilio's default, 1, when zero).
type Pause struct {
	XMLName xml.Name `xml:"Pause"`
	Length  int      `xml:"length,attr,omitempty"`
}

// Hangup ends the call.
type Hangup struct {
	XMLName xml.Name `xml:"Hangup"`
}

// Redirect moves the call to the TwiML at URL.
type Redirect struct {
	XMLName xml.Name `xml:"Redirect"`
	Method  string   `xml:"method,attr,omitempty"`
	URL     string   `xml:",chardata"`
}

// Reject refuses an incoming call without answering (no charge).
type Reject struct {
	XMLName xml.Name `xml:"Reject"`
	Reason  string   `xml:"reason,attr,omitempty"`
}

// RawVerb is a TwiML verb parley does not model (Dial, Enqueue, Start, ...),
// kept as its attributes and inner XML so a parsed document can be
// inspected and re-rendered.
type RawVerb struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Inner   []byte     `xml:",innerxml"`
}

func (*Connect) verbName() string  { return "Connect" }
func (*Say) verbName() string      { return "Say" }
func (*Pause) verbName() string    { return "Pause" }
func (*Hangup) verbName() string   { return "Hangup" }
func (*Redirect) verbName() string { return "Redirect" }
func (*Reject) verbName() string   { return "Reject" }
func (v *RawVerb) verbName() string {
	return v.XMLName.Local
}

// rawVerbs are the other TwiML Voice verbs, case-sensitive as Twilio reads
// them; anything else is an error.
var rawVerbs = map[string]bool{
	"Dial": true, "Echo": true, "Enqueue": true, "Gather": true, "Leave": true,
	"Pay": true, "Play": true, "Record": true, "Refer": true, "Start": true,
	"Stop": true, "Sms": true, "Message": true,
}

// xmlHeader is the declaration Twilio's own libraries emit.
const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// MarshalTwiML validates r and renders it as a TwiML document.
func (r *Response) MarshalTwiML() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString(xmlHeader)
	enc := xml.NewEncoder(&buf)
	start := xml.StartElement{Name: xml.Name{Local: "Response"}}
	if err := enc.EncodeToken(start); err != nil {
		return nil, fmt.Errorf("twilio: render twiml: %w", err)
	}
	for _, v := range r.Verbs {
		if err := enc.Encode(v); err != nil {
			return nil, fmt.Errorf("twilio: render <%s>: %w", v.verbName(), err)
		}
	}
	if err := enc.EncodeToken(start.End()); err != nil {
		return nil, fmt.Errorf("twilio: render twiml: %w", err)
	}
	if err := enc.Flush(); err != nil {
		return nil, fmt.Errorf("twilio: render twiml: %w", err)
	}
	return buf.Bytes(), nil
}

// Validate checks the rules Twilio enforces at call time, so a bad document
// fails in parley instead of on a live call.
func (r *Response) Validate() error {
	for i, v := range r.Verbs {
		switch v := v.(type) {
		case nil:
			return fmt.Errorf("%w: verb %d is nil", ErrTwiML, i)
		case *Connect:
			if v == nil || v.Stream == nil {
				return fmt.Errorf("%w: <Connect> without <Stream>", ErrTwiML)
			}
			if err := ValidateStreamURL(v.Stream.URL); err != nil {
				return err
			}
			for _, p := range v.Stream.Parameters {
				if p.Name == "" {
					return fmt.Errorf("%w: <Parameter> without name", ErrTwiML)
				}
				// Twilio limits each name+value pair to 500 characters.
				if utf8.RuneCountInString(p.Name)+utf8.RuneCountInString(p.Value) >= 500 {
					return fmt.Errorf("%w: <Parameter name=%q> longer than 500 characters", ErrTwiML, p.Name)
				}
			}
		case *Pause:
			if v.Length < 0 {
				return fmt.Errorf("%w: <Pause length=%d>", ErrTwiML, v.Length)
			}
		case *Say:
			if v.Loop < 0 {
				return fmt.Errorf("%w: <Say loop=%d>", ErrTwiML, v.Loop)
			}
		case *Redirect:
			if v.URL == "" {
				return fmt.Errorf("%w: <Redirect> without URL", ErrTwiML)
			}
		case *RawVerb:
			if !rawVerbs[v.XMLName.Local] {
				return fmt.Errorf("%w: unknown verb <%s>", ErrTwiML, v.XMLName.Local)
			}
		}
	}
	return nil
}

// ValidateStreamURL enforces Twilio's <Stream url> rules: absolute, wss://,
// no query string, no fragment. ws:// is accepted only for a loopback host,
// which Twilio can never reach but parley's local call simulator can.
func ValidateStreamURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: stream url %q: %v", ErrTwiML, raw, err)
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("%w: stream url %q is not absolute", ErrTwiML, raw)
	case u.RawQuery != "" || u.ForceQuery || strings.Contains(raw, "?"):
		return fmt.Errorf("%w: stream url %q has a query string; use <Parameter>", ErrTwiML, raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("%w: stream url %q has a fragment", ErrTwiML, raw)
	case u.Scheme == "wss":
		return nil
	case u.Scheme == "ws" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%w: stream url %q must use wss://", ErrTwiML, raw)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseTwiML decodes a TwiML document. Element names are case-sensitive;
// an unknown verb, a <Stream> outside <Connect>/<Start> or a <Stream url>
// that breaks Twilio's rules is an error.
func ParseTwiML(data []byte) (*Response, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	var root *xml.StartElement
	for root == nil {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrTwiML, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			root = &t
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, fmt.Errorf("%w: text before <Response>", ErrTwiML)
			}
		}
	}
	if root.Name.Local != "Response" {
		return nil, fmt.Errorf("%w: root element <%s>, want <Response>", ErrTwiML, root.Name.Local)
	}
	r := new(Response)
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrTwiML, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			v, err := decodeVerb(dec, t)
			if err != nil {
				return nil, err
			}
			r.Verbs = append(r.Verbs, v)
		case xml.EndElement:
			if err := expectEOF(dec); err != nil {
				return nil, err
			}
			return r, r.Validate()
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, fmt.Errorf("%w: text directly inside <Response>", ErrTwiML)
			}
		}
	}
}

func expectEOF(dec *xml.Decoder) error {
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrTwiML, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return fmt.Errorf("%w: text after </Response>", ErrTwiML)
			}
		case xml.StartElement:
			return fmt.Errorf("%w: element after </Response>", ErrTwiML)
		}
	}
}

func decodeVerb(dec *xml.Decoder, start xml.StartElement) (Verb, error) {
	var v Verb
	switch start.Name.Local {
	case "Connect":
		v = new(Connect)
	case "Say":
		v = new(Say)
	case "Pause":
		v = new(Pause)
	case "Hangup":
		v = new(Hangup)
	case "Redirect":
		v = new(Redirect)
	case "Reject":
		v = new(Reject)
	default:
		if !rawVerbs[start.Name.Local] {
			return nil, fmt.Errorf("%w: unknown verb <%s>", ErrTwiML, start.Name.Local)
		}
		v = new(RawVerb)
	}
	if err := dec.DecodeElement(v, &start); err != nil {
		return nil, fmt.Errorf("%w: <%s>: %v", ErrTwiML, start.Name.Local, err)
	}
	if s, ok := v.(*Say); ok {
		s.Text = strings.TrimSpace(s.Text)
	}
	if r, ok := v.(*Redirect); ok {
		r.URL = strings.TrimSpace(r.URL)
	}
	return v, nil
}

// Stream returns the <Connect><Stream> of r, or nil when r has none.
func (r *Response) Stream() *Stream {
	for _, v := range r.Verbs {
		if c, ok := v.(*Connect); ok && c.Stream != nil {
			return c.Stream
		}
	}
	return nil
}
