// Package webrtc is parley's browser caller channel: the customer page at
// /call, the endpoint that answers its WebRTC offer, and each call as a
// parley.Leg handed to a CallHandler. Media and pion stay in media/webrtc.
package webrtc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
	"github.com/parley-ai/parley/web/static/call"
)

// Routes the Server mounts, relative to the router passed to Register.
const (
	PagePath = "/call"
	CallPath = "/api/webrtc/call"
)

// Defaults for Config's zero values.
const (
	DefaultMaxCalls     = 100
	DefaultMaxBodyBytes = 128 << 10
)

// Config configures the browser channel.
type Config struct {
	// Peer configures every call's WebRTC connection (ICE servers, port
	// range, NAT addresses, timeouts).
	Peer mwebrtc.Config
	// MaxCalls bounds concurrent browser calls; more are refused with 503.
	MaxCalls int
	// MaxBodyBytes bounds the offer request body; larger ones get 413.
	MaxBodyBytes int
}

// CallHandler serves one browser call on its own goroutine and owns the
// leg until it returns (normally after leg.Run returned); the connection
// is closed then. ctx ends when the server closes.
type CallHandler func(ctx context.Context, leg *Leg)

// Server answers browser calls.
type Server struct {
	cfg     Config
	handler CallHandler
	log     zerolog.Logger
	page    []byte // index.html with {{base}} and {{api}} left to fill
	js, css []byte

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	legs    map[*Leg]struct{}
	pending int // calls being set up, counted against MaxCalls
	wg      sync.WaitGroup
}

// NewServer checks cfg and returns a Server that hands every call to h.
func NewServer(cfg Config, h CallHandler, log zerolog.Logger) (*Server, error) {
	if h == nil {
		return nil, errors.New("webrtc: nil call handler")
	}
	if err := cfg.Peer.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxCalls <= 0 {
		cfg.MaxCalls = DefaultMaxCalls
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &Server{cfg: cfg, handler: h, log: log, legs: map[*Leg]struct{}{}}
	for name, dst := range map[string]*[]byte{"index.html": &s.page, "call.js": &s.js, "call.css": &s.css} {
		b, err := fs.ReadFile(call.Files, name)
		if err != nil {
			return nil, fmt.Errorf("webrtc: embedded page %s: %w", name, err)
		}
		*dst = b
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Register mounts the page, its assets and the call endpoint on r.
func (s *Server) Register(r fiber.Router) {
	r.Get(PagePath, s.handlePage)
	r.Get(PagePath+"/call.js", s.asset(s.js, "text/javascript; charset=utf-8"))
	r.Get(PagePath+"/call.css", s.asset(s.css, "text/css; charset=utf-8"))
	r.Post(CallPath, s.handleCall)
}

// ActiveCalls is the number of browser calls in progress.
func (s *Server) ActiveCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.legs)
}

// Close hangs up every call, ends their contexts and waits for the call
// handlers to return. The server accepts no new calls after it.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	legs := make([]*Leg, 0, len(s.legs))
	for l := range s.legs {
		legs = append(legs, l)
	}
	s.mu.Unlock()
	s.cancel()
	// In parallel: each goodbye may wait briefly for its data channel.
	var hung sync.WaitGroup
	for _, l := range legs {
		hung.Go(func() { _ = l.Hangup(context.Background(), "server shutting down") })
	}
	hung.Wait()
	s.wg.Wait()
}

// securityHeaders keeps the page from being framed or sniffed and limits
// it to its own scripts.
func securityHeaders(c *fiber.Ctx) {
	c.Set("Content-Security-Policy", "default-src 'self'; media-src 'self' blob: mediastream:; frame-ancestors 'none'")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "no-referrer")
}

// handlePage serves the page with its asset and API paths under the
// prefix the server is mounted at.
func (s *Server) handlePage(c *fiber.Ctx) error {
	prefix := strings.TrimSuffix(c.Route().Path, PagePath)
	page := bytes.ReplaceAll(s.page, []byte("{{base}}"), []byte(prefix+PagePath))
	page = bytes.ReplaceAll(page, []byte("{{api}}"), []byte(prefix+CallPath))
	securityHeaders(c)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Send(page)
}

func (s *Server) asset(body []byte, contentType string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		securityHeaders(c)
		c.Set(fiber.HeaderCacheControl, "no-cache")
		c.Set(fiber.HeaderContentType, contentType)
		return c.Send(body)
	}
}

// apiError answers with {"error": msg}.
func apiError(c *fiber.Ctx, code int, msg string) error {
	return c.Status(code).JSON(fiber.Map{"error": msg})
}

// newCallID returns a random call id, "WR" and 32 hex digits (the shape of
// a Twilio CallSid, so logs and stores treat both alike).
func newCallID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("webrtc: call id: %w", err)
	}
	return "WR" + hex.EncodeToString(b[:]), nil
}

// handleCall answers a browser's offer and starts the call.
func (s *Server) handleCall(c *fiber.Ctx) error {
	if ct := string(c.Request().Header.ContentType()); !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), fiber.MIMEApplicationJSON) {
		return apiError(c, fiber.StatusUnsupportedMediaType, "send the offer as application/json")
	}
	body := c.Body()
	if len(body) > s.cfg.MaxBodyBytes {
		return apiError(c, fiber.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", s.cfg.MaxBodyBytes))
	}
	offer, err := parseCallRequest(body)
	if err != nil {
		return apiError(c, fiber.StatusBadRequest, err.Error())
	}
	if err := mwebrtc.CheckOffer(offer); err != nil {
		return apiError(c, fiber.StatusBadRequest, err.Error())
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return apiError(c, fiber.StatusServiceUnavailable, "the server is shutting down")
	case len(s.legs)+s.pending >= s.cfg.MaxCalls:
		s.mu.Unlock()
		s.log.Warn().Int("max_calls", s.cfg.MaxCalls).Msg("webrtc: call refused: at capacity")
		c.Set(fiber.HeaderRetryAfter, "10")
		return apiError(c, fiber.StatusServiceUnavailable, "all lines are busy; try again shortly")
	}
	// Hold the slot while the peer is set up.
	s.pending++
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		s.pending--
		s.mu.Unlock()
	}

	id, err := newCallID()
	if err != nil {
		release()
		return err
	}
	log := s.log.With().Str("call_id", id).Logger()
	pcfg := s.cfg.Peer
	pcfg.Log = log
	peer, answer, err := mwebrtc.NewPeer(pcfg, offer)
	if err != nil {
		release()
		if errors.Is(err, mwebrtc.ErrBadOffer) {
			return apiError(c, fiber.StatusBadRequest, err.Error())
		}
		log.Error().Err(err).Msg("webrtc: cannot answer")
		return apiError(c, fiber.StatusInternalServerError, "the call could not be set up")
	}
	info := parley.LegInfo{
		CallID:    id,
		StreamID:  id,
		Channel:   parley.ChannelWebRTC,
		From:      "browser:" + c.IP(),
		Params:    map[string]string{"user_agent": string(c.Request().Header.UserAgent())},
		StartedAt: time.Now(),
	}
	leg := newLeg(peer, info, log)

	s.mu.Lock()
	s.pending--
	if s.closed {
		s.mu.Unlock()
		leg.Close()
		return apiError(c, fiber.StatusServiceUnavailable, "the server is shutting down")
	}
	s.legs[leg] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go s.serve(leg)

	log.Info().Str("from", info.From).Msg("webrtc: incoming browser call")
	return c.JSON(callResponse{Type: "answer", SDP: answer, CallID: id})
}

// serve runs one call's handler and releases the leg after it.
func (s *Server) serve(leg *Leg) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer func() {
		cancel()
		leg.Close()
		s.mu.Lock()
		delete(s.legs, leg)
		s.mu.Unlock()
		st := leg.Stats()
		leg.log.Info().Uint64("frames_in", st.Peer.FramesIn).Uint64("frames_out", st.Peer.FramesOut).
			Uint64("dropped_in", st.Peer.DroppedIn).Uint64("concealed_samples", st.Peer.ConcealedSamples).
			Uint64("dtmf", st.DTMF).Uint64("malformed", st.Malformed).Msg("webrtc: call ended")
		s.wg.Done()
	}()
	s.handler(ctx, leg)
}
