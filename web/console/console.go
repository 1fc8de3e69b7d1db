// Package console serves the people's side of parley: the agent console at
// /agent, the supervisor console at /supervisor, their JSON APIs and the
// live-update stream both pages follow.
//
// Routes (Register):
//
//	GET  /agent, /supervisor                  the pages (public HTML; they log in through web/auth)
//	GET  /console/{common.js,agent.js,supervisor.js,console.css}
//	GET  /api/console/events                  Server-Sent Events: a "snapshot" event, then updates
//	POST /api/agent/state                     {"state": "available"|"away"}
//	GET  /api/agent/offer                     {"offer": Offer|null}
//	POST /api/agent/offers/:id/accept         {"sdp": offer} -> {"sdp": answer}
//	POST /api/agent/offers/:id/decline
//	GET  /api/agent/call                      {"call": LiveCall|null}
//	POST /api/agent/calls/:id/hangup
//	POST /api/agent/calls/:id/mute            {"muted": bool}
//	POST /api/agent/calls/:id/hold            {"hold": bool}
//	POST /api/agent/calls/:id/wrapup          {"disposition": "...", "notes": "..."}
//	GET  /api/supervisor/live                 Snapshot
//	POST /api/supervisor/calls/:id/join       {"mode": "listen"|"whisper"|"barge", "sdp": offer} -> {"sdp": answer}
//	POST /api/supervisor/calls/:id/mode       {"mode": ...}
//	POST /api/supervisor/calls/:id/leave
//
// Every API route needs a session (web/auth): agents' routes the agent
// role, supervisors' routes the supervisor or admin role, the event stream
// any of the three. An agent's stream carries only their own state, the
// offers made to them and the calls offered to them or taken by them; it
// also signs them in on the desk (AgentOnline) and, a short grace after
// their last stream closes, out again (AgentOffline).
package console

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/escalation"
	"github.com/parley-ai/parley/switchboard"
	"github.com/parley-ai/parley/web/auth"
)

// Backend is what the consoles drive: the switchboard's live view, its
// desk of agents and the audio bridges. *switchboard.Switchboard
// implements it.
type Backend interface {
	Live() switchboard.Snapshot
	LiveCall(id string) (switchboard.LiveCall, bool)
	Subscribe(buf int) (<-chan switchboard.Update, func())
	AgentOnline(u parley.User) escalation.Agent
	AgentOffline(agentID string)
	SetAgentState(agentID string, st escalation.AgentState) error
	PendingOffer(agentID string) (switchboard.Offer, bool)
	AgentCall(agentID string) (switchboard.LiveCall, bool)
	Accept(ctx context.Context, agentID, callID, offerSDP string) (answerSDP string, err error)
	Decline(agentID, callID string) error
	AgentHangup(agentID, callID string) error
	AgentMute(agentID, callID string, muted bool) error
	AgentHold(agentID, callID string, hold bool) error
	WrapUp(ctx context.Context, agentID, callID string, w switchboard.WrapUp) error
	Join(ctx context.Context, u parley.User, callID string, mode switchboard.JoinMode, offerSDP string) (answerSDP string, err error)
	SetJoinMode(userID, callID string, mode switchboard.JoinMode) error
	Leave(userID, callID string) error
}

// Paths the console mounts, relative to the router given to Register.
const (
	AgentPage      = "/agent"
	SupervisorPage = "/supervisor"
	AssetsPath     = "/console"
	EventsPath     = "/api/console/events"
	AgentAPI       = "/api/agent"
	SupervisorAPI  = "/api/supervisor"
)

// Defaults of Options.
const (
	DefaultHeartbeat     = 15 * time.Second
	DefaultOfflineGrace  = 5 * time.Second
	DefaultSubscribeBuf  = 256
	DefaultWriteWindow   = 30 * time.Second
	DefaultSignalTimeout = 20 * time.Second
)

// Options tune a Console; zero fields take the defaults above.
type Options struct {
	// Heartbeat is how often an idle event stream gets a comment line,
	// which keeps proxies from closing it and finds clients that left.
	Heartbeat time.Duration
	// OfflineGrace is how long an agent stays signed in after their last
	// event stream closed, so that reloading the page keeps their place.
	OfflineGrace time.Duration
	// SubscribeBuf is each stream's buffer of updates; a stream that falls
	// further behind loses updates and is sent a fresh snapshot.
	SubscribeBuf int
	// WriteWindow bounds each write to a stream; a client that takes
	// longer is dropped.
	WriteWindow time.Duration
	// SignalTimeout bounds answering a WebRTC offer (accept, join).
	SignalTimeout time.Duration
}

// Console serves the agent and supervisor consoles. Close ends its event
// streams; call it before shutting the HTTP server down, whose shutdown
// otherwise waits for the streams.
type Console struct {
	b    Backend
	a    *auth.Auth
	log  zerolog.Logger
	opt  Options
	page map[string][]byte // agent.html, supervisor.html
	file map[string]asset

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // open event streams

	mu       sync.Mutex
	closed   bool
	presence map[string]*presence // agents by user ID
}

type asset struct {
	body        []byte
	contentType string
}

// presence counts an agent's open event streams.
type presence struct {
	streams int
	offline *time.Timer // pending AgentOffline after the last stream closed
}

//go:embed static
var static embed.FS

// New returns a Console over b that checks sessions with a.
func New(b Backend, a *auth.Auth, log zerolog.Logger, opt Options) (*Console, error) {
	if b == nil || a == nil {
		return nil, fmt.Errorf("console: backend and auth are required")
	}
	if opt.Heartbeat <= 0 {
		opt.Heartbeat = DefaultHeartbeat
	}
	if opt.OfflineGrace <= 0 {
		opt.OfflineGrace = DefaultOfflineGrace
	}
	if opt.SubscribeBuf <= 0 {
		opt.SubscribeBuf = DefaultSubscribeBuf
	}
	if opt.WriteWindow <= 0 {
		opt.WriteWindow = DefaultWriteWindow
	}
	if opt.SignalTimeout <= 0 {
		opt.SignalTimeout = DefaultSignalTimeout
	}
	c := &Console{b: b, a: a, log: log, opt: opt, page: map[string][]byte{}, file: map[string]asset{},
		presence: map[string]*presence{}}
	for _, name := range []string{"agent.html", "supervisor.html"} {
		body, err := fs.ReadFile(static, "static/"+name)
		if err != nil {
			return nil, fmt.Errorf("console: embedded %s: %w", name, err)
		}
		c.page[name] = body
	}
	for name, ct := range map[string]string{
		"common.js":     "text/javascript; charset=utf-8",
		"agent.js":      "text/javascript; charset=utf-8",
		"supervisor.js": "text/javascript; charset=utf-8",
		"console.css":   "text/css; charset=utf-8",
	} {
		body, err := fs.ReadFile(static, "static/"+name)
		if err != nil {
			return nil, fmt.Errorf("console: embedded %s: %w", name, err)
		}
		c.file[name] = asset{body, ct}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Register mounts the consoles on r with the default options and returns
// the Console, whose Close ends the event streams at shutdown. The
// embedded pages are part of the binary, so it cannot fail.
func Register(r fiber.Router, b Backend, a *auth.Auth, log zerolog.Logger) *Console {
	c, err := New(b, a, log, Options{})
	if err != nil {
		panic(err) // only a nil backend or auth, or a broken build, gets here
	}
	c.Mount(r)
	return c
}

// Mount adds the pages, assets, event stream and APIs to r.
func (c *Console) Mount(r fiber.Router) {
	r.Get(AgentPage, c.servePage("agent.html"))
	r.Get(SupervisorPage, c.servePage("supervisor.html"))
	r.Get(AssetsPath+"/:file", c.serveAsset)

	anyone := c.a.RequireUser(parley.RoleAgent, parley.RoleSupervisor, parley.RoleAdmin)
	r.Get(EventsPath, anyone, c.events)

	agent := c.a.RequireUser(parley.RoleAgent)
	r.Post(AgentAPI+"/state", agent, c.setState)
	r.Get(AgentAPI+"/offer", agent, c.getOffer)
	r.Post(AgentAPI+"/offers/:id/accept", agent, c.accept)
	r.Post(AgentAPI+"/offers/:id/decline", agent, c.decline)
	r.Get(AgentAPI+"/call", agent, c.getCall)
	r.Post(AgentAPI+"/calls/:id/hangup", agent, c.hangup)
	r.Post(AgentAPI+"/calls/:id/mute", agent, c.mute)
	r.Post(AgentAPI+"/calls/:id/hold", agent, c.hold)
	r.Post(AgentAPI+"/calls/:id/wrapup", agent, c.wrapUp)

	sup := c.a.RequireUser(parley.RoleSupervisor, parley.RoleAdmin)
	r.Get(SupervisorAPI+"/live", sup, c.live)
	r.Post(SupervisorAPI+"/calls/:id/join", sup, c.join)
	r.Post(SupervisorAPI+"/calls/:id/mode", sup, c.setMode)
	r.Post(SupervisorAPI+"/calls/:id/leave", sup, c.leave)
}

// Close ends every event stream and waits (up to the write window) for
// them to finish; agents are not signed out. New streams are refused.
func (c *Console) Close() {
	c.mu.Lock()
	c.closed = true
	for id, p := range c.presence {
		if p.offline != nil {
			p.offline.Stop()
		}
		delete(c.presence, id)
	}
	c.mu.Unlock()
	c.cancel()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(c.opt.WriteWindow):
		c.log.Warn().Msg("console: event streams still open after close")
	}
}

// securityHeaders limit the pages to their own scripts and styles, keep
// them from being framed or sniffed and from leaking the referrer.
func securityHeaders(c *fiber.Ctx) {
	c.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"media-src 'self' blob: mediastream:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("X-Frame-Options", "DENY")
	c.Set(fiber.HeaderCacheControl, "no-cache")
}

// servePage serves a page with its asset and API paths under the prefix
// the console is mounted at.
func (c *Console) servePage(name string) fiber.Handler {
	own := "/" + strings.TrimSuffix(name, ".html")
	return func(ctx *fiber.Ctx) error {
		prefix := strings.TrimSuffix(ctx.Route().Path, own)
		page := bytes.ReplaceAll(c.page[name], []byte("{{assets}}"), []byte(prefix+AssetsPath))
		page = bytes.ReplaceAll(page, []byte("{{prefix}}"), []byte(prefix))
		securityHeaders(ctx)
		ctx.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return ctx.Send(page)
	}
}

func (c *Console) serveAsset(ctx *fiber.Ctx) error {
	f, ok := c.file[ctx.Params("file")]
	if !ok {
		return apiError(ctx, fiber.StatusNotFound, "no such file")
	}
	securityHeaders(ctx)
	ctx.Set(fiber.HeaderContentType, f.contentType)
	return ctx.Send(f.body)
}
