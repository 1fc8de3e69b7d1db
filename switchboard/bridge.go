package switchboard

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/escalation"
)

// attachLocked makes the agent a party of the call's conference, once:
// from then on the agent hears the call (the caller, and the AI's last
// words while they play), while the caller hears the agent only when the
// bridge is made. c.mu must be held.
func (c *call) attachLocked(j *agentJoin) {
	if j.released || j.party != nil || c.ended {
		return
	}
	cf := c.conferenceLocked()
	j.party = cf.mix.AddParty(j.peer)
	j.connectedAt = time.Now()
	c.agentParty = j.party
	c.agent = &AgentRef{ID: j.agent.ID, Name: j.agent.Name}
	c.applyModesLocked()
	j.pumped = make(chan struct{})
	go func() {
		defer close(j.pumped)
		pump(j.peer, j.party, func(f []int16) {
			if h := j.hear.Load(); h != nil {
				(*h)(f)
			}
		})
	}()
}

// detach takes the agent out of the call and closes their connection.
func (c *call) detach(j *agentJoin) {
	c.mu.Lock()
	j.released = true
	if j.party != nil {
		j.party.Remove()
		if c.agentParty == j.party {
			c.agentParty, c.agent = nil, nil
			c.applyModesLocked()
		}
	}
	c.mu.Unlock()
	_ = j.peer.Close()
	if j.pumped != nil {
		<-j.pumped
	}
}

// listenEarly attaches an accepted agent as soon as their audio connects,
// even while the AI is still speaking its transfer announcement, so the
// agent is on the line (and hears the caller) as early as possible.
func (sb *Switchboard) listenEarly(c *call, j *agentJoin) {
	t := time.NewTimer(sb.opt.Queue.ConnectTimeout)
	defer t.Stop()
	select {
	case <-j.peer.Connected():
	case <-j.peer.Done():
		return
	case <-c.legDone:
		return
	case <-t.C:
		return
	}
	c.mu.Lock()
	c.attachLocked(j)
	attached := j.party != nil
	c.mu.Unlock()
	if attached {
		sb.publishCall(c, UpdateCall)
	}
}

// bridge connects the caller to the agent who accepted: once the agent's
// WebRTC audio is up, the caller's leg and the agent's peer are parties of
// the call's conference, both sides are transcribed as they talk, and the
// bridge lasts until either hangs up. again reports that the agent's
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
		c.detach(j)
		sb.finishAgent(c, agentID, 0)
		sb.notice(c, agentID, "The caller hung up before you were connected.")
		return parley.OutcomeAbandoned, "caller hung up while an agent connected", false
	case <-ctx.Done():
		connect.Stop()
		c.detach(j)
		sb.finishAgent(c, agentID, 0)
		return parley.OutcomeFailed, "cancelled", false
	}
	if sb.opt.Queue.WhisperSummary {
		hold := newVoice(c, sb.eng.Synthesizer)
		music := holdMusic(c.leg.SampleRate())
		hold.queue(music)
		hold.queue(music)
		sb.whisperToAgent(ctx, c, j, log)
		hold.stop()
	}
	bridged := time.Now()

	c.mu.Lock()
	c.attachLocked(j)
	c.bridgeCallerLocked()
	c.phase = PhaseAgent
	t := c.transfer
	t.times.AcceptedAt = j.acceptedAt
	t.times.ConnectedAt = j.connectedAt
	times := t.times
	reasons := t.decision.Reasons
	lc := c.liveLocked(false)
	c.mu.Unlock()

	// Time to human: the decision to the agent's audio on the call.
	tth := times.ConnectedAt.Sub(times.DecidedAt)
	reaction := time.Duration(0)
	if !times.OfferedAt.IsZero() && !j.acceptedAt.IsZero() {
		reaction = j.acceptedAt.Sub(times.OfferedAt)
	}
	sb.event(c.info.CallID, "transfer", map[string]any{
		"agent_id": agentID, "agent": j.agent.Name, "reasons": reasons,
		"decided_at": times.DecidedAt, "queued_at": times.QueuedAt, "offered_at": times.OfferedAt,
		"accepted_at": times.AcceptedAt, "connected_at": times.ConnectedAt, "bridged_at": bridged,
		"time_to_human_ms":  tth.Milliseconds(),
		"agent_reaction_ms": reaction.Milliseconds(),
		"queue_wait_ms":     times.ConnectedAt.Sub(times.QueuedAt).Milliseconds(),
	})
	sb.opt.Metrics.CallPhase(string(PhaseQueued), string(PhaseAgent))
	sb.opt.Metrics.TimeToHuman(tth)
	sb.opt.Metrics.QueueWait(times.ConnectedAt.Sub(times.QueuedAt))
	sb.hub.publish(Update{Kind: UpdateCall, CallID: c.info.CallID, AgentID: agentID, Call: &lc})
	log.Info().Dur("time_to_human", tth).Dur("agent_reaction", reaction).Msg("caller bridged to an agent")

	// Both sides are transcribed for the record and the live consoles.
	rate := c.leg.SampleRate()
	onTurn := func(t parley.Turn, _ float64) { sb.recordTurn(c, t) }
	var callerASR, agentASR *liveASR
	if !sb.opt.NoHumanTranscripts {
		callerASR = startASR(ctx, sb.eng.Transcriber, rate, parley.SpeakerCaller, onTurn)
		agentASR = startASR(ctx, sb.eng.Transcriber, rate, parley.SpeakerAgent, onTurn)
		kp.setAlso(callerASR.push)
		hear := agentASR.push
		j.hear.Store(&hear)
	}

	defer func() {
		kp.setAlso(nil)
		j.hear.Store(nil)
		c.detach(j)
		c.mu.Lock()
		c.unbridgeCallerLocked()
		c.applyModesLocked()
		c.mu.Unlock()
		if callerASR != nil {
			callerASR.close()
			agentASR.close()
		}
		if !again {
			sb.finishAgent(c, agentID, time.Since(bridged))
		}
	}()

	select {
	case <-c.legDone:
		sb.notice(c, agentID, "The caller hung up.")
		return parley.OutcomeEscalated, "caller hung up", false
	case <-c.hangupCh:
		// The caller is hung up once the call is over (after the survey, if any).
		return parley.OutcomeEscalated, reasonAgentEnded, false
	case <-j.peer.Done():
		out, reason, again = sb.agentLost(c, j, "the agent's connection dropped", log)
		return out, reason, again
	case <-ctx.Done():
		return parley.OutcomeFailed, "cancelled", false
	}
}

// reasonAgentEnded is why a call ends when the agent hangs up.
const reasonAgentEnded = "agent ended the call"

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
	c.detach(j)
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
	early := sb.wrapped[agentID] == c.info.CallID
	delete(sb.wrapped, agentID)
	if early {
		delete(sb.agentCalls, agentID)
	} else {
		sb.agentCalls[agentID] = c.info.CallID
	}
	sb.mu.Unlock()
	if early { // the wrap-up came in while the call was still ending
		_ = sb.desk.SetState(agentID, escalation.AgentAvailable)
	}
}

// notice tells the agent on a call something that happened.
func (sb *Switchboard) notice(c *call, agentID, text string) {
	sb.hub.publish(Update{Kind: UpdateNotice, CallID: c.info.CallID, AgentID: agentID, Text: text})
}
