package switchboard

import (
	"errors"
	"sync"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/escalation"
)

// What the consoles see: live calls with their transcripts, the queue, the
// agents, offers with their brief, and a stream of Updates.

// Errors of the console operations.
var (
	ErrNoSuchCall  = errors.New("switchboard: no such live call")
	ErrNotYourCall = errors.New("switchboard: the call is not yours")
	ErrNoAgent     = errors.New("switchboard: the call has no agent yet")
	ErrBadMode     = errors.New("switchboard: unknown join mode (listen, whisper or barge)")
	ErrNotHuman    = errors.New("switchboard: the call is not with a human")
)

// AgentRef names the agent on a call.
type AgentRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Listener is a supervisor joined to a call.
type Listener struct {
	UserID string   `json:"user_id"`
	Name   string   `json:"name"`
	Mode   JoinMode `json:"mode"`
}

// LiveCall is a live call as the consoles show it.
type LiveCall struct {
	CallSummary
	Transcript []parley.Turn         `json:"transcript"`
	Decisions  []escalation.Decision `json:"decisions,omitempty"`
	Signals    *parley.Signals       `json:"signals,omitempty"` // the last caller turn's
	Agent      *AgentRef             `json:"agent,omitempty"`
	Queue      *escalation.Waiting   `json:"queue,omitempty"` // while queued
	Listeners  []Listener            `json:"listeners,omitempty"`
	Brief      *Brief                `json:"brief,omitempty"` // once transferred
	Transfer   *TransferTimes        `json:"transfer,omitempty"`
}

// TransferTimes are the steps of a warm transfer; the differences are
// what the time-to-human KPIs measure.
type TransferTimes struct {
	DecidedAt   time.Time `json:"decided_at"`
	QueuedAt    time.Time `json:"queued_at,omitempty"`
	OfferedAt   time.Time `json:"offered_at,omitempty"`
	AcceptedAt  time.Time `json:"accepted_at,omitempty"`
	ConnectedAt time.Time `json:"connected_at,omitempty"`
}

// Brief is what an agent reads before the audio connects: why the call
// was transferred, who is calling and what was said.
type Brief struct {
	CallID string `json:"call_id"`
	// Node is the server holding the call's audio (several nodes): the
	// agent's browser connects its WebRTC there.
	Node      string              `json:"node,omitempty"`
	Channel   parley.Channel      `json:"channel"`
	From      string              `json:"from"`
	To        string              `json:"to"`
	StartedAt time.Time           `json:"started_at"`
	DecidedAt time.Time           `json:"decided_at"`
	Reasons   []escalation.Reason `json:"reasons"`
	Priority  bool                `json:"priority"`
	Skill     string              `json:"skill,omitempty"`
	Intent    string              `json:"intent,omitempty"`
	Slots     map[string]string   `json:"slots,omitempty"`
	// Summary is the responder's own summary when it asked for the
	// transfer (an LLM), else a summary drawn from the transcript.
	Summary    string               `json:"summary"`
	Transcript []parley.Turn        `json:"transcript"`
	Decision   *escalation.Decision `json:"decision,omitempty"` // the one that transferred
	// History is the caller's earlier calls, newest first.
	History []parley.Call `json:"history"`
}

// Offer is a call offered to an agent, with its brief.
type Offer struct {
	Brief
	OfferedAt time.Time `json:"offered_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// WrapUp is what an agent writes after a call.
type WrapUp struct {
	Disposition string `json:"disposition"`
	Notes       string `json:"notes"`
}

// JoinMode is how a supervisor takes part in a call.
type JoinMode string

// Join modes.
const (
	JoinListen  JoinMode = "listen"  // hears everyone, nobody hears them
	JoinWhisper JoinMode = "whisper" // hears everyone, only the agent hears them
	JoinBarge   JoinMode = "barge"   // a full party of the call
)

// Valid reports whether m is a known mode.
func (m JoinMode) Valid() bool { return m == JoinListen || m == JoinWhisper || m == JoinBarge }

// UpdateKind names a live update.
type UpdateKind string

// Updates the consoles receive.
const (
	UpdateCall      UpdateKind = "call"      // a call started or changed phase, agent or listeners (Call)
	UpdateEnded     UpdateKind = "ended"     // a call ended (Call, with its final phase)
	UpdateTurn      UpdateKind = "turn"      // a turn was recorded (Turn)
	UpdateDecision  UpdateKind = "decision"  // an escalation decision (Decision)
	UpdateQueue     UpdateKind = "queue"     // the queue changed (Queue)
	UpdateAgent     UpdateKind = "agent"     // an agent's state changed (Agent)
	UpdateOffer     UpdateKind = "offer"     // a call is offered to AgentID (Offer)
	UpdateWithdrawn UpdateKind = "withdrawn" // the offer to AgentID ended unanswered (Text: why)
	UpdateNotice    UpdateKind = "notice"    // something the agent on CallID must know (Text)
)

// Update is one change pushed to the consoles. AgentID names the agent it
// concerns (offers, agent state, notices for the agent on a call); the
// console shows an agent only updates for themself or their calls.
type Update struct {
	Kind     UpdateKind           `json:"kind"`
	At       time.Time            `json:"at"`
	CallID   string               `json:"call_id,omitempty"`
	AgentID  string               `json:"agent_id,omitempty"`
	Call     *LiveCall            `json:"call,omitempty"`
	Turn     *parley.Turn         `json:"turn,omitempty"`
	Decision *escalation.Decision `json:"decision,omitempty"`
	Agent    *escalation.Agent    `json:"agent,omitempty"`
	Queue    []escalation.Waiting `json:"queue,omitempty"`
	Offer    *Offer               `json:"offer,omitempty"`
	Text     string               `json:"text,omitempty"`
}

// Snapshot is everything live at one moment.
type Snapshot struct {
	Calls  []LiveCall           `json:"calls"`
	Queue  []escalation.Waiting `json:"queue"`
	Agents []escalation.Agent   `json:"agents"`
}

// hub fans Updates out to subscribers. A subscriber that falls behind
// loses updates (counted in Dropped) rather than slowing a call; a console
// that sees a gap refetches the Snapshot.
type hub struct {
	mu      sync.Mutex
	subs    map[chan Update]struct{}
	dropped uint64
	// forward, when set, also sends updates about this node's calls to
	// the other nodes of a cluster.
	forward func(Update)
}

// callScoped reports whether an update is about one call, made by the
// node that holds it (the others are made by every node from desk events).
func (u Update) callScoped() bool {
	switch u.Kind {
	case UpdateQueue, UpdateAgent, UpdateWithdrawn:
		return false
	}
	return true
}

func (h *hub) publish(u Update) {
	if u.At.IsZero() {
		u.At = time.Now()
	}
	if h.forward != nil && u.callScoped() {
		h.forward(u)
	}
	h.deliver(u)
}

// deliver hands u to this node's subscribers.
func (h *hub) deliver(u Update) {
	h.mu.Lock()
	for ch := range h.subs {
		select {
		case ch <- u:
		default:
			h.dropped++
		}
	}
	h.mu.Unlock()
}

func (h *hub) subscribe(buf int) (<-chan Update, func()) {
	if buf <= 0 {
		buf = 256
	}
	ch := make(chan Update, buf)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan Update]struct{}{}
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, ch)
			h.mu.Unlock()
		})
	}
}

// Subscribe returns a channel of live updates and a function that ends the
// subscription. Updates are dropped for a subscriber whose buffer (buf,
// default 256) is full.
func (sb *Switchboard) Subscribe(buf int) (<-chan Update, func()) {
	return sb.hub.subscribe(buf)
}
