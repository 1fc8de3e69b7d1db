package switchboard

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/escalation"
	"github.com/parley-ai/parley/media"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
	"github.com/parley-ai/parley/redact"
)

// call is one live call. The leg is read by one goroutine (runLeg) whose
// handler, the router, forwards inbound audio, keys and marks to whoever
// owns the call's media at the moment: the AI session, the queue, the
// voicemail recorder or the human bridge.
type call struct {
	node    string // the server holding the call
	info    parley.LegInfo
	leg     parley.Leg // the caller's connection
	tap     *tapLeg    // leg as the AI and the queue write to it
	session *dialog.Session
	router  router

	legDone chan struct{} // closed when the leg's reader returned
	legErr  error         // what it returned (read after legDone)

	cancel   context.CancelFunc // ends the call wherever it is (Drain)
	joinCh   chan *agentJoin    // an agent accepted; cap 1
	hangupCh chan string        // the agent hung up (agent id); cap 1

	mu          sync.Mutex
	phase       Phase
	turns       int
	seq         int // last turn number recorded
	state       escalation.State
	decisions   []escalation.Decision
	transcript  []parley.Turn   // redacted, as consoles show it
	signals     *parley.Signals // the last caller turn's
	pendingText string          // the caller's last words, until their turn is recorded
	transfer    *transferState  // set once a transfer was decided
	agent       *AgentRef
	agentParty  *media.Party
	conf        *conference
	listeners   map[string]*listener
	holdStop    context.CancelFunc // ends the hold music while the agent holds the call
	dlg         *redact.Dialogue   // the call's redaction state
	ended       bool
}

// transferState is what the switchboard knows of a call's way to a human.
type transferState struct {
	decision escalation.Decision
	result   dialog.Result
	request  escalation.Request
	brief    Brief
	times    TransferTimes
	// announced: the AI's own reply already told the caller they are
	// being put through (it asked for a person or needs a human-only service).
	announced bool
	// attempts counts agents whose audio dropped, to re-queue with priority.
	attempts int
}

// agentJoin is an accepted offer: the agent's WebRTC peer, waiting to be bridged.
type agentJoin struct {
	agent      escalation.Agent
	peer       *mwebrtc.Peer
	acceptedAt time.Time

	// Set under the call's lock by attachLocked and detach.
	party       *media.Party  // the agent in the conference, once attached
	connectedAt time.Time     // when the agent's audio joined the call
	pumped      chan struct{} // closed when the agent's audio pump ended
	released    bool          // detached: never attach again

	hear atomic.Pointer[func([]int16)] // the agent's recognizer, while bridged
}

// listener is a supervisor joined to the call.
type listener struct {
	Listener
	peer  *mwebrtc.Peer
	party *media.Party
}

// summary returns the call's row for the live list; c.mu must be held.
func (c *call) summaryLocked() CallSummary {
	return CallSummary{ID: c.info.CallID, Node: c.node, Channel: c.info.Channel, From: c.info.From, To: c.info.To, StartedAt: c.info.StartedAt, Phase: c.phase, Turns: c.turns}
}

// liveLocked returns the console view of the call; c.mu must be held.
func (c *call) liveLocked(withTranscript bool) LiveCall {
	lc := LiveCall{CallSummary: c.summaryLocked(), Agent: c.agent}
	if withTranscript {
		lc.Transcript = append([]parley.Turn{}, c.transcript...)
		lc.Decisions = append([]escalation.Decision(nil), c.decisions...)
	} else {
		lc.Transcript = []parley.Turn{}
	}
	if c.signals != nil {
		s := *c.signals
		lc.Signals = &s
	}
	for _, l := range c.listeners {
		lc.Listeners = append(lc.Listeners, l.Listener)
	}
	if t := c.transfer; t != nil {
		b := t.brief
		b.Transcript = append([]parley.Turn{}, c.transcript...)
		lc.Brief = &b
		times := t.times
		lc.Transfer = &times
	}
	return lc
}

// router is the leg's handler: it hands each inbound event to the current
// owner of the call's media, and the caller's voice to the conference when
// one listens.
type router struct {
	h      atomic.Pointer[handlerBox]
	caller atomic.Pointer[media.Party] // the caller's voice in the conference, when there is one
}

type handlerBox struct{ parley.LegHandler }

func (r *router) set(h parley.LegHandler) { r.h.Store(&handlerBox{h}) }

func (r *router) OnAudio(pcm []int16) {
	if p := r.caller.Load(); p != nil {
		_ = p.Write(pcm)
	}
	if b := r.h.Load(); b != nil {
		b.OnAudio(pcm)
	}
}

func (r *router) OnDTMF(d byte) {
	if b := r.h.Load(); b != nil {
		b.OnDTMF(d)
	}
}

func (r *router) OnMark(name string) {
	if b := r.h.Load(); b != nil {
		b.OnMark(name)
	}
}

// tapLeg is the caller's leg as the AI and the queue see it: what they
// play also reaches the conference (supervisors listening in), when there
// is one.
type tapLeg struct {
	parley.Leg
	out atomic.Pointer[media.Party]
}

func (t *tapLeg) WriteFrame(pcm []int16) error {
	if p := t.out.Load(); p != nil {
		_ = p.Write(pcm)
	}
	return t.Leg.WriteFrame(pcm)
}

// discard is a FrameWriter that drops what it is given (parties that only speak).
type discard struct{}

func (discard) WriteFrame([]int16) error { return nil }
