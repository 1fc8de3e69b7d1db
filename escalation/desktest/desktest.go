// Package desktest is the contract every escalation.Router must meet: the
// in-memory escalation.Desk and store/postgres's desk shared by several
// nodes run the same scenarios.
package desktest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-ai/parley/escalation"
)

// Factory returns n routers that share one desk (the nodes of a cluster;
// an in-memory desk returns itself n times), made with opt. A node reads
// its own changes at once and the other nodes' once their events reach it.
type Factory func(t *testing.T, n int, opt escalation.DeskOptions) []escalation.Router

// Run runs the contract.
func Run(t *testing.T, f Factory) {
	t.Run("RoutesToLongestIdleAndMovesOnWhenDeclined", func(t *testing.T) { routing(t, f) })
	t.Run("MissedOfferSetsAgentAway", func(t *testing.T) { missed(t, f) })
	t.Run("CancelAndSignOutWithdrawOffers", func(t *testing.T) { cancelAndSignOut(t, f) })
	t.Run("EachCallTakenExactlyOnceUnderConcurrentAgents", func(t *testing.T) { exactlyOnce(t, f) })
}

// eventually polls cond until it holds, failing the test after limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func offeredTo(r escalation.Router, agent, call string) func() bool {
	return func() bool {
		w, ok := r.Offered(agent)
		return ok && w.CallID == call
	}
}

func routing(t *testing.T, f Factory) {
	rs := f(t, 2, escalation.DeskOptions{OfferTimeout: time.Minute})
	a, b := rs[0], rs[1]
	a.SignIn("r-old", "Olive", []string{"cards"})
	b.SignIn("r-new", "Noor", nil)
	if err := a.SetState("r-old", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // r-old is idle longer
	if err := b.SetState("r-new", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	if err := b.Enqueue(escalation.Request{CallID: "r-c1", From: "+1555", Node: "n-b"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Enqueue(escalation.Request{CallID: "r-c1"}); err == nil {
		t.Fatal("a call queued twice")
	}
	eventually(t, 10*time.Second, "offer to the longest-idle agent", offeredTo(a, "r-old", "r-c1"))
	w, _ := a.Offered("r-old")
	if w.Node != "n-b" || w.From != "+1555" {
		t.Fatalf("offered %+v", w)
	}
	if _, err := b.Accept("r-new", "r-c1"); err == nil {
		t.Fatal("an agent accepted a call offered to another")
	}
	if err := b.Decline("r-old", "r-c1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "offer to the next agent", offeredTo(b, "r-new", "r-c1"))
	eventually(t, 10*time.Second, "the decliner available again", func() bool {
		ag, ok := b.Agent("r-old")
		return ok && ag.State == escalation.AgentAvailable
	})
	got, err := a.Accept("r-new", "r-c1")
	if err != nil || got.CallID != "r-c1" || len(got.Declined) != 1 || got.Declined[0] != "r-old" {
		t.Fatalf("accept: %+v %v", got, err)
	}
	eventually(t, 10*time.Second, "the queue empty and the agent busy everywhere", func() bool {
		_, q := b.Snapshot()
		ag, _ := b.Agent("r-new")
		return len(q) == 0 && ag.State == escalation.AgentBusy && ag.CallID == "r-c1" && ag.Handled == 1
	})
	if err := a.SetState("r-new", escalation.AgentAway); err == nil {
		t.Fatal("a busy agent set themself away")
	}
	b.Finish("r-new", 90*time.Second)
	eventually(t, 10*time.Second, "wrap-up", func() bool { ag, _ := a.Agent("r-new"); return ag.State == escalation.AgentWrapUp })
	if err := a.SetState("r-new", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	// The measured handle time drives the estimate: 2 calls ahead of the
	// third, two agents on duty, 90 s each.
	for _, id := range []string{"r-c2", "r-c3", "r-c4"} {
		if err := a.SetState("r-old", escalation.AgentAway); err != nil {
			t.Fatal(err)
		}
		if err := b.SetState("r-new", escalation.AgentAway); err != nil {
			t.Fatal(err)
		}
		if err := a.Enqueue(escalation.Request{CallID: id}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "three queued", func() bool { _, q := b.Snapshot(); return len(q) == 3 })
	pos, wait, ok := b.Position("r-c3")
	if !ok || pos != 2 || wait != 2*90*time.Second {
		t.Fatalf("position %d wait %v ok %v (want 2, 3m0s: nobody on duty)", pos, wait, ok)
	}
	if b.Staffed() {
		t.Fatal("staffed with every agent away")
	}
	for _, id := range []string{"r-c2", "r-c3", "r-c4"} {
		if !a.Cancel(id) {
			t.Fatalf("cancel %s", id)
		}
	}
	if a.Cancel("r-c2") {
		t.Fatal("cancelled twice")
	}
	a.SignOut("r-old")
	b.SignOut("r-new")
	eventually(t, 10*time.Second, "desk empty", func() bool { ags, q := a.Snapshot(); return len(ags) == 0 && len(q) == 0 })
}

func missed(t *testing.T, f Factory) {
	rs := f(t, 2, escalation.DeskOptions{OfferTimeout: 300 * time.Millisecond})
	a, b := rs[0], rs[1]
	a.SignIn("m-slow", "Slow", nil)
	if err := a.SetState("m-slow", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	if err := b.Enqueue(escalation.Request{CallID: "m-c1"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "offer", offeredTo(a, "m-slow", "m-c1"))
	eventually(t, 20*time.Second, "missed offer sets the agent away", func() bool {
		ag, _ := b.Agent("m-slow")
		_, q := b.Snapshot()
		return ag.State == escalation.AgentAway && len(q) == 1 && q[0].OfferedTo == "" && len(q[0].Declined) == 1
	})
	b.SignIn("m-next", "Next", nil)
	if err := b.SetState("m-next", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "offer to the next agent", offeredTo(a, "m-next", "m-c1"))
	if _, err := a.Accept("m-next", "m-c1"); err != nil {
		t.Fatal(err)
	}
	b.Finish("m-next", 0)
	a.SignOut("m-slow")
	a.SignOut("m-next")
}

func cancelAndSignOut(t *testing.T, f Factory) {
	rs := f(t, 2, escalation.DeskOptions{OfferTimeout: time.Minute})
	a, b := rs[0], rs[1]
	a.SignIn("s-1", "One", nil)
	_ = a.SetState("s-1", escalation.AgentAvailable)
	if err := b.Enqueue(escalation.Request{CallID: "s-c1"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "offer", offeredTo(b, "s-1", "s-c1"))
	if !b.Cancel("s-c1") {
		t.Fatal("cancel")
	}
	eventually(t, 10*time.Second, "agent available after the caller left", func() bool {
		ag, _ := a.Agent("s-1")
		_, off := a.Offered("s-1")
		return ag.State == escalation.AgentAvailable && !off
	})
	if err := b.Enqueue(escalation.Request{CallID: "s-c2"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "offer", offeredTo(b, "s-1", "s-c2"))
	b.SignIn("s-2", "Two", nil)
	_ = b.SetState("s-2", escalation.AgentAvailable)
	a.SignOut("s-1")
	eventually(t, 10*time.Second, "the call goes to the agent still on duty", offeredTo(a, "s-2", "s-c2"))
	// Other nodes see a change once its event reaches them.
	eventually(t, 10*time.Second, "the signed-out agent gone from every node", func() bool {
		_, ok := b.Agent("s-1")
		return !ok
	})
	b.Cancel("s-c2")
	b.SignOut("s-2")
}

// exactlyOnce runs agents on every node that accept (or now and then
// decline) whatever they are offered while calls keep arriving on every
// node: every call must be taken by exactly one agent, and no agent may
// hold two calls.
func exactlyOnce(t *testing.T, f Factory) {
	const agents, calls = 8, 60
	rs := f(t, 2, escalation.DeskOptions{OfferTimeout: time.Minute})
	var taken sync.Map // call -> agent
	var dup atomic.Int32
	var busy sync.Map // agent -> call being handled
	var accepted atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range agents {
		r := rs[i%len(rs)]
		id := fmt.Sprintf("x-agent-%d", i)
		r.SignIn(id, id, nil)
		if err := r.SetState(id, escalation.AgentAvailable); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Agents race: each tries the call offered to anyone on
				// its own node now and then, not only its own.
				w, ok := r.Offered(id)
				if !ok {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				if rng.IntN(5) == 0 {
					_ = r.Decline(id, w.CallID)
					continue
				}
				if _, err := r.Accept(id, w.CallID); err != nil {
					continue
				}
				if prev, loaded := busy.LoadOrStore(id, w.CallID); loaded {
					t.Errorf("%s accepted %s while on %v", id, w.CallID, prev)
				}
				if _, loaded := taken.LoadOrStore(w.CallID, id); loaded {
					dup.Add(1)
				}
				accepted.Add(1)
				busy.Delete(id)
				r.Finish(id, time.Second)
				_ = r.SetState(id, escalation.AgentAvailable)
			}
		}()
	}
	// A rival on each node tries to take every offered call for the wrong
	// agent and to accept calls twice.
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, q := r.Snapshot()
				for _, w := range q {
					if w.OfferedTo != "" {
						if _, err := r.Accept("x-agent-intruder", w.CallID); err == nil {
							t.Errorf("an agent not offered %s took it", w.CallID)
						}
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	var enq sync.WaitGroup
	for n, r := range rs {
		enq.Add(1)
		go func() {
			defer enq.Done()
			for i := n; i < calls; i += len(rs) {
				if err := r.Enqueue(escalation.Request{CallID: fmt.Sprintf("x-call-%02d", i), Priority: i%7 == 0}); err != nil {
					t.Errorf("enqueue: %v", err)
				}
			}
		}()
	}
	enq.Wait()
	deadline := time.Now().Add(90 * time.Second)
	for accepted.Load() < calls && time.Now().Before(deadline) && !t.Failed() {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if dup.Load() != 0 {
		t.Fatalf("%d calls were taken twice", dup.Load())
	}
	n := 0
	taken.Range(func(_, _ any) bool { n++; return true })
	if n != calls || accepted.Load() != calls {
		t.Fatalf("%d distinct calls taken, %d accepts, of %d", n, accepted.Load(), calls)
	}
	eventually(t, 10*time.Second, "the queue empty on every node", func() bool {
		for _, r := range rs {
			if _, q := r.Snapshot(); len(q) != 0 {
				return false
			}
		}
		return true
	})
	for i := range agents {
		rs[0].SignOut(fmt.Sprintf("x-agent-%d", i))
	}
}
