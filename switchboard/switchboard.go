// Package switchboard owns the lifecycle of every call: it joins a
// telephony leg to a dialog session, records the call, its turns and every
// escalation decision as the call goes, and is where a call leaves the AI
// for a human.
package switchboard

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/escalation"
	"github.com/parley-ai/parley/media"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
	"github.com/parley-ai/parley/redact"
)

// Options configure a Switchboard.
type Options struct {
	Session dialog.Config     // turn-taking of the AI conversation
	Policy  escalation.Policy // when a call should go to a human
	Store   parley.Store      // where calls, turns and decisions are kept (should not block: see store.Async)
	Log     zerolog.Logger
	// OnTurn, when set, also receives every turn (live transcripts for consoles).
	OnTurn func(parley.Turn)
	// Redact removes card numbers and similar from turns before they are
	// stored or shown; nil stores them as said.
	Redact *redact.Redactor
	// Metrics, when set, counts calls, turns and decisions.
	Metrics Observer
	// Desk tunes the queue and routing of calls to agents.
	Desk escalation.DeskOptions
	// Router, when set, makes the desk from Desk (with the switchboard's
	// event handler set): store/postgres's desk shared by the nodes of a
	// cluster. Unset, the desk is escalation.NewDesk, in memory.
	Router func(escalation.DeskOptions) escalation.Router
	// Bus, when set, connects this node to the others of a cluster: live
	// updates of its calls reach the other nodes' consoles, and console
	// operations on a call held by another node are sent to that node.
	Bus parley.Bus
	// Nodes lists the live nodes of the cluster (with Bus), whose calls
	// the supervisors' live view gathers.
	Nodes func(ctx context.Context) ([]string, error)
	// Queue tunes the wait for a human, voicemail and callbacks.
	Queue QueueOptions
	// Prompts are what callers hear on the way to a human.
	Prompts Prompts
	// Peer configures the WebRTC connections of agents and supervisors.
	Peer mwebrtc.Config
	// Survey asks callers for a 1-5 rating when the AI said goodbye or the
	// agent ended the call.
	Survey SurveyOptions
	// Recording records calls (both directions, after an announcement).
	Recording RecordingOptions
	// Node names this server in the store, so that another node can end
	// its calls if it stops (several nodes on one PostgreSQL).
	Node string
	// NoHumanTranscripts turns off the live transcription of bridged
	// caller-agent conversations (it costs a recognizer per speaking party).
	NoHumanTranscripts bool
	// Intents, when set, gives an intent's readable title and routing
	// skill (from the knowledge base), for briefs and routing.
	Intents func(intent string) (title, skill string)
}

// Observer is what the switchboard reports to metrics (web/metrics implements it).
type Observer interface {
	CallStarted(ch parley.Channel, phase string)
	CallPhase(from, to string)
	CallEnded(ch parley.Channel, outcome parley.Outcome, phase string, d time.Duration)
	Turn(t parley.Turn)
	Decision(reasons []string, transfer bool)
	SessionStats(st dialog.Stats)
	QueueLength(n int)
	QueueWait(d time.Duration)
	TimeToHuman(d time.Duration)
}

// nopObserver is used when no metrics are configured.
type nopObserver struct{}

func (nopObserver) CallStarted(parley.Channel, string)                              {}
func (nopObserver) CallPhase(string, string)                                        {}
func (nopObserver) CallEnded(parley.Channel, parley.Outcome, string, time.Duration) {}
func (nopObserver) Turn(parley.Turn)                                                {}
func (nopObserver) Decision([]string, bool)                                         {}
func (nopObserver) SessionStats(dialog.Stats)                                       {}
func (nopObserver) QueueLength(int)                                                 {}
func (nopObserver) QueueWait(time.Duration)                                         {}
func (nopObserver) TimeToHuman(time.Duration)                                       {}

// Phase is where a call is in its life.
type Phase string

// Call phases.
const (
	PhaseAI        Phase = "ai"        // talking with the AI
	PhaseQueued    Phase = "queued"    // waiting for a human
	PhaseAgent     Phase = "agent"     // talking with a human agent
	PhaseVoicemail Phase = "voicemail" // leaving a message
	PhaseEnding    Phase = "ending"    // hanging up
)

// CallSummary describes a live call.
type CallSummary struct {
	ID        string         `json:"id"`
	Channel   parley.Channel `json:"channel"`
	From      string         `json:"from"`
	To        string         `json:"to"`
	StartedAt time.Time      `json:"started_at"`
	Phase     Phase          `json:"phase"`
	Turns     int            `json:"turns"`
	Node      string         `json:"node,omitempty"` // the server holding the call (several nodes)
}

// Switchboard runs calls. It is safe for concurrent use.
type Switchboard struct {
	eng  dialog.Engines
	opt  Options
	desk escalation.Router
	hub  hub
	fwd  *forwarder // live updates to the other nodes (with a Bus)

	mu         sync.Mutex
	calls      map[string]*call
	agentCalls map[string]string   // agent id -> the call they are on or wrapping up
	lastCalls  map[string]LiveCall // ended calls an agent still wraps up
	wrapped    map[string]string   // agent id -> call wrapped up before the bridge had ended
	mixes      media.MixerStats    // summed over the conferences of ended calls
	wg         sync.WaitGroup
}

// New returns a Switchboard that answers calls with the given engines.
func New(eng dialog.Engines, opt Options) *Switchboard {
	if opt.Policy == (escalation.Policy{}) {
		opt.Policy = escalation.DefaultPolicy()
	}
	if opt.Metrics == nil {
		opt.Metrics = nopObserver{}
	}
	opt.Queue = opt.Queue.withDefaults()
	opt.Prompts = opt.Prompts.withDefaults()
	if opt.Survey.Prompt != "" {
		opt.Session.NoHangup = true // the switchboard hangs up after the survey
		if opt.Survey.Wait <= 0 {
			opt.Survey.Wait = 8 * time.Second
		}
		if opt.Survey.Thanks == "" {
			opt.Survey.Thanks = "Thank you. Goodbye."
		}
	}
	sb := &Switchboard{eng: eng, opt: opt, calls: map[string]*call{}, agentCalls: map[string]string{}, lastCalls: map[string]LiveCall{}, wrapped: map[string]string{}}
	dopt := opt.Desk
	dopt.OnEvent = sb.onDesk
	if opt.Router != nil {
		sb.desk = opt.Router(dopt)
	} else {
		sb.desk = escalation.NewDesk(dopt)
	}
	if opt.Bus != nil {
		sb.joinCluster()
	}
	return sb
}

// Handle runs one call from answer to hang-up on the calling goroutine and
// returns when the call is over. The leg must have started (its Info is known).
func (sb *Switchboard) Handle(ctx context.Context, leg parley.Leg) {
	sb.wg.Add(1)
	defer sb.wg.Done()
	info := leg.Info()
	if info.StartedAt.IsZero() {
		info.StartedAt = time.Now()
	}
	log := sb.opt.Log.With().Str("call_id", info.CallID).Logger()
	ctx, cancelCall := context.WithCancel(ctx)
	defer cancelCall()
	c := &call{
		node:     sb.opt.Node,
		cancel:   cancelCall,
		info:     info,
		leg:      leg,
		tap:      &tapLeg{Leg: leg},
		phase:    PhaseAI,
		legDone:  make(chan struct{}),
		joinCh:   make(chan *agentJoin, 1),
		hangupCh: make(chan string, 1),
	}
	if sb.opt.Redact != nil {
		c.dlg = sb.opt.Redact.Dialogue()
	}
	var handler parley.LegHandler = &c.router
	var rec *recorder
	if dir := sb.opt.Recording.Dir; dir != "" && info.CallID != "" {
		r, err := newRecorder(dir, info.CallID, leg.SampleRate())
		if err != nil {
			log.Error().Err(err).Msg("switchboard: call not recorded")
		} else {
			rec = r
			c.leg = &recLeg{Leg: leg, rec: r}
			c.tap = &tapLeg{Leg: c.leg}
			handler = recHandler{LegHandler: &c.router, rec: r}
		}
	}
	hooks := dialog.Hooks{
		OnTurn: func(t parley.Turn) {
			c.mu.Lock()
			if t.Speaker == parley.SpeakerCaller {
				c.pendingText = ""
			}
			c.mu.Unlock()
			sb.recordTurn(c, t)
		},
		OnEvent: func(e dialog.Event) {
			if e.Kind == dialog.EventTranscript && e.Text != "" {
				c.mu.Lock()
				c.pendingText = sb.redactText(e.Text)
				c.mu.Unlock()
			}
		},
		OnResult: func(r dialog.Result, s parley.Signals) dialog.Action {
			return sb.onResult(c, r, s, log)
		},
	}
	c.session = dialog.NewSession(sb.opt.Session, c.tap, sb.eng, hooks, log)
	sb.mu.Lock()
	if _, dup := sb.calls[info.CallID]; dup || info.CallID == "" {
		sb.mu.Unlock()
		log.Error().Msg("switchboard: call id missing or already in progress; hanging up")
		_ = leg.Hangup(ctx, "duplicate call id")
		return
	}
	sb.calls[info.CallID] = c
	sb.mu.Unlock()

	sb.write(log, "create call", func(ctx context.Context) error {
		return sb.opt.Store.CreateCall(ctx, parley.Call{ID: info.CallID, Channel: info.Channel, From: info.From, To: info.To, StartedAt: info.StartedAt, Node: sb.opt.Node})
	})
	sb.opt.Metrics.CallStarted(info.Channel, string(PhaseAI))
	sb.publishCall(c, UpdateCall)
	log.Info().Str("from", info.From).Str("to", info.To).Str("channel", string(info.Channel)).Msg("call answered")

	// One reader for the whole call; the router hands what it reads to the
	// AI session, then to the queue and the human bridge.
	// The router has its handler before the reader starts: audio and keys
	// that arrive at once (a caller pressing 0 over the greeting on a busy
	// server) are not lost.
	announce := rec != nil && sb.opt.Recording.Announcement != ""
	if announce {
		c.router.set(newKeypad())
	} else {
		c.router.set(c.session)
	}
	legCtx, stopLeg := context.WithCancel(ctx)
	go func() {
		err := leg.Run(legCtx, handler)
		c.legErr = err
		close(c.legDone)
		c.session.LegDone(err)
	}()
	if announce {
		// The caller hears that the call is recorded before anything else.
		v := newVoice(c, sb.eng.Synthesizer)
		if err := v.say(ctx, sb.opt.Recording.Announcement); err != nil {
			log.Warn().Err(err).Msg("switchboard: recording announcement failed")
		}
		_ = v.wait(ctx, c.legDone)
		v.stop()
	}
	c.router.set(c.session)

	out, err := c.session.Converse(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Warn().Err(err).Msg("call ended with an error")
	}
	sb.opt.Metrics.SessionStats(c.session.Stats())
	outcome, reason := out.CallOutcome(), string(out.Reason)
	phase := PhaseAI
	hungUp := out.HungUp || out.Reason == dialog.ReasonCallerHangup || out.Reason == dialog.ReasonDropped
	if out.Reason == dialog.ReasonHandOff {
		sb.opt.Metrics.CallPhase(string(PhaseAI), string(PhaseQueued))
		outcome, reason = sb.human(ctx, c, log)
		c.mu.Lock()
		phase = c.phase
		c.mu.Unlock()
		if reason == reasonAgentEnded {
			sb.survey(ctx, c, log)
		}
		select {
		case <-c.legDone:
			hungUp = true
		default:
			hungUp = false
		}
	} else if out.Reason == dialog.ReasonAIEnded && !hungUp {
		sb.survey(ctx, c, log)
	} else if c.transferDecided() {
		// The caller left before the hand-off: nobody must be offered the call.
		sb.desk.Cancel(info.CallID)
		if hungUp {
			outcome, reason = parley.OutcomeAbandoned, "caller hung up before the transfer"
		}
	}
	sb.releaseJoin(c)
	sb.setPhase(c, PhaseEnding)
	sb.opt.Metrics.CallPhase(string(phase), string(PhaseEnding))
	if !hungUp {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := leg.Hangup(hctx, reason); err != nil {
			log.Warn().Err(err).Msg("hang-up failed")
		}
		cancel()
	}
	stopLeg()
	<-c.legDone
	if st, ok := c.stopConference(); ok {
		sb.mu.Lock()
		addMixerStats(&sb.mixes, st)
		sb.mu.Unlock()
	}
	if rec != nil {
		path, dur, err := rec.close()
		if err != nil {
			log.Error().Err(err).Msg("switchboard: recording incomplete")
		}
		data := map[string]any{"path": path, "duration_ms": dur.Milliseconds()}
		if sb.opt.Recording.URL != nil {
			data["url"] = sb.opt.Recording.URL(info.CallID)
		}
		sb.event(info.CallID, "recording", data)
	}
	ended := time.Now()
	sb.write(log, "end call", func(ctx context.Context) error {
		return sb.opt.Store.EndCall(ctx, info.CallID, ended, outcome, reason)
	})
	sb.opt.Metrics.CallEnded(info.Channel, outcome, string(PhaseEnding), ended.Sub(info.StartedAt))
	c.mu.Lock()
	c.ended = true
	final := c.liveLocked(true)
	c.mu.Unlock()
	sb.mu.Lock()
	delete(sb.calls, info.CallID)
	if sb.wrappingUp(info.CallID) {
		sb.lastCalls[info.CallID] = final
	}
	for id := range sb.lastCalls {
		if !sb.wrappingUp(id) {
			delete(sb.lastCalls, id)
		}
	}
	sb.mu.Unlock()
	sb.hub.publish(Update{Kind: UpdateEnded, CallID: info.CallID, Call: &final, Text: string(outcome)})
	log.Info().Str("outcome", string(outcome)).Str("reason", reason).Dur("duration", ended.Sub(info.StartedAt)).Msg("call ended")
}

// MixerStats sums what the conferences of all calls, live and ended, did: mix cycles,
// cycles run late to catch up (JumpMixes), parties that starved, frames.
func (sb *Switchboard) MixerStats() media.MixerStats {
	sb.mu.Lock()
	total := sb.mixes
	calls := make([]*call, 0, len(sb.calls))
	for _, c := range sb.calls {
		calls = append(calls, c)
	}
	sb.mu.Unlock()
	for _, c := range calls {
		c.mu.Lock()
		cf := c.conf
		c.mu.Unlock()
		if cf == nil {
			continue
		}
		addMixerStats(&total, cf.mix.Stats())
	}
	return total
}

func addMixerStats(to *media.MixerStats, st media.MixerStats) {
	to.Mixes += st.Mixes
	to.JumpMixes += st.JumpMixes
	to.Restarts += st.Restarts
	to.Dropped += st.Dropped
	to.Frames += st.Frames
	to.WriteErrors += st.WriteErrors
}

// wrappingUp reports whether some agent still wraps up callID; sb.mu must be held.
func (sb *Switchboard) wrappingUp(callID string) bool {
	for _, id := range sb.agentCalls {
		if id == callID {
			return true
		}
	}
	return false
}

// releaseJoin closes an accepted agent's connection that was never
// bridged (the call ended first).
func (sb *Switchboard) releaseJoin(c *call) {
	select {
	case j := <-c.joinCh:
		c.detach(j)
		sb.finishAgent(c, j.agent.ID, 0)
		sb.notice(c, j.agent.ID, "The call ended before it could be connected to you.")
	default:
	}
}

func (c *call) transferDecided() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transfer != nil
}

// onResult weighs each answered caller turn; a transfer decision queues
// the call for an agent at once (the offer goes out while the caller hears
// the AI's last words) and ends the AI conversation after that reply.
func (sb *Switchboard) onResult(c *call, r dialog.Result, s parley.Signals, log zerolog.Logger) dialog.Action {
	now := time.Now()
	c.mu.Lock()
	d := escalation.Decide(s, c.state, sb.opt.Policy)
	if r.Transfer && !d.Transfer {
		// The responder itself (an LLM tool call) asks for a person.
		d.Transfer = true
		d.Reasons = append([]escalation.Reason{escalation.ReasonAskedForHuman}, d.Reasons...)
	}
	c.state = d.State
	c.decisions = append(c.decisions, d)
	sig := s
	c.signals = &sig
	first := d.Transfer && c.transfer == nil
	if first {
		c.transfer = &transferState{
			decision:  d,
			result:    r,
			announced: r.WantsHuman || r.HumanOnly || r.Transfer,
			times:     TransferTimes{DecidedAt: now},
		}
	}
	c.mu.Unlock()
	sb.opt.Metrics.Decision(reasonStrings(d.Reasons), d.Transfer)
	sb.event(c.info.CallID, "decision", d)
	sb.hub.publish(Update{Kind: UpdateDecision, CallID: c.info.CallID, Decision: &d})
	if !first {
		if d.Transfer {
			return dialog.ActionHandOff
		}
		return dialog.ActionContinue
	}
	log.Info().Strs("reasons", reasonStrings(d.Reasons)).Msg("escalation: transfer to a human")
	go sb.enqueue(c, d, r, log)
	return dialog.ActionHandOff
}

// enqueue builds the brief (with the caller's history from the store) and
// puts the call in the queue.
func (sb *Switchboard) enqueue(c *call, d escalation.Decision, r dialog.Result, log zerolog.Logger) {
	b := Brief{
		CallID: c.info.CallID, Node: sb.opt.Node, Channel: c.info.Channel, From: c.info.From, To: c.info.To,
		StartedAt: c.info.StartedAt, Reasons: d.Reasons, Priority: d.Priority,
		Intent: r.Intent, Slots: redactSlots(sb, r.Slots), History: []parley.Call{},
	}
	if sb.opt.Store != nil && c.info.From != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		prev, err := sb.opt.Store.ListCalls(ctx, parley.CallQuery{Number: c.info.From, Limit: 6})
		cancel()
		if err != nil {
			log.Warn().Err(err).Msg("switchboard: caller history unavailable for the brief")
		}
		for _, p := range prev {
			if p.ID != c.info.CallID && len(b.History) < 5 {
				b.History = append(b.History, p)
			}
		}
	}
	c.mu.Lock()
	t := c.transfer
	b.DecidedAt = t.times.DecidedAt
	dec := d
	b.Decision = &dec
	b.Summary = sb.summary(c, r, d)
	b.Skill = sb.skillFor(r)
	t.brief = b
	t.request = escalation.Request{CallID: c.info.CallID, Node: sb.opt.Node, From: c.info.From, Skill: b.Skill, Priority: d.Priority, Reasons: d.Reasons}
	t.times.QueuedAt = time.Now()
	req := t.request
	ended := c.ended
	c.mu.Unlock()
	if ended {
		return
	}
	sb.event(c.info.CallID, "queue", map[string]any{"state": "queued", "skill": req.Skill, "priority": req.Priority, "reasons": req.Reasons})
	if err := sb.desk.Enqueue(req); err != nil {
		log.Error().Err(err).Msg("switchboard: enqueue failed")
	}
	sb.publishCall(c, UpdateCall)
}

// recordTurn keeps one turn: redacted, numbered, stored, counted and shown live.
func (sb *Switchboard) recordTurn(c *call, t parley.Turn) {
	sb.opt.Metrics.Turn(t)
	c.mu.Lock()
	t.CallID = c.info.CallID
	if t.Seq == 0 {
		t.Seq = c.seq + 1
	}
	c.seq = max(c.seq, t.Seq)
	if c.dlg != nil {
		t = c.dlg.Turn(t)
	}
	c.turns++
	c.transcript = append(c.transcript, t)
	c.mu.Unlock()
	sb.write(sb.opt.Log, "append turn", func(ctx context.Context) error { return sb.opt.Store.AppendTurn(ctx, t) })
	if sb.opt.OnTurn != nil {
		sb.opt.OnTurn(t)
	}
	agentID := ""
	c.mu.Lock()
	if c.agent != nil {
		agentID = c.agent.ID
	}
	c.mu.Unlock()
	sb.hub.publish(Update{Kind: UpdateTurn, CallID: c.info.CallID, AgentID: agentID, Turn: &t})
}

// setPhase moves the call to phase and tells the consoles.
func (sb *Switchboard) setPhase(c *call, p Phase) {
	c.mu.Lock()
	c.phase = p
	c.mu.Unlock()
	sb.publishCall(c, UpdateCall)
}

func (sb *Switchboard) publishCall(c *call, kind UpdateKind) {
	c.mu.Lock()
	lc := c.liveLocked(false)
	agentID := ""
	if c.agent != nil {
		agentID = c.agent.ID
	}
	c.mu.Unlock()
	sb.hub.publish(Update{Kind: kind, CallID: c.info.CallID, AgentID: agentID, Call: &lc})
}

// redactText removes card numbers and the like from free text.
func (sb *Switchboard) redactText(s string) string {
	if sb.opt.Redact == nil {
		return s
	}
	return sb.opt.Redact.String(s)
}

func redactSlots(sb *Switchboard, slots map[string]string) map[string]string {
	if len(slots) == 0 {
		return nil
	}
	out := make(map[string]string, len(slots))
	for k, v := range slots {
		out[k] = sb.redactText(v)
	}
	return out
}

// write applies one store write with a bounded time; a failure is logged,
// never fatal to the call.
func (sb *Switchboard) write(log zerolog.Logger, what string, f func(context.Context) error) {
	if sb.opt.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f(ctx); err != nil {
		log.Error().Err(err).Msg("store: " + what)
	}
}

func reasonStrings(rs []escalation.Reason) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// Active returns the number of calls in progress.
func (sb *Switchboard) Active() int {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return len(sb.calls)
}

// Calls lists the calls in progress, oldest first.
func (sb *Switchboard) Calls() []CallSummary {
	sb.mu.Lock()
	out := make([]CallSummary, 0, len(sb.calls))
	for _, c := range sb.calls {
		c.mu.Lock()
		out = append(out, CallSummary{ID: c.info.CallID, Channel: c.info.Channel, From: c.info.From, To: c.info.To, StartedAt: c.info.StartedAt, Phase: c.phase, Turns: c.turns})
		c.mu.Unlock()
	}
	sb.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out
}

// Decisions returns the escalation decisions made so far on a live call.
func (sb *Switchboard) Decisions(callID string) []escalation.Decision {
	sb.mu.Lock()
	c := sb.calls[callID]
	sb.mu.Unlock()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]escalation.Decision(nil), c.decisions...)
}

// Drain waits for the calls in progress to end. When ctx ends first, the
// remaining calls are hung up and Drain waits for their teardown.
func (sb *Switchboard) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { sb.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	sb.mu.Lock()
	for _, c := range sb.calls {
		c.cancel() // the AI session, the queue or the bridge ends; the caller is hung up
	}
	sb.mu.Unlock()
	<-done
	return ctx.Err()
}
