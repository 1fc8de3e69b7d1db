package switchboard

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley/escalation"
	"github.com/parley-ai/parley/media"
)

// The spoken whisper: with QueueOptions.WhisperSummary, an agent whose
// audio has connected first hears a short spoken summary of the brief —
// who is calling, why the call came to them, what it is about — heard by
// the agent only, while the caller hears hold music; then the caller is
// bridged.

// whisperText is the summary the agent hears: short, for the ear.
func whisperText(b Brief, title func(string) (string, string)) string {
	var parts []string
	who := "a caller"
	if b.From != "" {
		who = spokenNumber(b.From)
	}
	parts = append(parts, fmt.Sprintf("Call from %s.", who))
	if len(b.Reasons) > 0 {
		rs := make([]string, 0, len(b.Reasons))
		for _, r := range b.Reasons {
			rs = append(rs, reasonWords(r))
		}
		parts = append(parts, "Transferred because "+strings.Join(rs, " and ")+".")
	}
	if b.Intent != "" {
		t := b.Intent
		if title != nil {
			if tt, _ := title(b.Intent); tt != "" {
				t = tt
			}
		}
		parts = append(parts, "Topic: "+strings.ReplaceAll(t, "_", " ")+".")
	}
	if len(b.History) > 0 {
		parts = append(parts, fmt.Sprintf("%d earlier calls.", len(b.History)))
	}
	return strings.Join(parts, " ")
}

// spokenNumber reads a phone number digit by digit ("+1415..." → "1 4 1 5 …").
func spokenNumber(n string) string {
	var b strings.Builder
	for _, r := range n {
		if r >= '0' && r <= '9' {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "an unknown number"
	}
	return b.String()
}

// reasonWords says why a call was transferred, as a person would.
func reasonWords(r escalation.Reason) string {
	switch r {
	case escalation.ReasonAskedForHuman:
		return "the caller asked for a person"
	case escalation.ReasonHumanOnly:
		return "the topic needs a person"
	case escalation.ReasonProviderFailure:
		return "the assistant had a technical problem"
	case escalation.ReasonLowConfidence:
		return "the assistant did not understand"
	case escalation.ReasonOutOfScope:
		return "the request is outside what the assistant handles"
	case escalation.ReasonCircles:
		return "the conversation went in circles"
	case escalation.ReasonFrustration:
		return "the caller sounded frustrated"
	case escalation.ReasonAITime:
		return "the call was long"
	}
	return strings.ReplaceAll(string(r), "_", " ")
}

// whisperToAgent attaches the agent and plays them the spoken summary,
// paced, as a party of the conference only they hear; the AI's playout
// (hold music to the caller) is kept from them meanwhile. It returns when
// the summary has played or the caller, the agent or ctx went away.
func (sb *Switchboard) whisperToAgent(ctx context.Context, c *call, j *agentJoin, log zerolog.Logger) {
	c.mu.Lock()
	c.attachLocked(j)
	agent, cf := j.party, c.conf
	var b Brief
	if c.transfer != nil {
		b = c.transfer.brief
	}
	c.mu.Unlock()
	if agent == nil || cf == nil {
		return
	}
	rate := c.leg.SampleRate()
	text := whisperText(b, sb.opt.Intents)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	var pcm []int16
	err := sb.eng.Synthesizer.Synthesize(sctx, text, func(p []int16) error {
		pcm = append(pcm, p...)
		return nil
	})
	cancel()
	if err != nil || len(pcm) == 0 {
		log.Warn().Err(err).Msg("switchboard: whisper summary not synthesized; the agent reads the brief")
		return
	}
	if sr := sb.eng.Synthesizer.SampleRate(); sr != rate {
		pcm = media.Resample(pcm, sr, rate)
	}
	src := cf.mix.AddParty(discard{})
	src.SetAudience(agent)
	cf.ai.SetAudience(cf.caller)
	defer func() {
		src.Remove()
		cf.ai.SetAudience()
	}()
	frame := media.FrameSamples(rate)
	tick := time.NewTicker(media.FrameDuration)
	defer tick.Stop()
	// A few frames of silence after the summary let the mixer play it out.
	pcm = append(pcm, make([]int16, 3*frame)...)
	for pos := 0; pos+frame <= len(pcm); pos += frame {
		select {
		case <-ctx.Done():
			return
		case <-c.legDone:
			return
		case <-j.peer.Done():
			return
		case <-tick.C:
		}
		_ = src.Write(pcm[pos : pos+frame])
	}
	sb.event(c.info.CallID, "whisper", map[string]any{"agent_id": j.agent.ID, "text": text})
}
