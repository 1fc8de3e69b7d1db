package switchboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/escalation"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
)

// Several nodes. A call's audio lives on the node that answered it; the
// desk is shared (Options.Router). Each console operation on a call runs
// on the node that holds it: called on another node, it is sent there over
// the cluster bus and its answer (a WebRTC answer whose candidates are that
// node's, so the browser's audio connects there) comes back. Updates about
// a node's calls are published to the others, so every console sees every
// call.

// liveTopic carries Updates (JSON) about a node's calls to the others.
const liveTopic = "live"

// Bus methods a node serves for the others.
const (
	rpcLive      = "sb.live"
	rpcLiveCall  = "sb.livecall"
	rpcOffer     = "sb.offer"
	rpcAgentCall = "sb.agentcall"
	rpcAccept    = "sb.accept"
	rpcHangup    = "sb.hangup"
	rpcMute      = "sb.mute"
	rpcHold      = "sb.hold"
	rpcWrapUp    = "sb.wrapup"
	rpcRelease   = "sb.release"
	rpcJoin      = "sb.join"
	rpcJoinMode  = "sb.joinmode"
	rpcLeave     = "sb.leave"
)

// rpcRequest is every remote operation's arguments.
type rpcRequest struct {
	AgentID string       `json:"agent_id,omitempty"`
	CallID  string       `json:"call_id,omitempty"`
	SDP     string       `json:"sdp,omitempty"`
	On      bool         `json:"on,omitempty"` // mute, hold
	WrapUp  *WrapUp      `json:"wrapup,omitempty"`
	User    *parley.User `json:"user,omitempty"`
	UserID  string       `json:"user_id,omitempty"`
	Mode    JoinMode     `json:"mode,omitempty"`
}

// rpcReply is every remote operation's answer: Code names a known error,
// so that the console maps it to the same HTTP status as a local one.
type rpcReply struct {
	Code string          `json:"code,omitempty"`
	Err  string          `json:"err,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// knownErrors are the errors that keep their identity across nodes.
var knownErrors = []struct {
	code string
	err  error
}{
	{"no_such_call", ErrNoSuchCall}, {"not_your_call", ErrNotYourCall}, {"no_agent", ErrNoAgent},
	{"bad_mode", ErrBadMode}, {"not_human", ErrNotHuman}, {"no_offer", escalation.ErrNoOffer},
	{"unknown_agent", escalation.ErrUnknownAgent}, {"bad_state", escalation.ErrBadState},
	{"bad_offer", mwebrtc.ErrBadOffer}, {"deadline", context.DeadlineExceeded},
}

// forwarder publishes a node's call updates to the others from one
// goroutine, so that no call waits on the database; when it falls behind,
// updates are dropped and counted (consoles refetch on gaps).
type forwarder struct {
	ch      chan Update
	dropped atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
}

// joinCluster connects the switchboard to the other nodes.
func (sb *Switchboard) joinCluster() {
	bus := sb.opt.Bus
	f := &forwarder{ch: make(chan Update, 4096), stop: make(chan struct{}), done: make(chan struct{})}
	sb.fwd = f
	sb.hub.forward = func(u Update) {
		select {
		case f.ch <- u:
		default:
			f.dropped.Add(1)
		}
	}
	go func() {
		defer close(f.done)
		for {
			select {
			case <-f.stop:
				return
			case u := <-f.ch:
				body, err := json.Marshal(u)
				if err != nil {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := bus.Publish(ctx, liveTopic, body); err != nil {
					f.dropped.Add(1)
				}
				cancel()
			}
		}
	}()
	bus.Subscribe(liveTopic, func(_ string, body []byte) {
		var u Update
		if json.Unmarshal(body, &u) == nil {
			sb.hub.deliver(u)
		}
	})
	serve := func(method string, fn func(ctx context.Context, r rpcRequest) (any, error)) {
		bus.Handle(method, func(ctx context.Context, _ string, body []byte) ([]byte, error) {
			var r rpcRequest
			if err := json.Unmarshal(body, &r); err != nil {
				return nil, fmt.Errorf("switchboard: bad request: %w", err)
			}
			out, err := fn(ctx, r)
			var rep rpcReply
			if err != nil {
				rep.Err = err.Error()
				for _, k := range knownErrors {
					if errors.Is(err, k.err) {
						rep.Code = k.code
						break
					}
				}
			} else if out != nil {
				if rep.Data, err = json.Marshal(out); err != nil {
					return nil, err
				}
			}
			return json.Marshal(rep)
		})
	}
	serve(rpcLive, func(context.Context, rpcRequest) (any, error) { return sb.localCalls(), nil })
	serve(rpcLiveCall, func(_ context.Context, r rpcRequest) (any, error) {
		if lc, ok := sb.liveCallLocal(r.CallID); ok {
			return lc, nil
		}
		return nil, ErrNoSuchCall
	})
	serve(rpcOffer, func(_ context.Context, r rpcRequest) (any, error) {
		if o, ok := sb.pendingOfferLocal(r.AgentID); ok {
			return o, nil
		}
		return nil, escalation.ErrNoOffer
	})
	serve(rpcAgentCall, func(_ context.Context, r rpcRequest) (any, error) {
		if lc, ok := sb.agentCallLocal(r.AgentID); ok {
			return lc, nil
		}
		return nil, ErrNoSuchCall
	})
	serve(rpcAccept, func(ctx context.Context, r rpcRequest) (any, error) {
		return sb.acceptLocal(ctx, r.AgentID, r.CallID, r.SDP)
	})
	serve(rpcHangup, func(_ context.Context, r rpcRequest) (any, error) { return nil, sb.hangupLocal(r.AgentID, r.CallID) })
	serve(rpcMute, func(_ context.Context, r rpcRequest) (any, error) {
		return nil, sb.muteLocal(r.AgentID, r.CallID, r.On)
	})
	serve(rpcHold, func(_ context.Context, r rpcRequest) (any, error) {
		return nil, sb.holdLocal(r.AgentID, r.CallID, r.On)
	})
	serve(rpcWrapUp, func(ctx context.Context, r rpcRequest) (any, error) {
		if r.WrapUp == nil {
			return nil, fmt.Errorf("%w: no wrap-up", escalation.ErrBadState)
		}
		return nil, sb.wrapUpLocal(ctx, r.AgentID, r.CallID, *r.WrapUp)
	})
	serve(rpcRelease, func(_ context.Context, r rpcRequest) (any, error) {
		sb.release(r.AgentID, r.CallID)
		return nil, nil
	})
	serve(rpcJoin, func(ctx context.Context, r rpcRequest) (any, error) {
		if r.User == nil {
			return nil, errors.New("switchboard: join: no user")
		}
		return sb.joinLocal(ctx, *r.User, r.CallID, r.Mode, r.SDP)
	})
	serve(rpcJoinMode, func(_ context.Context, r rpcRequest) (any, error) {
		return nil, sb.joinModeLocal(r.UserID, r.CallID, r.Mode)
	})
	serve(rpcLeave, func(_ context.Context, r rpcRequest) (any, error) { return nil, sb.leaveLocal(r.UserID, r.CallID) })
}

// Close stops forwarding updates to the other nodes (with a Bus); call it
// after Drain.
func (sb *Switchboard) Close() {
	if f := sb.fwd; f != nil {
		select {
		case <-f.stop:
		default:
			close(f.stop)
		}
		<-f.done
	}
}

// ForwardDropped counts live updates that could not be sent to the other
// nodes (the database too slow or down).
func (sb *Switchboard) ForwardDropped() uint64 {
	if sb.fwd == nil {
		return 0
	}
	return sb.fwd.dropped.Load()
}

// ownerOf returns the node that holds callID when it is another node's.
func (sb *Switchboard) ownerOf(ctx context.Context, callID string) (string, bool) {
	if sb.opt.Bus == nil || callID == "" || sb.lookup(callID) != nil {
		return "", false
	}
	sb.mu.Lock()
	_, last := sb.lastCalls[callID]
	sb.mu.Unlock()
	if last {
		return "", false
	}
	_, q := sb.desk.Snapshot()
	for _, w := range q {
		if w.CallID == callID && w.Node != "" {
			return w.Node, w.Node != sb.opt.Node
		}
	}
	if sb.opt.Store == nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := sb.opt.Store.GetCall(ctx, callID)
	if err != nil || c.Node == "" || c.Node == sb.opt.Node {
		return "", false
	}
	return c.Node, true
}

// remote runs method on node and decodes its answer into out.
func (sb *Switchboard) remote(ctx context.Context, node, method string, r rpcRequest, out any) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	raw, err := sb.opt.Bus.Request(ctx, node, method, body)
	if err != nil {
		return fmt.Errorf("switchboard: the call's node %s: %w", node, err)
	}
	var rep rpcReply
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("switchboard: node %s: bad reply: %w", node, err)
	}
	if rep.Err != "" {
		for _, k := range knownErrors {
			if k.code == rep.Code {
				return fmt.Errorf("%w (node %s: %s)", k.err, node, rep.Err)
			}
		}
		return fmt.Errorf("switchboard: node %s: %s", node, rep.Err)
	}
	if out != nil && len(rep.Data) > 0 {
		return json.Unmarshal(rep.Data, out)
	}
	return nil
}

// localCalls is this node's live calls with their transcripts.
func (sb *Switchboard) localCalls() []LiveCall {
	sb.mu.Lock()
	calls := make([]*call, 0, len(sb.calls))
	for _, c := range sb.calls {
		calls = append(calls, c)
	}
	sb.mu.Unlock()
	out := make([]LiveCall, 0, len(calls))
	for _, c := range calls {
		c.mu.Lock()
		out = append(out, c.liveLocked(true))
		c.mu.Unlock()
	}
	return out
}

// Live returns every live call (of every node, with a Bus) with its
// transcript, the queue and the agents.
func (sb *Switchboard) Live() Snapshot {
	snap := Snapshot{Calls: sb.localCalls()}
	if sb.opt.Bus != nil && sb.opt.Nodes != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		nodes, err := sb.opt.Nodes(ctx)
		if err != nil {
			sb.opt.Log.Warn().Err(err).Msg("switchboard: live nodes unknown; showing this node's calls")
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, n := range nodes {
			if n == sb.opt.Node {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				var calls []LiveCall
				if err := sb.remote(ctx, n, rpcLive, rpcRequest{}, &calls); err != nil {
					sb.opt.Log.Warn().Err(err).Str("node", n).Msg("switchboard: a node's live calls are missing")
					return
				}
				mu.Lock()
				snap.Calls = append(snap.Calls, calls...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		cancel()
	}
	sort.Slice(snap.Calls, func(i, j int) bool { return snap.Calls[i].StartedAt.Before(snap.Calls[j].StartedAt) })
	snap.Agents, snap.Queue = sb.desk.Snapshot()
	return snap
}

// LiveCall returns one live call (of any node) with its transcript.
func (sb *Switchboard) LiveCall(id string) (LiveCall, bool) {
	if lc, ok := sb.liveCallLocal(id); ok {
		return lc, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if node, ok := sb.ownerOf(ctx, id); ok {
		var lc LiveCall
		if sb.remote(ctx, node, rpcLiveCall, rpcRequest{CallID: id}, &lc) == nil {
			return lc, true
		}
	}
	return LiveCall{}, false
}

// PendingOffer returns the call offered to the agent with its brief, the
// transcript as it stands now (from the node that holds the call).
func (sb *Switchboard) PendingOffer(agentID string) (Offer, bool) {
	if o, ok := sb.pendingOfferLocal(agentID); ok {
		return o, true
	}
	w, ok := sb.desk.Offered(agentID)
	if !ok || sb.opt.Bus == nil || w.Node == "" || w.Node == sb.opt.Node {
		return Offer{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var o Offer
	if err := sb.remote(ctx, w.Node, rpcOffer, rpcRequest{AgentID: agentID}, &o); err != nil {
		return Offer{}, false
	}
	return o, true
}

// AgentCall returns the call the agent is on or wrapping up.
func (sb *Switchboard) AgentCall(agentID string) (LiveCall, bool) {
	if lc, ok := sb.agentCallLocal(agentID); ok {
		return lc, true
	}
	a, ok := sb.desk.Agent(agentID)
	if !ok || a.CallID == "" || (a.State != escalation.AgentBusy && a.State != escalation.AgentWrapUp) {
		return LiveCall{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	node, ok := sb.ownerOf(ctx, a.CallID)
	if !ok {
		return LiveCall{}, false
	}
	var lc LiveCall
	if err := sb.remote(ctx, node, rpcAgentCall, rpcRequest{AgentID: agentID}, &lc); err != nil {
		return LiveCall{}, false
	}
	return lc, true
}

// Accept takes the call offered to the agent: offerSDP is the agent
// browser's WebRTC offer, the answer is returned. The node that holds the
// call answers, so the agent's audio connects there. The caller is bridged
// as soon as the audio connects and the AI has finished speaking.
func (sb *Switchboard) Accept(ctx context.Context, agentID, callID, offerSDP string) (string, error) {
	if node, ok := sb.ownerOf(ctx, callID); ok {
		var answer string
		err := sb.remote(ctx, node, rpcAccept, rpcRequest{AgentID: agentID, CallID: callID, SDP: offerSDP}, &answer)
		return answer, err
	}
	return sb.acceptLocal(ctx, agentID, callID, offerSDP)
}

// AgentHangup ends the call the agent is on.
func (sb *Switchboard) AgentHangup(agentID, callID string) error {
	return sb.onOwner(callID, rpcHangup, rpcRequest{AgentID: agentID, CallID: callID}, func() error { return sb.hangupLocal(agentID, callID) })
}

// AgentMute stops (or resumes) the agent's voice reaching the caller.
func (sb *Switchboard) AgentMute(agentID, callID string, muted bool) error {
	return sb.onOwner(callID, rpcMute, rpcRequest{AgentID: agentID, CallID: callID, On: muted}, func() error { return sb.muteLocal(agentID, callID, muted) })
}

// AgentHold puts the caller on hold (hold music, neither side hears the
// other) or takes them off it.
func (sb *Switchboard) AgentHold(agentID, callID string, hold bool) error {
	return sb.onOwner(callID, rpcHold, rpcRequest{AgentID: agentID, CallID: callID, On: hold}, func() error { return sb.holdLocal(agentID, callID, hold) })
}

// WrapUp stores the agent's disposition and notes for their last call and
// makes them available again.
func (sb *Switchboard) WrapUp(ctx context.Context, agentID, callID string, w WrapUp) error {
	if node, ok := sb.ownerOf(ctx, callID); ok {
		return sb.remote(ctx, node, rpcWrapUp, rpcRequest{AgentID: agentID, CallID: callID, WrapUp: &w}, nil)
	}
	return sb.wrapUpLocal(ctx, agentID, callID, w)
}

// SetAgentState sets an agent available or away (ending wrap-up: the node
// that held their last call forgets it).
func (sb *Switchboard) SetAgentState(agentID string, st escalation.AgentState) error {
	if a, ok := sb.desk.Agent(agentID); ok && a.State == escalation.AgentWrapUp && st == escalation.AgentAvailable && a.CallID != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if node, remote := sb.ownerOf(ctx, a.CallID); remote {
			if err := sb.remote(ctx, node, rpcRelease, rpcRequest{AgentID: agentID, CallID: a.CallID}, nil); err != nil {
				sb.opt.Log.Warn().Err(err).Msg("switchboard: the node of the agent's last call did not hear the wrap-up end")
			}
		}
		cancel()
	}
	return sb.setAgentStateLocal(agentID, st)
}

// release forgets the agent's last call (its wrap-up ended elsewhere).
func (sb *Switchboard) release(agentID, callID string) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.agentCalls[agentID] == callID {
		delete(sb.agentCalls, agentID)
	}
	if !sb.wrappingUp(callID) {
		delete(sb.lastCalls, callID)
	}
}

// Join connects a supervisor to a live call (on whichever node holds it)
// over WebRTC and returns the answer.
func (sb *Switchboard) Join(ctx context.Context, u parley.User, callID string, mode JoinMode, offerSDP string) (string, error) {
	if node, ok := sb.ownerOf(ctx, callID); ok {
		var answer string
		err := sb.remote(ctx, node, rpcJoin, rpcRequest{User: &u, CallID: callID, Mode: mode, SDP: offerSDP}, &answer)
		return answer, err
	}
	return sb.joinLocal(ctx, u, callID, mode, offerSDP)
}

// SetJoinMode switches a joined supervisor between listen, whisper and barge.
func (sb *Switchboard) SetJoinMode(userID, callID string, mode JoinMode) error {
	return sb.onOwner(callID, rpcJoinMode, rpcRequest{UserID: userID, CallID: callID, Mode: mode}, func() error { return sb.joinModeLocal(userID, callID, mode) })
}

// Leave disconnects a supervisor from a call.
func (sb *Switchboard) Leave(userID, callID string) error {
	return sb.onOwner(callID, rpcLeave, rpcRequest{UserID: userID, CallID: callID}, func() error { return sb.leaveLocal(userID, callID) })
}

// onOwner runs an operation on callID's node: here, or there over the bus.
func (sb *Switchboard) onOwner(callID, method string, r rpcRequest, local func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if node, ok := sb.ownerOf(ctx, callID); ok {
		return sb.remote(ctx, node, method, r, nil)
	}
	return local()
}
