package switchboard

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/escalation"
)

// bridge connects the caller to the agent who accepted: once the agent's
// WebRTC audio is up, the caller's leg and the agent's peer become parties
// of the call's conference, both sides are transcribed as they talk, and
// the bridge lasts until either hangs up. again reports that the agent's
// connection failed and the caller goes back to the queue.
func (sb *Switchboard) bridge(ctx context.Context, c *call, j *agentJoin, kp *keypad, log zerolog.Logger) (out parley.Outcome, reason string, again bool) {
	agentID := j.agent.ID
	log = log.With().Str("agent", j.agent.Name).Logger()
	connect := time.NewTimer(sb.opt.Queue.ConnectTimeout)
	select {
	case <-j.peer.Connected():
		connect.Stop()
	case <-j.peer.Done():
		connect.Stop()
		return sb.agentLost(c, j, "the agent's connection failed before audio", log)
	case <-connect.C:
		return sb.agentLost(c, j, "the agent's audio did not connect in time", log)
	case <-c.legDone:
		connect.Stop()
		_ = j.peer.Close()
		sb.finishAgent(c, agentID, 0)
		sb.notice(c, agentID, "The caller hung up before you were connected.")
		return parley.OutcomeAbandoned, "caller hung up while an agent connected", false
	case <-ctx.Done():
		connect.Stop()
		_ = j.peer.Close()
		sb.finishAgent(c, agentID, 0)
		return parley.OutcomeFailed, "cancelled", false
	}
	connected := time.Now()

	c.mu.Lock()
	cf := c.bridgeCallerLocked()
	agentParty := cf.mix.AddParty(j.peer)
	c.agentParty = agentParty
	c.agent = &AgentRef{ID: agentID, Name: j.agent.Name}
	c.phase = PhaseAgent
	c.applyModesLocked()
	t := c.transfer
	t.times.AcceptedAt = j.acceptedAt
	t.times.ConnectedAt = connected
	times := t.times
	reasons := t.decision.Reasons
	lc := c.liveLocked(false)
	c.mu.Unlock()

	tth := connected.Sub(times.DecidedAt)
	reaction := time.Duration(0)
	if !times.OfferedAt.IsZero() && !j.acceptedAt.IsZero() {
		reaction = j.acceptedAt.Sub(times.OfferedAt)
	}
	sb.event(c.info.CallID, "transfer", map[string]any{
		"agent_id": agentID, "agent": j.agent.Name, "reasons": reasons,
		"decided_at": times.DecidedAt, "queued_at": times.QueuedAt, "offered_at": times.OfferedAt,
		"accepted_at": times.AcceptedAt, "connected_at": times.ConnectedAt,
		"time_to_human_ms":  tth.Milliseconds(),
		"agent_reaction_ms": reaction.Milliseconds(),
		"queue_wait_ms":     connected.Sub(times.QueuedAt).Milliseconds(),
	})
	sb.opt.Metrics.CallPhase(string(PhaseQueued), string(PhaseAgent))
	sb.opt.Metrics.TimeToHuman(tth)
	sb.opt.Metrics.QueueWait(connected.Sub(times.QueuedAt))
	sb.hub.publish(Update{Kind: UpdateCall, CallID: c.info.CallID, AgentID: agentID, Call: &lc})
	log.Info().Dur("time_to_human", tth).Dur("agent_reaction", reaction).Msg("caller bridged to an agent")

	// Both sides are transcribed for the record and the live consoles.
	rate := c.leg.SampleRate()
	onTurn := func(t parley.Turn) { sb.recordTurn(c, t) }
	var callerASR, agentASR *liveASR
	var agentHeard func([]int16)
	if !sb.opt.NoHumanTranscripts {
		callerASR = startASR(ctx, sb.eng.Transcriber, rate, parley.SpeakerCaller, onTurn)
		agentASR = startASR(ctx, sb.eng.Transcriber, rate, parley.SpeakerAgent, onTurn)
		kp.setAlso(callerASR.push)
		agentHeard = agentASR.push
	}
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		pump(j.peer, agentParty, agentHeard)
	}()

	defer func() {
		kp.setAlso(nil)
		c.mu.Lock()
		agentParty.Remove()
		c.agentParty = nil
		c.agent = nil
		c.unbridgeCallerLocked()
		c.applyModesLocked()
		c.mu.Unlock()
		_ = j.peer.Close()
		<-pumped
		if callerASR != nil {
			callerASR.close()
			agentASR.close()
		}
		if !again {
			sb.finishAgent(c, agentID, time.Since(connected))
		}
	}()

	select {
	case <-c.legDone:
		sb.notice(c, agentID, "The caller hung up.")
		return parley.OutcomeEscalated, "caller hung up", false
	case <-c.hangupCh:
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := c.leg.Hangup(hctx, "agent ended the call"); err != nil {
			log.Warn().Err(err).Msg("hang-up failed")
		}
		cancel()
		return parley.OutcomeEscalated, "agent ended the call", false
	case <-j.peer.Done():
		out, reason, again = sb.agentLost(c, j, "the agent's connection dropped", log)
		return out, reason, again
	case <-ctx.Done():
		return parley.OutcomeFailed, "cancelled", false
	}
}

// unbridgeCallerLocked gives the caller back to parley's playout after a
// bridge. c.mu must be held.
func (c *call) unbridgeCallerLocked() {
	cf := c.conf
	if cf == nil {
		return
	}
	old := cf.caller
	cf.caller = cf.mix.AddParty(discard{})
	c.router.caller.Store(cf.caller)
	old.Remove()
}

// agentLost handles an agent whose audio failed: they are set away, the
// caller goes back to the front of the queue.
func (sb *Switchboard) agentLost(c *call, j *agentJoin, why string, log zerolog.Logger) (parley.Outcome, string, bool) {
	_ = j.peer.Close()
	log.Warn().Str("why", why).Msg("switchboard: agent lost; caller re-queued")
	sb.finishAgent(c, j.agent.ID, 0)
	_ = sb.desk.SetState(j.agent.ID, escalation.AgentAway)
	sb.notice(c, j.agent.ID, "Your audio connection was lost; the caller has been put back in the queue.")
	c.mu.Lock()
	t := c.transfer
	t.attempts++
	req := t.request
	c.mu.Unlock()
	sb.event(c.info.CallID, "queue", map[string]any{"state": "requeued", "why": why, "agent_id": j.agent.ID})
	if err := sb.desk.Requeue(req, j.agent.ID); err != nil {
		log.Error().Err(err).Msg("switchboard: re-queue failed")
	}
	return parley.OutcomeEscalated, why, true
}

// finishAgent ends the agent's part of the call: they move to wrap-up
// and the wrap-up form knows which call it is about.
func (sb *Switchboard) finishAgent(c *call, agentID string, handle time.Duration) {
	sb.desk.Finish(agentID, handle)
	sb.mu.Lock()
	sb.agentCalls[agentID] = c.info.CallID
	sb.mu.Unlock()
}

// notice tells the agent on a call something that happened.
func (sb *Switchboard) notice(c *call, agentID, text string) {
	sb.hub.publish(Update{Kind: UpdateNotice, CallID: c.info.CallID, AgentID: agentID, Text: text})
}
