package switchboard

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/escalation"
	"github.com/parley-ai/parley/media"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
)

// The operations behind the agent and supervisor consoles.

// Desk returns the queue and agents of this switchboard.
func (sb *Switchboard) Desk() escalation.Router { return sb.desk }

// Agent returns an agent's state on the desk.
func (sb *Switchboard) Agent(id string) (escalation.Agent, bool) { return sb.desk.Agent(id) }

// liveCallLocal returns one live call with its transcript.
func (sb *Switchboard) liveCallLocal(id string) (LiveCall, bool) {
	c := sb.lookup(id)
	if c == nil {
		return LiveCall{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.liveLocked(true), true
}

func (sb *Switchboard) lookup(id string) *call {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.calls[id]
}

// AgentOnline puts an agent on the desk (their console connected); a new
// agent starts away.
func (sb *Switchboard) AgentOnline(u parley.User) escalation.Agent {
	return sb.desk.SignIn(u.ID, u.Name, u.Skills)
}

// AgentOffline takes an agent off the desk (their console went away).
func (sb *Switchboard) AgentOffline(agentID string) { sb.desk.SignOut(agentID) }

// setAgentStateLocal sets an agent available or away (ending wrap-up).
func (sb *Switchboard) setAgentStateLocal(agentID string, st escalation.AgentState) error {
	a, ok := sb.desk.Agent(agentID)
	if ok && a.State == escalation.AgentWrapUp && st == escalation.AgentAvailable {
		sb.mu.Lock()
		delete(sb.agentCalls, agentID)
		sb.mu.Unlock()
	}
	return sb.desk.SetState(agentID, st)
}

// pendingOfferLocal returns the call offered to the agent with its brief, the
// transcript as it stands now.
func (sb *Switchboard) pendingOfferLocal(agentID string) (Offer, bool) {
	w, ok := sb.desk.Offered(agentID)
	if !ok {
		return Offer{}, false
	}
	c := sb.lookup(w.CallID)
	if c == nil {
		return Offer{}, false
	}
	return sb.offerOf(c, w), true
}

func (sb *Switchboard) offerOf(c *call, w escalation.Waiting) Offer {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b Brief
	if c.transfer != nil {
		b = c.transfer.brief
	}
	b.Transcript = c.briefTranscriptLocked()
	return Offer{Brief: b, OfferedAt: w.OfferedAt, ExpiresAt: w.OfferedAt.Add(sb.desk.OfferTimeout())}
}

// briefTranscriptLocked is the transcript so far, with the caller's last
// words even before their turn is recorded (it is recorded once the AI's
// reply to it has played).
func (c *call) briefTranscriptLocked() []parley.Turn {
	ts := append([]parley.Turn{}, c.transcript...)
	if c.pendingText != "" {
		ts = append(ts, parley.Turn{CallID: c.info.CallID, Seq: c.seq + 1, Speaker: parley.SpeakerCaller, Text: c.pendingText})
	}
	return ts
}

// agentCallLocal returns the call the agent is on or wrapping up.
func (sb *Switchboard) agentCallLocal(agentID string) (LiveCall, bool) {
	a, ok := sb.desk.Agent(agentID)
	if !ok {
		return LiveCall{}, false
	}
	id := ""
	switch a.State {
	case escalation.AgentBusy, escalation.AgentWrapUp:
		id = a.CallID
	}
	sb.mu.Lock()
	if id == "" {
		id = sb.agentCalls[agentID]
	}
	last, hasLast := sb.lastCalls[id]
	sb.mu.Unlock()
	if id == "" {
		return LiveCall{}, false
	}
	if lc, ok := sb.liveCallLocal(id); ok {
		return lc, true
	}
	return last, hasLast
}

// acceptLocal takes the call offered to the agent: offerSDP is the agent
// browser's WebRTC offer, the answer is returned. The caller is bridged as
// soon as the audio connects and the AI has finished speaking.
func (sb *Switchboard) acceptLocal(ctx context.Context, agentID, callID, offerSDP string) (string, error) {
	c := sb.lookup(callID)
	if c == nil {
		return "", ErrNoSuchCall
	}
	if err := mwebrtc.CheckOffer(offerSDP); err != nil {
		return "", err
	}
	w, err := sb.desk.Accept(agentID, callID)
	if err != nil {
		return "", err
	}
	accepted := time.Now()
	agent, _ := sb.desk.Agent(agentID)
	peer, answer, err := mwebrtc.NewPeer(sb.opt.Peer, offerSDP)
	if err != nil {
		// The agent's browser cannot be connected: they stay on the desk
		// but the caller goes back to the queue for someone else.
		sb.desk.Finish(agentID, 0)
		_ = sb.desk.SetState(agentID, escalation.AgentAvailable)
		c.mu.Lock()
		req := c.transfer.request
		c.mu.Unlock()
		_ = sb.desk.Requeue(req, agentID)
		return "", fmt.Errorf("switchboard: agent audio: %w", err)
	}
	j := &agentJoin{agent: agent, peer: peer, acceptedAt: accepted}
	select {
	case c.joinCh <- j:
		go sb.listenEarly(c, j)
	default:
		_ = peer.Close()
		sb.desk.Finish(agentID, 0)
		return "", fmt.Errorf("%w: already being connected", ErrNotYourCall)
	}
	sb.mu.Lock()
	sb.agentCalls[agentID] = callID
	sb.mu.Unlock()
	sb.opt.Log.Info().Str("call_id", callID).Str("agent", agent.Name).Dur("queued", accepted.Sub(w.QueuedAt)).Msg("agent accepted")
	return answer, nil
}

// Decline refuses the call offered to the agent; it goes to the next agent.
func (sb *Switchboard) Decline(agentID, callID string) error {
	return sb.desk.Decline(agentID, callID)
}

// agentCall returns the live call the agent is on; ErrNotYourCall otherwise.
func (sb *Switchboard) agentCall(agentID, callID string) (*call, error) {
	c := sb.lookup(callID)
	if c == nil {
		return nil, ErrNoSuchCall
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.agent == nil || c.agent.ID != agentID {
		return nil, ErrNotYourCall
	}
	return c, nil
}

// hangupLocal ends the call the agent is on.
func (sb *Switchboard) hangupLocal(agentID, callID string) error {
	c, err := sb.agentCall(agentID, callID)
	if err != nil {
		return err
	}
	select {
	case c.hangupCh <- agentID:
	default:
	}
	return nil
}

// muteLocal stops (or resumes) the agent's voice reaching the caller.
func (sb *Switchboard) muteLocal(agentID, callID string, muted bool) error {
	c, err := sb.agentCall(agentID, callID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.agentParty != nil {
		c.agentParty.SetMuted(muted)
	}
	c.mu.Unlock()
	sb.event(c.info.CallID, "agent", map[string]any{"agent_id": agentID, "muted": muted})
	return nil
}

// holdLocal puts the caller on hold (hold music, neither side hears the
// other) or takes them off it.
func (sb *Switchboard) holdLocal(agentID, callID string, hold bool) error {
	c, err := sb.agentCall(agentID, callID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.agentParty == nil || c.conf == nil {
		return ErrNotHuman
	}
	cf := c.conf
	if hold == (c.holdStop != nil) {
		return nil
	}
	if !hold {
		c.holdStop()
		c.holdStop = nil
		c.agentParty.SetMuted(false)
		cf.caller.SetAudience()
		cf.ai.SetAudience()
		return nil
	}
	c.agentParty.SetMuted(true)
	// The caller hears only the music; supervisors still hear the caller.
	var sups []*media.Party
	for _, l := range c.listeners {
		sups = append(sups, l.party)
	}
	cf.caller.SetAudience(append(sups, cf.ai)...)
	cf.ai.SetAudience(cf.caller)
	ctx, cancel := context.WithCancel(context.Background())
	c.holdStop = cancel
	go feedMusic(ctx, cf.ai, holdMusic(c.leg.SampleRate()), c.leg.SampleRate())
	return nil
}

// wrapUpLocal stores the agent's disposition and notes for their last call and
// makes them available again.
func (sb *Switchboard) wrapUpLocal(ctx context.Context, agentID, callID string, w WrapUp) error {
	sb.mu.Lock()
	mine := sb.agentCalls[agentID] == callID
	sb.mu.Unlock()
	if !mine {
		return ErrNotYourCall
	}
	w.Disposition = strings.TrimSpace(w.Disposition)
	if w.Disposition == "" {
		return fmt.Errorf("%w: a disposition is required", escalation.ErrBadState)
	}
	raw := map[string]any{"agent_id": agentID, "disposition": w.Disposition, "notes": sb.redactText(w.Notes)}
	sb.event(callID, "wrapup", raw)
	if a, ok := sb.desk.Agent(agentID); ok && a.State == escalation.AgentBusy {
		// The bridge is still coming down: finishAgent makes them available.
		sb.mu.Lock()
		sb.wrapped[agentID] = callID
		sb.mu.Unlock()
		return nil
	}
	sb.mu.Lock()
	delete(sb.agentCalls, agentID)
	sb.mu.Unlock()
	if a, ok := sb.desk.Agent(agentID); ok && a.State == escalation.AgentWrapUp {
		return sb.desk.SetState(agentID, escalation.AgentAvailable)
	}
	return nil
}

// onDesk turns desk changes into console updates and transfer times.
func (sb *Switchboard) onDesk(ev escalation.DeskEvent) {
	switch ev.Kind {
	case escalation.DeskAgent:
		sb.hub.publish(Update{Kind: UpdateAgent, AgentID: ev.Agent.ID, Agent: ev.Agent, CallID: ev.Agent.CallID})
	case escalation.DeskQueue:
		_, q := sb.desk.Snapshot()
		sb.opt.Metrics.QueueLength(len(q))
		sb.hub.publish(Update{Kind: UpdateQueue, CallID: ev.CallID, Queue: q})
	case escalation.DeskOffer:
		c := sb.lookup(ev.CallID)
		w, ok := sb.desk.Offered(ev.Agent.ID)
		if c == nil || !ok {
			return
		}
		c.mu.Lock()
		if c.transfer != nil && c.transfer.times.OfferedAt.IsZero() {
			c.transfer.times.OfferedAt = w.OfferedAt
		}
		c.mu.Unlock()
		o := sb.offerOf(c, w)
		sb.event(c.info.CallID, "queue", map[string]any{"state": "offered", "agent_id": ev.Agent.ID})
		sb.hub.publish(Update{Kind: UpdateOffer, CallID: ev.CallID, AgentID: ev.Agent.ID, Offer: &o})
	case escalation.DeskWithdrawn:
		if c := sb.lookup(ev.CallID); c != nil {
			sb.event(c.info.CallID, "queue", map[string]any{"state": "withdrawn", "agent_id": ev.Agent.ID, "why": ev.Why})
		}
		sb.hub.publish(Update{Kind: UpdateWithdrawn, CallID: ev.CallID, AgentID: ev.Agent.ID, Text: ev.Why})
	}
}
