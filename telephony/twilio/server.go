// Package twilio is parley's Twilio wire: the voice and status webhooks with
// X-Twilio-Signature checks, the TwiML that connects a call to a Media
// Stream, the Media Streams WebSocket as a parley.Leg, hang-up through the
// REST API (twilio-go), and a client that plays Twilio's part for the
// `parley call` command, benchmarks and end-to-end tests.
package twilio

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
)

// Routes the Server mounts, relative to the router passed to Register.
const (
	VoicePath  = "/twilio/voice"
	StatusPath = "/twilio/status"
	MediaPath  = "/twilio/media"
)

// Names of the <Parameter>s the voice webhook puts on the stream; they come
// back in start.customParameters and in Leg.Info().Params.
const (
	ParamFrom       = "From"
	ParamTo         = "To"
	ParamCallSID    = "CallSid"
	ParamAccountSID = "AccountSid"
	ParamDirection  = "Direction"
)

// Defaults for the zero values of Config's durations.
const (
	DefaultStartTimeout    = 10 * time.Second
	DefaultWriteTimeout    = 2 * time.Second
	DefaultRESTTimeout     = 10 * time.Second
	DefaultStatusRetention = 15 * time.Minute
	defaultMaxMessage      = 64 << 10
)

// Config configures the Twilio server side.
type Config struct {
	// PublicURL is the origin Twilio calls, e.g. https://x.ngrok.app. Every
	// signature is checked against it plus the request path and raw query,
	// never against Host or X-Forwarded-* headers. The media WebSocket URL
	// is derived from it (https→wss, http→ws).
	PublicURL string
	// AuthToken signs Twilio's requests and authenticates REST calls. Empty
	// disables signature checks (development only; logged loudly).
	AuthToken string
	// AccountSID with AuthToken enables hang-up through the REST API.
	AccountSID string
	// APIBaseURL overrides https://api.twilio.com (tests, proxies).
	APIBaseURL string
	// OnStatus, when set, receives every call or stream status callback
	// after it was recorded. It runs on the HTTP handler and must not block.
	OnStatus func(StatusEvent)
	// StartTimeout bounds the wait for the start message after the upgrade.
	StartTimeout time.Duration
	// WriteTimeout bounds every write to a media socket.
	WriteTimeout time.Duration
	// RESTTimeout bounds a REST request.
	RESTTimeout time.Duration
	// StatusRetention is how long ended calls' statuses are kept.
	StatusRetention time.Duration
}

// CallHandler serves one call. It runs on the call's WebSocket goroutine
// after the start message and owns the leg until it returns (normally after
// leg.Run returned); the socket is closed then. ctx ends when the server
// closes.
type CallHandler func(ctx context.Context, leg *Leg)

// Server answers Twilio's webhooks and media streams.
type Server struct {
	cfg       Config
	handler   CallHandler
	log       zerolog.Logger
	validator *Validator // nil: signatures not checked
	public    string     // PublicURL without a trailing slash
	wsBase    string     // ws(s):// twin of public
	rest      *restClient

	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	legs   map[*Leg]struct{}
	wg     sync.WaitGroup

	statusMu   sync.Mutex
	status     map[string]StatusEvent
	lastPruned time.Time
}

// NewServer checks cfg and returns a Server that hands every call to h.
func NewServer(cfg Config, h CallHandler, log zerolog.Logger) (*Server, error) {
	if h == nil {
		return nil, fmt.Errorf("twilio: nil call handler")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("twilio: public url: %w", err)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("twilio: public url %q must be scheme://host[:port] only", cfg.PublicURL)
	}
	s := &Server{
		cfg:     cfg,
		handler: h,
		log:     log,
		public:  strings.TrimSuffix(cfg.PublicURL, "/"),
		legs:    map[*Leg]struct{}{},
		status:  map[string]StatusEvent{},
	}
	switch u.Scheme {
	case "https":
		s.wsBase = "wss" + strings.TrimPrefix(s.public, "https")
	case "http":
		s.wsBase = "ws" + strings.TrimPrefix(s.public, "http")
	default:
		return nil, fmt.Errorf("twilio: public url %q must be http or https", cfg.PublicURL)
	}
	if err := ValidateStreamURL(s.wsBase + MediaPath); err != nil {
		return nil, fmt.Errorf("twilio: public url %q gives an unusable stream url: %w", cfg.PublicURL, err)
	}
	if s.cfg.StartTimeout <= 0 {
		s.cfg.StartTimeout = DefaultStartTimeout
	}
	if s.cfg.WriteTimeout <= 0 {
		s.cfg.WriteTimeout = DefaultWriteTimeout
	}
	if s.cfg.RESTTimeout <= 0 {
		s.cfg.RESTTimeout = DefaultRESTTimeout
	}
	if s.cfg.StatusRetention <= 0 {
		s.cfg.StatusRetention = DefaultStatusRetention
	}
	if cfg.AuthToken == "" {
		log.Warn().Msg("twilio: NO AUTH TOKEN CONFIGURED — X-Twilio-Signature is NOT checked; anyone can place calls and stream audio. Never run like this in production.")
	} else {
		s.validator = NewValidator(cfg.AuthToken)
	}
	if cfg.AuthToken != "" && cfg.AccountSID != "" {
		s.rest = &restClient{accountSID: cfg.AccountSID, authToken: cfg.AuthToken, timeout: s.cfg.RESTTimeout}
		if cfg.APIBaseURL != "" {
			base, err := url.Parse(cfg.APIBaseURL)
			if err != nil || base.Host == "" {
				return nil, fmt.Errorf("twilio: api base url %q is not absolute", cfg.APIBaseURL)
			}
			s.rest.base = base
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// StreamURL is the media WebSocket URL the voice webhook answers with when
// the server is mounted at the root.
func (s *Server) StreamURL() string { return s.wsBase + MediaPath }

// Register mounts the webhooks and the media WebSocket on r.
func (s *Server) Register(r fiber.Router) {
	r.Post(VoicePath, s.handleVoice)
	r.Post(StatusPath, s.handleStatus)
	r.Get(MediaPath, s.handleUpgrade, websocket.New(s.serveMedia, websocket.Config{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
	}))
}

// Close ends every call's context, closes every media socket and waits for
// the call handlers to return. The server accepts no new streams after it.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	legs := make([]*Leg, 0, len(s.legs))
	for l := range s.legs {
		legs = append(legs, l)
	}
	s.mu.Unlock()
	s.cancel()
	for _, l := range legs {
		l.Close()
	}
	s.wg.Wait()
}

// forbid answers 403 with an empty body and no content type, so a prober
// learns nothing.
func forbid(c *fiber.Ctx) error {
	c.Status(fiber.StatusForbidden)
	c.Response().ResetBody()
	c.Response().Header.SetNoDefaultContentType(true)
	return nil
}

// requestURI is the raw path and query of the request, as Twilio signed it.
func requestURI(c *fiber.Ctx) string {
	uri := string(c.Request().RequestURI())
	if !strings.HasPrefix(uri, "/") {
		// Absolute-form request target: keep only path and query, raw.
		if u, err := url.Parse(uri); err == nil {
			uri = u.RequestURI()
		}
	}
	return uri
}

// verify checks the request's signature against base + request URI and
// returns the decoded form params of a form body.
func (s *Server) verify(c *fiber.Ctx, base string) (params [][2]string, ok bool) {
	body := c.Body()
	isJSON := bytes.HasPrefix(bytes.TrimSpace(c.Request().Header.ContentType()), []byte("application/json"))
	if !isJSON && len(body) > 0 {
		var err error
		params, err = ParseForm(string(body))
		if err != nil {
			s.log.Warn().Err(err).Str("path", c.Path()).Msg("twilio: unreadable webhook body")
			return nil, false
		}
	}
	if s.validator == nil {
		return params, true
	}
	sig := c.Get(SignatureHeader)
	u := base + requestURI(c)
	if isJSON {
		ok = s.validator.ValidateBody(u, body, sig)
	} else {
		ok = s.validator.Validate(u, params, sig)
	}
	if !ok {
		s.log.Warn().Str("path", c.Path()).Str("ip", c.IP()).Bool("has_signature", sig != "").Msg("twilio: rejected request with bad signature")
	}
	return params, ok
}

func formValue(params [][2]string, name string) string {
	for _, p := range params {
		if p[0] == name {
			return p[1]
		}
	}
	return ""
}

// handleVoice answers an incoming call with <Connect><Stream>.
func (s *Server) handleVoice(c *fiber.Ctx) error {
	params, ok := s.verify(c, s.public)
	if !ok {
		return forbid(c)
	}
	callSID := formValue(params, "CallSid")
	if callSID == "" {
		return c.Status(fiber.StatusBadRequest).SendString("missing CallSid")
	}
	// The route pattern, not the request path, so a trailing slash or a
	// case variant of the path cannot leak into the stream URL.
	prefix := strings.TrimSuffix(c.Route().Path, VoicePath)
	stream := &Stream{URL: s.wsBase + prefix + MediaPath}
	for _, name := range []string{ParamFrom, ParamTo, ParamCallSID, ParamAccountSID, ParamDirection} {
		stream.Parameters = append(stream.Parameters, Parameter{Name: name, Value: formValue(params, name)})
	}
	resp := Response{Verbs: []Verb{&Connect{Stream: stream}}}
	doc, err := resp.MarshalTwiML()
	if err != nil {
		s.log.Error().Err(err).Str("call_id", callSID).Msg("twilio: cannot render answer")
		return c.SendStatus(fiber.StatusInternalServerError)
	}
	s.log.Info().Str("call_id", callSID).Str("from", formValue(params, "From")).Str("to", formValue(params, "To")).Msg("twilio: incoming call")
	c.Set(fiber.HeaderContentType, "text/xml; charset=utf-8")
	return c.Send(doc)
}

// handleUpgrade checks the WebSocket upgrade before it happens: Twilio
// signs the bare ws(s):// URL with no params.
func (s *Server) handleUpgrade(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return c.SendStatus(fiber.StatusUpgradeRequired)
	}
	if _, ok := s.verify(c, s.wsBase); !ok {
		return forbid(c)
	}
	return c.Next()
}

// serveMedia runs one call's media stream on the WebSocket goroutine.
func (s *Server) serveMedia(conn *websocket.Conn) {
	leg := newLeg(conn.Conn, s.log, s.rest, s.cfg.WriteTimeout)
	leg.conn.SetReadLimit(defaultMaxMessage)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		leg.Close()
		return
	}
	s.legs[leg] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		leg.Close()
		s.mu.Lock()
		delete(s.legs, leg)
		s.mu.Unlock()
		s.wg.Done()
	}()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	if err := leg.awaitStart(ctx, s.cfg.StartTimeout); err != nil {
		s.log.Warn().Err(err).Msg("twilio: media stream closed before a valid start")
		return
	}
	leg.log.Info().Str("from", leg.info.From).Msg("twilio: media stream started")
	s.handler(ctx, leg)
	st := leg.Stats()
	leg.log.Info().Uint64("frames_in", st.FramesIn).Uint64("frames_out", st.FramesOut).
		Uint64("malformed", st.Malformed).Uint64("unknown", st.Unknown).Uint64("sequence_gaps", st.SequenceGaps).
		Msg("twilio: media stream ended")
}

// StatusEvent is one status callback: call progress (CallStatus set) or a
// <Stream> event (StreamEvent set). Every value arrives as a string; the
// numbers are parsed leniently (-1 or zero when absent or unreadable).
type StatusEvent struct {
	CallSID         string
	AccountSID      string
	CallStatus      string // queued, initiated, ringing, in-progress, completed, busy, failed, no-answer, canceled
	Direction       string
	From, To        string
	CallbackSource  string
	SequenceNumber  int           // 0-based order of call progress events; -1 when absent
	Timestamp       time.Time     // when Twilio emitted the event (zero when unreadable)
	CallDuration    time.Duration // call length, terminal events
	BilledMinutes   int           // Duration field, completed event
	SipResponseCode int
	StreamSID       string
	StreamEvent     string // stream-started, stream-stopped, stream-error
	StreamError     string
	Params          [][2]string // every field as received
	ReceivedAt      time.Time
}

// Terminal reports whether the call status is final.
func (e StatusEvent) Terminal() bool {
	switch e.CallStatus {
	case "completed", "busy", "failed", "no-answer", "canceled":
		return true
	}
	return false
}

// ParseStatusEvent reads a status callback's form params leniently:
// unknown fields are kept in Params, unreadable numbers are left at their
// zero (or -1) value.
func ParseStatusEvent(params [][2]string) StatusEvent {
	e := StatusEvent{SequenceNumber: -1, Params: params, ReceivedAt: time.Now()}
	atoi := func(s string) (int, bool) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		return n, err == nil
	}
	for _, p := range params {
		v := p[1]
		switch p[0] {
		case "CallSid":
			e.CallSID = v
		case "AccountSid":
			e.AccountSID = v
		case "CallStatus":
			e.CallStatus = v
		case "Direction":
			e.Direction = v
		case "From":
			e.From = v
		case "To":
			e.To = v
		case "CallbackSource":
			e.CallbackSource = v
		case "SequenceNumber":
			if n, ok := atoi(v); ok && n >= 0 {
				e.SequenceNumber = n
			}
		case "Timestamp":
			for _, layout := range []string{time.RFC1123Z, time.RFC1123, time.RFC3339Nano} {
				if t, err := time.Parse(layout, v); err == nil {
					e.Timestamp = t
					break
				}
			}
		case "CallDuration":
			if n, ok := atoi(v); ok && n >= 0 {
				e.CallDuration = time.Duration(n) * time.Second
			}
		case "Duration":
			if n, ok := atoi(v); ok && n >= 0 {
				e.BilledMinutes = n
			}
		case "SipResponseCode":
			if n, ok := atoi(v); ok {
				e.SipResponseCode = n
			}
		case "StreamSid":
			e.StreamSID = v
		case "StreamEvent":
			e.StreamEvent = v
		case "StreamError":
			e.StreamError = v
		}
	}
	return e
}

// handleStatus records a status callback.
func (s *Server) handleStatus(c *fiber.Ctx) error {
	params, ok := s.verify(c, s.public)
	if !ok {
		return forbid(c)
	}
	e := ParseStatusEvent(params)
	if e.CallSID == "" {
		return c.Status(fiber.StatusBadRequest).SendString("missing CallSid")
	}
	s.recordStatus(e)
	if s.cfg.OnStatus != nil {
		s.cfg.OnStatus(e)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// recordStatus keeps the latest call progress event per call: callbacks
// can arrive out of order, so a lower SequenceNumber never replaces a
// higher one, and a terminal status is never replaced by anything.
func (s *Server) recordStatus(e StatusEvent) {
	if e.CallStatus == "" {
		return // stream events do not change the call's status
	}
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	s.pruneStatus(e.ReceivedAt)
	old, ok := s.status[e.CallSID]
	switch {
	case !ok:
	case old.Terminal():
		return
	case e.Terminal():
	case e.SequenceNumber >= 0 && old.SequenceNumber > e.SequenceNumber:
		return
	}
	s.status[e.CallSID] = e
}

// pruneStatus forgets ended calls after the retention time and stale
// unfinished ones after a day, at most once per quarter retention.
func (s *Server) pruneStatus(now time.Time) {
	ret := s.cfg.StatusRetention
	if now.Sub(s.lastPruned) < ret/4 {
		return
	}
	s.lastPruned = now
	for sid, e := range s.status {
		age := now.Sub(e.ReceivedAt)
		if e.Terminal() && age > ret || age > 24*time.Hour {
			delete(s.status, sid)
		}
	}
}

// Status returns the latest recorded call progress event of callSID.
func (s *Server) Status(callSID string) (StatusEvent, bool) {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	e, ok := s.status[callSID]
	return e, ok
}
