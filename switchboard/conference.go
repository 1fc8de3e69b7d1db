package switchboard

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/media"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
)

// conference is a call's mixer: it exists from the moment anyone besides
// the caller and the AI takes part (a supervisor listening in, an agent),
// and mixes, every 20 ms, the caller, what parley plays to the caller
// (the AI, announcements, hold music), the agent and any supervisors, each
// hearing everyone but themself (a whisper only reaches the agent).
//
// Before the bridge the caller hears parley's playout directly, and the
// conference only feeds listeners; at the bridge the caller's party starts
// writing the mix to the leg.
type conference struct {
	mix    *media.Mixer
	caller *media.Party // the caller's voice; out: discard, or the leg once bridged
	ai     *media.Party // what parley plays to the caller; out: discard
	cancel context.CancelFunc
	done   chan struct{}
}

// conferenceLocked returns the call's conference, starting it when
// needed; c.mu must be held.
func (c *call) conferenceLocked() *conference {
	if c.conf != nil {
		return c.conf
	}
	rate := c.leg.SampleRate()
	// Streams to a phone and to browsers stay continuous, and a frame or two
	// of network jitter is covered with silence rather than a re-buffering gap.
	m := media.NewMixer(rate, media.MixerOptions{ConcealFrames: 3, Continuous: true})
	cf := &conference{mix: m, done: make(chan struct{})}
	cf.caller = m.AddParty(discard{})
	cf.ai = m.AddParty(discard{})
	ctx, cancel := context.WithCancel(context.Background())
	cf.cancel = cancel
	go func() {
		defer close(cf.done)
		_ = m.Run(ctx)
	}()
	c.conf = cf
	c.router.caller.Store(cf.caller)
	c.tap.out.Store(cf.ai)
	return cf
}

// bridgeCallerLocked makes the caller hear the mix from now on: the
// caller's party is replaced by one that writes to the leg, and parley's
// playout no longer writes there. c.mu must be held.
func (c *call) bridgeCallerLocked() *conference {
	cf := c.conferenceLocked()
	old := cf.caller
	cf.caller = cf.mix.AddParty(c.leg)
	c.router.caller.Store(cf.caller)
	old.Remove()
	c.applyModesLocked()
	return cf
}

// stopConference ends the mixer and every supervisor's connection, and
// returns what the mixer did, if the call had one.
func (c *call) stopConference() (media.MixerStats, bool) {
	c.mu.Lock()
	c.ended = true // no party joins from now on
	cf := c.conf
	ls := c.listeners
	c.listeners = nil
	c.mu.Unlock()
	for _, l := range ls {
		_ = l.peer.Close()
	}
	if cf == nil {
		return media.MixerStats{}, false
	}
	c.router.caller.Store(nil)
	c.tap.out.Store(nil)
	cf.cancel()
	<-cf.done
	return cf.mix.Stats(), true
}

// applyModesLocked sets who hears whom after a party joined, left or
// changed mode. c.mu must be held.
func (c *call) applyModesLocked() {
	for _, l := range c.listeners {
		switch l.Mode {
		case JoinListen:
			l.party.SetMuted(true)
			l.party.SetAudience()
		case JoinWhisper:
			if c.agentParty != nil {
				l.party.SetMuted(false)
				l.party.SetAudience(c.agentParty)
			} else {
				l.party.SetMuted(true)
			}
		case JoinBarge:
			l.party.SetMuted(false)
			l.party.SetAudience()
		}
	}
}

// pump feeds a WebRTC peer's audio into its party until the peer ends.
func pump(peer *mwebrtc.Peer, party *media.Party, also func([]int16)) {
	for {
		select {
		case <-peer.Done():
			return
		case f, ok := <-peer.Audio():
			if !ok {
				return
			}
			_ = party.Write(f)
			if also != nil {
				also(f)
			}
			peer.Release(f)
		}
	}
}

// joinLocal connects a supervisor to a live call over WebRTC: offerSDP is the
// browser's offer, the answer is returned. The supervisor hears the whole
// call (the AI phase included) and, by mode, speaks to nobody (listen),
// to the agent only (whisper) or to everyone (barge). Whisper and barge
// need an agent on the call.
func (sb *Switchboard) joinLocal(ctx context.Context, u parley.User, callID string, mode JoinMode, offerSDP string) (string, error) {
	if !mode.Valid() {
		return "", ErrBadMode
	}
	c := sb.lookup(callID)
	if c == nil {
		return "", ErrNoSuchCall
	}
	c.mu.Lock()
	needAgent := mode != JoinListen && c.agentParty == nil
	c.mu.Unlock()
	if needAgent {
		return "", ErrNoAgent
	}
	peer, answer, err := mwebrtc.NewPeer(sb.opt.Peer, offerSDP)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		_ = peer.Close()
		return "", ErrNoSuchCall
	}
	if old := c.listeners[u.ID]; old != nil {
		delete(c.listeners, u.ID)
		old.party.Remove()
		_ = old.peer.Close()
	}
	cf := c.conferenceLocked()
	l := &listener{Listener: Listener{UserID: u.ID, Name: u.Name, Mode: mode}, peer: peer, party: cf.mix.AddParty(peer)}
	l.party.SetMuted(true) // until the mode is applied
	if c.listeners == nil {
		c.listeners = map[string]*listener{}
	}
	c.listeners[u.ID] = l
	c.applyModesLocked()
	lc := c.liveLocked(false)
	c.mu.Unlock()
	go func() {
		pump(peer, l.party, nil)
		c.mu.Lock()
		if c.listeners[u.ID] == l {
			delete(c.listeners, u.ID)
		}
		l.party.Remove()
		lc := c.liveLocked(false)
		c.mu.Unlock()
		sb.hub.publish(Update{Kind: UpdateCall, CallID: callID, Call: &lc})
	}()
	sb.event(c.info.CallID, "join", map[string]any{"user_id": u.ID, "name": u.Name, "mode": mode})
	sb.hub.publish(Update{Kind: UpdateCall, CallID: callID, Call: &lc})
	return answer, nil
}

// joinModeLocal switches a joined supervisor between listen, whisper and barge.
func (sb *Switchboard) joinModeLocal(userID, callID string, mode JoinMode) error {
	if !mode.Valid() {
		return ErrBadMode
	}
	c := sb.lookup(callID)
	if c == nil {
		return ErrNoSuchCall
	}
	c.mu.Lock()
	l := c.listeners[userID]
	switch {
	case l == nil:
		c.mu.Unlock()
		return fmt.Errorf("%w: join the call first", ErrNoSuchCall)
	case mode != JoinListen && c.agentParty == nil:
		c.mu.Unlock()
		return ErrNoAgent
	}
	l.Mode = mode
	c.applyModesLocked()
	lc := c.liveLocked(false)
	c.mu.Unlock()
	sb.event(c.info.CallID, "join", map[string]any{"user_id": userID, "name": l.Name, "mode": mode})
	sb.hub.publish(Update{Kind: UpdateCall, CallID: callID, Call: &lc})
	return nil
}

// leaveLocal disconnects a supervisor from a call.
func (sb *Switchboard) leaveLocal(userID, callID string) error {
	c := sb.lookup(callID)
	if c == nil {
		return ErrNoSuchCall
	}
	c.mu.Lock()
	l := c.listeners[userID]
	if l != nil {
		delete(c.listeners, userID)
		l.party.Remove()
	}
	lc := c.liveLocked(false)
	c.mu.Unlock()
	if l == nil {
		return fmt.Errorf("%w: not joined", ErrNoSuchCall)
	}
	_ = l.peer.Close()
	sb.hub.publish(Update{Kind: UpdateCall, CallID: callID, Call: &lc})
	return nil
}

// event stores one call event with JSON data.
func (sb *Switchboard) event(callID, kind string, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		return
	}
	sb.write(sb.opt.Log, "append "+kind, func(ctx context.Context) error {
		return sb.opt.Store.AppendEvent(ctx, parley.Event{CallID: callID, At: time.Now(), Kind: kind, Data: raw})
	})
}
