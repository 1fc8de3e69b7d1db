// Package switchboard owns the lifecycle of every call: it joins a
// telephony leg to a dialog session, records the call, its turns and every
// escalation decision as the call goes, and is where a call leaves the AI
// for a human.
package switchboard

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/escalation"
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
}

// Observer is what the switchboard reports to metrics (web/metrics implements it).
type Observer interface {
	CallStarted(ch parley.Channel, phase string)
	CallPhase(from, to string)
	CallEnded(ch parley.Channel, outcome parley.Outcome, phase string, d time.Duration)
	Turn(t parley.Turn)
	Decision(reasons []string, transfer bool)
	SessionStats(st dialog.Stats)
}

// nopObserver is used when no metrics are configured.
type nopObserver struct{}

func (nopObserver) CallStarted(parley.Channel, string)                              {}
func (nopObserver) CallPhase(string, string)                                        {}
func (nopObserver) CallEnded(parley.Channel, parley.Outcome, string, time.Duration) {}
func (nopObserver) Turn(parley.Turn)                                                {}
func (nopObserver) Decision([]string, bool)                                         {}
func (nopObserver) SessionStats(dialog.Stats)                                       {}

// Phase is where a call is in its life.
type Phase string

// Call phases.
const (
	PhaseAI     Phase = "ai"     // talking with the AI
	PhaseEnding Phase = "ending" // hanging up
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
}

// Switchboard runs calls. It is safe for concurrent use.
type Switchboard struct {
	eng dialog.Engines
	opt Options

	mu    sync.Mutex
	calls map[string]*call
	wg    sync.WaitGroup
}

type call struct {
	info    parley.LegInfo
	leg     parley.Leg
	session *dialog.Session

	mu        sync.Mutex
	phase     Phase
	turns     int
	state     escalation.State
	decisions []escalation.Decision
}

// New returns a Switchboard that answers calls with the given engines.
func New(eng dialog.Engines, opt Options) *Switchboard {
	if opt.Policy == (escalation.Policy{}) {
		opt.Policy = escalation.DefaultPolicy()
	}
	if opt.Metrics == nil {
		opt.Metrics = nopObserver{}
	}
	return &Switchboard{eng: eng, opt: opt, calls: map[string]*call{}}
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
	c := &call{info: info, leg: leg, phase: PhaseAI}

	var dlg *redact.Dialogue
	if sb.opt.Redact != nil {
		dlg = sb.opt.Redact.Dialogue()
	}
	hooks := dialog.Hooks{
		OnTurn: func(t parley.Turn) {
			sb.opt.Metrics.Turn(t)
			if dlg != nil {
				t = dlg.Turn(t)
			}
			c.mu.Lock()
			c.turns++
			c.mu.Unlock()
			sb.write(log, "append turn", func(ctx context.Context) error { return sb.opt.Store.AppendTurn(ctx, t) })
			if sb.opt.OnTurn != nil {
				sb.opt.OnTurn(t)
			}
		},
		OnResult: func(r dialog.Result, s parley.Signals) dialog.Action {
			c.mu.Lock()
			d := escalation.Decide(s, c.state, sb.opt.Policy)
			c.state = d.State
			c.decisions = append(c.decisions, d)
			c.mu.Unlock()
			sb.opt.Metrics.Decision(reasonStrings(d.Reasons), d.Transfer)
			data, err := json.Marshal(d)
			if err == nil {
				sb.write(log, "append decision", func(ctx context.Context) error {
					return sb.opt.Store.AppendEvent(ctx, parley.Event{CallID: info.CallID, At: time.Now(), Kind: "decision", Data: data})
				})
			}
			if d.Transfer {
				// No agent queue yet: the responder has told the caller the
				// truth about reaching a person; the decision is on record.
				log.Info().Strs("reasons", reasonStrings(d.Reasons)).Msg("escalation: transfer advised")
			}
			return dialog.ActionContinue
		},
	}
	c.session = dialog.NewSession(sb.opt.Session, leg, sb.eng, hooks, log)
	sb.mu.Lock()
	if _, dup := sb.calls[info.CallID]; dup || info.CallID == "" {
		sb.mu.Unlock()
		log.Error().Msg("switchboard: call id missing or already in progress; hanging up")
		_ = leg.Hangup(ctx, "duplicate call id")
		return
	}
	sb.calls[info.CallID] = c
	sb.mu.Unlock()
	defer func() {
		sb.mu.Lock()
		delete(sb.calls, info.CallID)
		sb.mu.Unlock()
	}()

	sb.write(log, "create call", func(ctx context.Context) error {
		return sb.opt.Store.CreateCall(ctx, parley.Call{ID: info.CallID, Channel: info.Channel, From: info.From, To: info.To, StartedAt: info.StartedAt})
	})
	sb.opt.Metrics.CallStarted(info.Channel, string(PhaseAI))
	log.Info().Str("from", info.From).Str("to", info.To).Str("channel", string(info.Channel)).Msg("call answered")

	out, err := c.session.Run(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Warn().Err(err).Msg("call ended with an error")
	}
	c.mu.Lock()
	c.phase = PhaseEnding
	c.mu.Unlock()
	sb.opt.Metrics.CallPhase(string(PhaseAI), string(PhaseEnding))
	if !out.HungUp && out.Reason != dialog.ReasonCallerHangup && out.Reason != dialog.ReasonDropped {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := leg.Hangup(hctx, string(out.Reason)); err != nil {
			log.Warn().Err(err).Msg("hang-up failed")
		}
		cancel()
	}
	ended := time.Now()
	sb.write(log, "end call", func(ctx context.Context) error {
		return sb.opt.Store.EndCall(ctx, info.CallID, ended, out.CallOutcome(), string(out.Reason))
	})
	sb.opt.Metrics.SessionStats(c.session.Stats())
	sb.opt.Metrics.CallEnded(info.Channel, out.CallOutcome(), string(PhaseEnding), ended.Sub(info.StartedAt))
	log.Info().Str("reason", string(out.Reason)).Dur("duration", ended.Sub(info.StartedAt)).Msg("call ended")
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
		if c.session != nil {
			c.session.Close()
		}
	}
	sb.mu.Unlock()
	<-done
	return ctx.Err()
}
