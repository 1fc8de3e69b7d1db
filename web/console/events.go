package console

import (
	"bufio"
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/escalation"
	"github.com/parley-ai/parley/switchboard"
	"github.com/parley-ai/parley/web/auth"
)

// The event stream (GET /api/console/events) speaks Server-Sent Events:
//
//	event: snapshot          first, and again after updates may have been lost
//	data: {...}              AgentSnapshot or SupervisorSnapshot
//
//	data: {...}              each switchboard.Update (an unnamed "message" event)
//
//	: ping                   a heartbeat when nothing else was sent for a while
//
// Browsers reconnect by themselves (EventSource); every (re)connection
// starts with a snapshot.

// AgentSnapshot is what an agent's stream starts with: their own state,
// the offer waiting for them and the call they are on or wrapping up.
type AgentSnapshot struct {
	Role  parley.Role           `json:"role"`
	Now   time.Time             `json:"now"`
	Agent *escalation.Agent     `json:"agent"`
	Offer *switchboard.Offer    `json:"offer"`
	Call  *switchboard.LiveCall `json:"call"`
}

// SupervisorSnapshot is what a supervisor's stream starts with: every live
// call, the queue and the agents.
type SupervisorSnapshot struct {
	Role parley.Role `json:"role"`
	Now  time.Time   `json:"now"`
	switchboard.Snapshot
}

// events streams live updates to one console.
func (c *Console) events(ctx *fiber.Ctx) error {
	user, _ := auth.UserOf(ctx)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return apiError(ctx, fiber.StatusServiceUnavailable, "the server is shutting down")
	}
	c.wg.Add(1)
	c.mu.Unlock()

	// Subscribe before the snapshot: nothing between the two is lost
	// (something may come twice; the pages apply updates idempotently).
	updates, unsubscribe := c.b.Subscribe(c.opt.SubscribeBuf)
	var scope *agentScope
	if user.Role == parley.RoleAgent {
		c.online(user)
		scope = &agentScope{id: user.ID, calls: map[string]bool{}}
	}

	ctx.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	ctx.Set(fiber.HeaderCacheControl, "no-store")
	ctx.Set("X-Accel-Buffering", "no")
	ctx.Set("X-Content-Type-Options", "nosniff")
	ctx.Context().Response.Header.SetConnectionClose() // the deadlines set below must not outlive the stream
	conn := ctx.Context().Conn()
	log := c.log.With().Str("user", user.Name).Str("role", string(user.Role)).Logger()
	log.Debug().Msg("console: event stream opened")

	ctx.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer c.wg.Done()
		defer unsubscribe()
		if scope != nil {
			defer c.offline(user.ID)
		}
		defer log.Debug().Msg("console: event stream closed")

		flush := func() bool {
			if conn != nil {
				_ = conn.SetWriteDeadline(time.Now().Add(c.opt.WriteWindow))
			}
			return w.Flush() == nil
		}
		snapshot := func() bool {
			var v any
			if scope != nil {
				v = c.agentSnapshot(user.ID, scope)
			} else {
				v = SupervisorSnapshot{Role: user.Role, Now: time.Now().UTC(), Snapshot: c.b.Live()}
			}
			return writeEvent(w, "snapshot", v) == nil
		}
		// The retry hint makes browsers come back quickly after a restart.
		if _, err := w.WriteString("retry: 2000\n\n"); err != nil || !snapshot() || !flush() {
			return
		}
		beat := time.NewTicker(c.opt.Heartbeat)
		defer beat.Stop()
		for {
			select {
			case <-c.ctx.Done():
				return
			case <-beat.C:
				if _, err := w.WriteString(": ping\n\n"); err != nil || !flush() {
					return
				}
			case u, ok := <-updates:
				if !ok {
					return
				}
				// Write everything pending, then flush once. A buffer seen
				// full may have dropped updates: follow with a snapshot.
				lost := false
				for {
					lost = lost || len(updates) >= cap(updates)-1
					if scope != nil {
						u, ok = scope.admit(u)
					}
					if ok && writeEvent(w, "", u) != nil {
						return
					}
					if len(updates) == 0 {
						break
					}
					if u, ok = <-updates; !ok {
						return
					}
				}
				if lost && !snapshot() {
					return
				}
				if !flush() {
					return
				}
				beat.Reset(c.opt.Heartbeat)
			}
		}
	})
	return nil
}

// writeEvent writes one SSE event; JSON has no raw newlines, so one data
// line carries it.
func writeEvent(w *bufio.Writer, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if name != "" {
		if _, err := w.WriteString("event: " + name + "\n"); err != nil {
			return err
		}
	}
	if _, err := w.WriteString("data: "); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	_, err = w.WriteString("\n\n")
	return err
}

// agentSnapshot is an agent's own view, and resets what their stream may
// carry to what it shows.
func (c *Console) agentSnapshot(id string, scope *agentScope) AgentSnapshot {
	s := AgentSnapshot{Role: parley.RoleAgent, Now: time.Now().UTC()}
	scope.calls = map[string]bool{}
	for _, a := range c.b.Live().Agents {
		if a.ID == id {
			s.Agent = &a
			if a.CallID != "" {
				scope.calls[a.CallID] = true
			}
			break
		}
	}
	if o, ok := c.b.PendingOffer(id); ok {
		s.Offer = &o
		scope.calls[o.CallID] = true
	}
	if lc, ok := c.b.AgentCall(id); ok {
		lc = forAgent(lc)
		s.Call = &lc
		scope.calls[lc.ID] = true
	}
	return s
}

// agentScope decides which updates one agent's stream carries: their own
// state, offers to them, and the calls offered to them or taken by them.
// It learns those calls from the updates themselves.
type agentScope struct {
	id    string
	calls map[string]bool
}

// callOf is the call an update concerns.
func callOf(u switchboard.Update) string {
	switch {
	case u.CallID != "":
		return u.CallID
	case u.Call != nil:
		return u.Call.ID
	case u.Offer != nil:
		return u.Offer.CallID
	case u.Turn != nil:
		return u.Turn.CallID
	}
	return ""
}

// admit reports whether the agent may see u, and returns it as they may
// see it.
func (s *agentScope) admit(u switchboard.Update) (switchboard.Update, bool) {
	id := callOf(u)
	switch u.Kind {
	case switchboard.UpdateAgent:
		if u.Agent == nil || u.Agent.ID != s.id {
			return u, false
		}
		switch u.Agent.State {
		case escalation.AgentAvailable, escalation.AgentAway, escalation.AgentOffline:
			clear(s.calls) // done with every call, offered or taken
		}
		if u.Agent.CallID != "" {
			s.calls[u.Agent.CallID] = true
		}
		return u, true
	case switchboard.UpdateOffer:
		if u.AgentID != s.id || id == "" {
			return u, false
		}
		s.calls[id] = true
		return u, true
	case switchboard.UpdateWithdrawn:
		if u.AgentID != s.id {
			return u, false
		}
		delete(s.calls, id)
		return u, true
	case switchboard.UpdateCall, switchboard.UpdateEnded:
		if u.Call != nil && u.Call.Agent != nil {
			if u.Call.Agent.ID == s.id {
				s.calls[id] = true
			} else {
				delete(s.calls, id) // someone else took it
			}
		}
		if !s.calls[id] {
			return u, false
		}
		if u.Call != nil {
			lc := forAgent(*u.Call)
			u.Call = &lc
		}
		return u, true
	case switchboard.UpdateTurn:
		return u, s.calls[id]
	case switchboard.UpdateNotice:
		if u.AgentID != "" {
			return u, u.AgentID == s.id
		}
		return u, s.calls[id]
	}
	// Queue changes (other callers' numbers) and escalation decisions are
	// the supervisors' business.
	return u, false
}

// online signs the agent in on their first stream, and keeps them signed
// in when a stream comes back within the grace.
func (c *Console) online(u parley.User) {
	c.mu.Lock()
	p := c.presence[u.ID]
	if p == nil {
		p = &presence{}
		c.presence[u.ID] = p
	}
	p.streams++
	if p.offline != nil {
		p.offline.Stop()
		p.offline = nil
	}
	// Under the lock, so that a grace timer firing now cannot sign the
	// agent out after this sign-in. Every connection refreshes the name
	// and skills (idempotent).
	a := c.b.AgentOnline(u)
	c.mu.Unlock()
	c.log.Info().Str("agent", u.Name).Str("state", string(a.State)).Msg("console: agent online")
}

// offline counts a closed stream; when an agent has none left for the
// grace period, they are signed out.
func (c *Console) offline(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.presence[id]
	if p == nil { // the console closed
		return
	}
	p.streams--
	if p.streams > 0 {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(c.opt.OfflineGrace, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if q := c.presence[id]; q == nil || q.offline != t || q.streams > 0 {
			return
		}
		delete(c.presence, id)
		c.b.AgentOffline(id)
		c.log.Info().Str("agent_id", id).Msg("console: agent offline")
	})
	p.offline = t
}
