package escalation

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// AgentState is what a human agent is doing.
type AgentState string

// Agent states. Agents set Available and Away themselves; the desk moves
// them to Offered, Busy and WrapUp as calls come and go.
const (
	AgentOffline   AgentState = "offline"   // console closed
	AgentAway      AgentState = "away"      // logged in, not taking calls
	AgentAvailable AgentState = "available" // waiting for a call
	AgentOffered   AgentState = "offered"   // a call is offered and waits for their answer
	AgentBusy      AgentState = "busy"      // on a call
	AgentWrapUp    AgentState = "wrapup"    // writing up the last call
)

// Agent is one human agent as the desk routes to them.
type Agent struct {
	ID     string     `json:"id"`
	Name   string     `json:"name"`
	Skills []string   `json:"skills,omitempty"`
	State  AgentState `json:"state"`
	// Since is when the agent entered State.
	Since time.Time `json:"since"`
	// IdleSince is when the agent last became available; routing offers a
	// call to the agent idle longest.
	IdleSince time.Time `json:"idle_since"`
	// CallID is the call offered to the agent or the one they are on.
	CallID  string `json:"call_id,omitempty"`
	Handled int    `json:"handled"` // calls taken since signing in
}

// HasSkill reports whether the agent lists skill.
func (a Agent) HasSkill(skill string) bool { return slices.Contains(a.Skills, skill) }

// Request asks the desk for a human for one call.
type Request struct {
	CallID string `json:"call_id"`
	// Node is the server that holds the call's audio (several nodes share
	// one desk): an agent on any node takes it by connecting there.
	Node     string   `json:"node,omitempty"`
	From     string   `json:"from"`
	Skill    string   `json:"skill,omitempty"` // "" = any agent
	Priority bool     `json:"priority"`        // ahead of calls without priority
	Reasons  []Reason `json:"reasons,omitempty"`
}

// Waiting is a call in the queue.
type Waiting struct {
	Request
	QueuedAt time.Time `json:"queued_at"`
	Position int       `json:"position"` // 1 = next
	// OfferedTo is the agent whose answer the call waits for, if any.
	OfferedTo string    `json:"offered_to,omitempty"`
	OfferedAt time.Time `json:"offered_at,omitempty"`
	Declined  []string  `json:"declined,omitempty"` // agents who declined or missed it
}

// DeskEventKind names a change on the desk.
type DeskEventKind string

// Desk events.
const (
	DeskAgent     DeskEventKind = "agent"      // an agent's state changed
	DeskQueue     DeskEventKind = "queue"      // the queue changed (joined, left, order)
	DeskOffer     DeskEventKind = "offer"      // a call was offered to Agent
	DeskWithdrawn DeskEventKind = "withdrawn"  // an offer ended unanswered (declined, missed, caller left)
	DeskAccepted  DeskEventKind = "accepted"   // Agent accepted CallID
	DeskSkillWait DeskEventKind = "skill_wait" // a call stopped waiting for a skilled agent
)

// DeskEvent tells listeners what changed. Agent is a copy of the agent
// concerned, when there is one.
type DeskEvent struct {
	Kind   DeskEventKind
	CallID string
	Agent  *Agent
	Why    string // for DeskWithdrawn: "declined", "missed", "cancelled", "signed_out"
}

// DeskOptions tune a Desk; zero fields take the defaults.
type DeskOptions struct {
	// OfferTimeout is how long an agent has to answer an offer; an agent
	// who lets it pass is set away and the call goes to the next (20 s).
	OfferTimeout time.Duration
	// SkillWait is how long a call waits for an agent with the needed
	// skill while one is signed in but busy, before any agent may take it
	// (30 s). When no signed-in agent has the skill, any agent takes it.
	SkillWait time.Duration
	// DefaultHandle is the assumed handle time of a human call until the
	// desk has seen some (3 min); it drives the estimated wait.
	DefaultHandle time.Duration
	// OnEvent, when set, is called after every change, outside the desk's
	// lock, in the order the changes happened. It must not block for long.
	OnEvent func(DeskEvent)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Desk errors.
var (
	ErrUnknownAgent = errors.New("escalation: agent is not signed in")
	ErrNoOffer      = errors.New("escalation: no such offer for this agent")
	ErrQueued       = errors.New("escalation: call is already queued")
	ErrNotQueued    = errors.New("escalation: call is not queued")
	ErrBadState     = errors.New("escalation: state cannot be set by hand")
)

// Router is the desk as the switchboard drives it. *Desk keeps it in
// memory for one server; store/postgres keeps it in the database, shared
// by the nodes of a cluster. Both route with PickAgent and order the queue
// with QueueLess, so they offer the same call to the same agent.
type Router interface {
	SignIn(id, name string, skills []string) Agent
	SignOut(id string)
	SetState(id string, st AgentState) error
	Enqueue(r Request) error
	Cancel(callID string) bool
	Accept(agentID, callID string) (Waiting, error)
	Decline(agentID, callID string) error
	Requeue(r Request, exclude ...string) error
	Finish(agentID string, handle time.Duration)
	Agent(id string) (Agent, bool)
	Offered(agentID string) (Waiting, bool)
	Position(callID string) (pos int, wait time.Duration, ok bool)
	Staffed() bool
	Snapshot() ([]Agent, []Waiting)
	OfferTimeout() time.Duration
}

var _ Router = (*Desk)(nil)

// Desk is the queue of calls waiting for a human and the agents who take
// them: it routes each call to the longest-idle available agent with the
// needed skill (calls with priority first, then in arrival order), offers
// it, and moves on to the next agent when one declines or does not answer
// in time. It holds no media; the switchboard bridges the audio once an
// agent accepts. It is safe for concurrent use.
type Desk struct {
	opt DeskOptions

	mu       sync.Mutex
	agents   map[string]*Agent
	queue    []*entry
	timers   map[string]*time.Timer // offer timeouts by call id
	leaving  map[string]bool        // agents who signed out during a call
	handleN  int
	handleMu time.Duration // mean human handle time
	events   []DeskEvent   // to deliver after the lock is released
	emitting bool
}

type entry struct {
	Waiting
	skillDeadline time.Time
	skillTimer    *time.Timer
}

// NewDesk returns an empty desk.
func NewDesk(opt DeskOptions) *Desk {
	if opt.OfferTimeout <= 0 {
		opt.OfferTimeout = 20 * time.Second
	}
	if opt.SkillWait <= 0 {
		opt.SkillWait = 30 * time.Second
	}
	if opt.DefaultHandle <= 0 {
		opt.DefaultHandle = 3 * time.Minute
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Desk{opt: opt, agents: map[string]*Agent{}, timers: map[string]*time.Timer{}, leaving: map[string]bool{}}
}

// OfferTimeout is how long an agent has to answer an offer.
func (d *Desk) OfferTimeout() time.Duration { return d.opt.OfferTimeout }

// SignIn registers an agent (their console opened). A new agent starts
// away; an agent already signed in keeps their state and call.
func (d *Desk) SignIn(id, name string, skills []string) Agent {
	d.mu.Lock()
	defer d.flush()
	a := d.agents[id]
	now := d.opt.Now()
	if a == nil {
		a = &Agent{ID: id, Name: name, State: AgentAway, Since: now}
		d.agents[id] = a
	}
	delete(d.leaving, id)
	a.Name = name
	a.Skills = append([]string(nil), skills...)
	if a.State == AgentOffline {
		a.State, a.Since = AgentAway, now
	}
	d.emitAgent(a)
	return *a
}

// SignOut takes the agent off the desk (console closed). An offer waiting
// for them goes to the next agent; a call they are on is not touched (the
// switchboard ends it when their audio goes).
func (d *Desk) SignOut(id string) {
	d.mu.Lock()
	defer d.flush()
	a := d.agents[id]
	if a == nil {
		return
	}
	if a.State == AgentOffered {
		d.withdrawLocked(a.CallID, "signed_out", false)
	}
	if a.State == AgentBusy {
		d.leaving[id] = true // Finish removes them
		return
	}
	a.State, a.Since, a.CallID = AgentOffline, d.opt.Now(), ""
	d.emitAgent(a)
	delete(d.agents, id)
	d.dispatchLocked()
}

// SetState sets an agent available or away, or ends their wrap-up by
// setting them available. Busy, offered and wrap-up are the desk's to set.
func (d *Desk) SetState(id string, st AgentState) error {
	d.mu.Lock()
	defer d.flush()
	a := d.agents[id]
	if a == nil {
		return ErrUnknownAgent
	}
	if st != AgentAvailable && st != AgentAway {
		return fmt.Errorf("%w: %q", ErrBadState, st)
	}
	switch a.State {
	case AgentBusy:
		return fmt.Errorf("%w: agent is on a call", ErrBadState)
	case AgentOffered:
		if st == AgentAway {
			d.withdrawLocked(a.CallID, "declined", true)
		} else {
			return nil
		}
	}
	if a.State == st {
		return nil
	}
	now := d.opt.Now()
	a.State, a.Since, a.CallID = st, now, ""
	if st == AgentAvailable {
		a.IdleSince = now
	}
	d.emitAgent(a)
	d.dispatchLocked()
	return nil
}

// Enqueue puts a call in the queue and offers it at once when an agent is free.
func (d *Desk) Enqueue(r Request) error {
	d.mu.Lock()
	defer d.flush()
	if d.findLocked(r.CallID) != nil {
		return ErrQueued
	}
	e := &entry{Waiting: Waiting{Request: r, QueuedAt: d.opt.Now()}}
	e.Reasons = append([]Reason(nil), r.Reasons...)
	if r.Skill != "" {
		e.skillDeadline = e.QueuedAt.Add(d.opt.SkillWait)
		callID := r.CallID
		e.skillTimer = time.AfterFunc(d.opt.SkillWait, func() {
			d.mu.Lock()
			defer d.flush()
			if d.findLocked(callID) != nil {
				d.events = append(d.events, DeskEvent{Kind: DeskSkillWait, CallID: callID})
				d.dispatchLocked()
			}
		})
	}
	d.queue = append(d.queue, e)
	d.sortLocked()
	d.events = append(d.events, DeskEvent{Kind: DeskQueue, CallID: r.CallID})
	d.dispatchLocked()
	return nil
}

// Cancel takes a call out of the queue (the caller hung up or chose a
// callback); an offer out for it is withdrawn. It reports whether the call
// was queued.
func (d *Desk) Cancel(callID string) bool {
	d.mu.Lock()
	defer d.flush()
	e := d.findLocked(callID)
	if e == nil {
		return false
	}
	if e.OfferedTo != "" {
		d.withdrawLocked(callID, "cancelled", false)
	}
	d.removeLocked(callID)
	d.dispatchLocked()
	return true
}

// Accept records that agentID takes the call offered to them: the call
// leaves the queue and the agent is busy. It returns the call as it waited.
func (d *Desk) Accept(agentID, callID string) (Waiting, error) {
	d.mu.Lock()
	defer d.flush()
	a := d.agents[agentID]
	e := d.findLocked(callID)
	if a == nil || e == nil || a.State != AgentOffered || a.CallID != callID || e.OfferedTo != agentID {
		return Waiting{}, ErrNoOffer
	}
	d.stopOfferTimer(callID)
	w := e.Waiting
	w.Declined = slices.Clone(e.Declined)
	d.removeLocked(callID)
	now := d.opt.Now()
	a.State, a.Since = AgentBusy, now
	a.Handled++
	d.emitAgent(a)
	d.events = append(d.events, DeskEvent{Kind: DeskAccepted, CallID: callID, Agent: copyAgent(a)})
	d.dispatchLocked()
	return w, nil
}

// Decline records that agentID does not take the call offered to them;
// it goes to the next agent, and the agent stays available.
func (d *Desk) Decline(agentID, callID string) error {
	d.mu.Lock()
	defer d.flush()
	a := d.agents[agentID]
	if a == nil || a.State != AgentOffered || a.CallID != callID {
		return ErrNoOffer
	}
	d.withdrawLocked(callID, "declined", true)
	d.dispatchLocked()
	return nil
}

// Requeue puts a call back in the queue ahead of the others, for example
// when the agent's connection dropped; agents in exclude are not offered it.
func (d *Desk) Requeue(r Request, exclude ...string) error {
	r.Priority = true
	if err := d.Enqueue(r); err != nil {
		return err
	}
	if len(exclude) > 0 {
		d.mu.Lock()
		if e := d.findLocked(r.CallID); e != nil && e.OfferedTo == "" {
			e.Declined = append(e.Declined, exclude...)
		}
		d.mu.Unlock()
	}
	return nil
}

// Finish ends the agent's call after handle time on it: the agent moves to
// wrap-up (or leaves the desk if they signed out meanwhile).
func (d *Desk) Finish(agentID string, handle time.Duration) {
	d.mu.Lock()
	defer d.flush()
	a := d.agents[agentID]
	if a == nil || a.State != AgentBusy {
		return
	}
	if handle > 0 {
		d.handleMu, d.handleN = MeanHandle(d.handleMu, d.handleN, handle)
	}
	a.State, a.Since = AgentWrapUp, d.opt.Now()
	if d.leaving[agentID] {
		delete(d.leaving, agentID)
		a.State, a.CallID = AgentOffline, ""
		delete(d.agents, agentID)
	}
	d.emitAgent(a)
}

// Agent returns a copy of the agent, if signed in.
func (d *Desk) Agent(id string) (Agent, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.agents[id]
	if a == nil {
		return Agent{}, false
	}
	return *copyAgent(a), true
}

// Offered returns the call offered to the agent, if any.
func (d *Desk) Offered(agentID string) (Waiting, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.agents[agentID]
	if a == nil || a.State != AgentOffered {
		return Waiting{}, false
	}
	e := d.findLocked(a.CallID)
	if e == nil {
		return Waiting{}, false
	}
	return e.Waiting, true
}

// Position returns a queued call's place (1 = next) and the estimated wait.
func (d *Desk) Position(callID string) (pos int, wait time.Duration, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.findLocked(callID)
	if e == nil {
		return 0, 0, false
	}
	return e.Position, d.estimateLocked(e.Position), true
}

// Staffed reports whether any agent is signed in and not away, so that
// waiting in the queue can end with a person.
func (d *Desk) Staffed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.agents {
		if a.State != AgentAway && a.State != AgentOffline {
			return true
		}
	}
	return false
}

// Snapshot returns every agent (by name) and the queue (in order).
func (d *Desk) Snapshot() ([]Agent, []Waiting) {
	d.mu.Lock()
	defer d.mu.Unlock()
	agents := make([]Agent, 0, len(d.agents))
	for _, a := range d.agents {
		agents = append(agents, *copyAgent(a))
	}
	sort.Slice(agents, func(i, j int) bool { return agents[i].Name < agents[j].Name })
	q := make([]Waiting, len(d.queue))
	for i, e := range d.queue {
		q[i] = e.Waiting
		q[i].Declined = slices.Clone(e.Declined)
		q[i].Reasons = slices.Clone(e.Reasons)
	}
	return agents, q
}

// estimateLocked is the expected wait at position pos: the calls ahead
// shared among the agents on the desk, each taking the mean handle time.
func (d *Desk) estimateLocked(pos int) time.Duration {
	staff := 0
	for _, a := range d.agents {
		if OnDuty(*a) {
			staff++
		}
	}
	handle := d.opt.DefaultHandle
	if d.handleN > 0 {
		handle = d.handleMu
	}
	return EstimateWait(pos, staff, handle)
}

// EstimateWait is the expected wait at queue position pos (1 = next): the
// calls ahead shared among staff agents on duty, each taking handle.
func EstimateWait(pos, staff int, handle time.Duration) time.Duration {
	if staff == 0 {
		return time.Duration(pos) * handle
	}
	return time.Duration((pos+staff-1)/staff) * handle
}

// OnDuty reports whether an agent counts as staff: signed in and not away.
func OnDuty(a Agent) bool { return a.State != AgentAway && a.State != AgentOffline }

// MeanHandle updates a moving mean of handle times over the last ~50 calls
// with one more call; n is the number of calls seen before it.
func MeanHandle(mean time.Duration, n int, handle time.Duration) (time.Duration, int) {
	n++
	return mean + (handle-mean)/time.Duration(min(n, 50)), n
}

func (d *Desk) findLocked(callID string) *entry {
	for _, e := range d.queue {
		if e.CallID == callID {
			return e
		}
	}
	return nil
}

func (d *Desk) removeLocked(callID string) {
	for i, e := range d.queue {
		if e.CallID == callID {
			if e.skillTimer != nil {
				e.skillTimer.Stop()
			}
			d.queue = slices.Delete(d.queue, i, i+1)
			d.sortLocked()
			d.events = append(d.events, DeskEvent{Kind: DeskQueue, CallID: callID})
			return
		}
	}
}

// sortLocked orders the queue (priority, then arrival) and numbers it.
func (d *Desk) sortLocked() {
	sort.SliceStable(d.queue, func(i, j int) bool { return QueueLess(d.queue[i].Waiting, d.queue[j].Waiting) })
	for i, e := range d.queue {
		e.Position = i + 1
	}
}

// withdrawLocked ends the offer out for callID; a declining agent stays
// available (and is not offered this call again), a silent one goes away.
func (d *Desk) withdrawLocked(callID, why string, remember bool) {
	e := d.findLocked(callID)
	if e == nil || e.OfferedTo == "" {
		return
	}
	d.stopOfferTimer(callID)
	a := d.agents[e.OfferedTo]
	if remember {
		e.Declined = append(e.Declined, e.OfferedTo)
	}
	e.OfferedTo, e.OfferedAt = "", time.Time{}
	if a != nil {
		now := d.opt.Now()
		a.CallID, a.Since = "", now
		switch why {
		case "missed":
			a.State = AgentAway
		case "signed_out":
			a.State = AgentOffline
		default:
			a.State, a.IdleSince = AgentAvailable, now
		}
		d.events = append(d.events, DeskEvent{Kind: DeskWithdrawn, CallID: callID, Agent: copyAgent(a), Why: why})
		d.emitAgent(a)
	}
}

func (d *Desk) stopOfferTimer(callID string) {
	if t := d.timers[callID]; t != nil {
		t.Stop()
		delete(d.timers, callID)
	}
}

// dispatchLocked offers every waiting call it can to an agent.
func (d *Desk) dispatchLocked() {
	now := d.opt.Now()
	for _, e := range d.queue {
		if e.OfferedTo != "" {
			continue
		}
		a := d.pickLocked(e, now)
		if a == nil {
			continue
		}
		e.OfferedTo, e.OfferedAt = a.ID, now
		a.State, a.Since, a.CallID = AgentOffered, now, e.CallID
		callID, agentID := e.CallID, a.ID
		d.timers[callID] = time.AfterFunc(d.opt.OfferTimeout, func() {
			d.mu.Lock()
			defer d.flush()
			if e := d.findLocked(callID); e != nil && e.OfferedTo == agentID {
				d.withdrawLocked(callID, "missed", true)
				d.dispatchLocked()
			}
		})
		d.events = append(d.events, DeskEvent{Kind: DeskOffer, CallID: callID, Agent: copyAgent(a)})
		d.emitAgent(a)
	}
}

// pickLocked chooses the agent for a waiting call (see PickAgent).
func (d *Desk) pickLocked(e *entry, now time.Time) *Agent {
	agents := make([]Agent, 0, len(d.agents))
	for _, a := range d.agents {
		agents = append(agents, *a)
	}
	if i := PickAgent(e.Waiting, e.skillDeadline, agents, now, nil); i >= 0 {
		return d.agents[agents[i].ID]
	}
	return nil
}

// QueueLess orders the queue: calls with priority first, then by arrival.
func QueueLess(a, b Waiting) bool {
	if a.Priority != b.Priority {
		return a.Priority
	}
	return a.QueuedAt.Before(b.QueuedAt)
}

// PickAgent chooses the agent for a waiting call among agents and returns
// its index, or -1: available (and free, when free is given: a shared desk
// passes the agents it could lock), not one who declined the call, with
// the call's skill while an agent on duty has it and skillDeadline has not
// passed, idle longest (ties by id).
func PickAgent(w Waiting, skillDeadline time.Time, agents []Agent, now time.Time, free func(id string) bool) int {
	needSkill := false
	if w.Skill != "" && now.Before(skillDeadline) {
		for _, a := range agents {
			if a.HasSkill(w.Skill) && OnDuty(a) && !slices.Contains(w.Declined, a.ID) {
				needSkill = true
				break
			}
		}
	}
	best := -1
	for i, a := range agents {
		if a.State != AgentAvailable || slices.Contains(w.Declined, a.ID) || (free != nil && !free(a.ID)) {
			continue
		}
		if needSkill && !a.HasSkill(w.Skill) {
			continue
		}
		if best < 0 || a.IdleSince.Before(agents[best].IdleSince) || (a.IdleSince.Equal(agents[best].IdleSince) && a.ID < agents[best].ID) {
			best = i
		}
	}
	return best
}

func (d *Desk) emitAgent(a *Agent) {
	d.events = append(d.events, DeskEvent{Kind: DeskAgent, CallID: a.CallID, Agent: copyAgent(a)})
}

// flush unlocks the desk and delivers the events the change produced, in
// order, from one goroutine at a time.
func (d *Desk) flush() {
	if d.emitting || d.opt.OnEvent == nil {
		if d.opt.OnEvent == nil {
			d.events = d.events[:0]
		}
		d.mu.Unlock()
		return
	}
	d.emitting = true
	for len(d.events) > 0 {
		evs := d.events
		d.events = nil
		d.mu.Unlock()
		for _, ev := range evs {
			d.opt.OnEvent(ev)
		}
		d.mu.Lock()
	}
	d.emitting = false
	d.mu.Unlock()
}

func copyAgent(a *Agent) *Agent {
	c := *a
	c.Skills = slices.Clone(a.Skills)
	return &c
}
