package escalation

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeNow is a settable clock for the desk.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeNow) add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// recorder keeps the desk's events.
type recorder struct {
	mu  sync.Mutex
	evs []DeskEvent
	ch  chan DeskEvent
}

func newRecorder() *recorder { return &recorder{ch: make(chan DeskEvent, 100)} }

func (r *recorder) on(ev DeskEvent) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
	r.ch <- ev
}

// waitFor returns the next event of kind, failing after a while.
func (r *recorder) waitFor(t *testing.T, kind DeskEventKind) DeskEvent {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-r.ch:
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event", kind)
		}
	}
}

func newTestDesk(opt DeskOptions) (*Desk, *fakeNow, *recorder) {
	clk := &fakeNow{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	rec := newRecorder()
	opt.Now = clk.now
	opt.OnEvent = rec.on
	if opt.OfferTimeout == 0 {
		opt.OfferTimeout = time.Hour
	}
	return NewDesk(opt), clk, rec
}

func available(t *testing.T, d *Desk, clk *fakeNow, id string, skills ...string) {
	t.Helper()
	d.SignIn(id, "agent "+id, skills)
	clk.add(time.Second)
	if err := d.SetState(id, AgentAvailable); err != nil {
		t.Fatal(err)
	}
}

func TestDeskOffersToTheLongestIdleAgent(t *testing.T) {
	d, clk, rec := newTestDesk(DeskOptions{})
	available(t, d, clk, "b")
	available(t, d, clk, "a") // available after b
	if err := d.Enqueue(Request{CallID: "c1"}); err != nil {
		t.Fatal(err)
	}
	ev := rec.waitFor(t, DeskOffer)
	if ev.Agent.ID != "b" || ev.CallID != "c1" {
		t.Fatalf("offered %s to %s, want c1 to b (idle longest)", ev.CallID, ev.Agent.ID)
	}
	if w, ok := d.Offered("b"); !ok || w.CallID != "c1" {
		t.Fatalf("Offered(b) = %+v, %v", w, ok)
	}
	if _, err := d.Accept("a", "c1"); !errors.Is(err, ErrNoOffer) {
		t.Fatalf("another agent accepted: %v", err)
	}
	w, err := d.Accept("b", "c1")
	if err != nil || w.CallID != "c1" {
		t.Fatalf("accept: %+v %v", w, err)
	}
	if a, _ := d.Agent("b"); a.State != AgentBusy || a.CallID != "c1" {
		t.Fatalf("agent after accept: %+v", a)
	}
	if _, _, queued := d.Position("c1"); queued {
		t.Fatal("accepted call still queued")
	}
	d.Finish("b", 2*time.Minute)
	if a, _ := d.Agent("b"); a.State != AgentWrapUp {
		t.Fatalf("state after finish %s, want wrapup", a.State)
	}
	if err := d.SetState("b", AgentAvailable); err != nil {
		t.Fatal(err)
	}
}

func TestDeskSkillsAndPriority(t *testing.T) {
	d, clk, rec := newTestDesk(DeskOptions{SkillWait: time.Hour})
	// The fraud agent is on duty, wrapping up an earlier call.
	available(t, d, clk, "fraud", "fraud")
	if err := d.Enqueue(Request{CallID: "earlier"}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, DeskOffer)
	if _, err := d.Accept("fraud", "earlier"); err != nil {
		t.Fatal(err)
	}
	d.Finish("fraud", time.Minute)
	d.SignIn("general", "General agent", nil)
	// Two calls wait; nobody is available.
	if err := d.Enqueue(Request{CallID: "plain"}); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Second)
	if err := d.Enqueue(Request{CallID: "urgent", Skill: "fraud", Priority: true}); err != nil {
		t.Fatal(err)
	}
	if err := d.Enqueue(Request{CallID: "urgent"}); !errors.Is(err, ErrQueued) {
		t.Fatalf("double enqueue: %v", err)
	}
	if pos, _, _ := d.Position("urgent"); pos != 1 {
		t.Fatalf("priority call at position %d, want 1", pos)
	}
	// The general agent may not take the fraud call while a fraud agent
	// is on duty: they get the plain call.
	if err := d.SetState("general", AgentAvailable); err != nil {
		t.Fatal(err)
	}
	ev := rec.waitFor(t, DeskOffer)
	if ev.CallID != "plain" || ev.Agent.ID != "general" {
		t.Fatalf("offered %s to %s, want plain to general", ev.CallID, ev.Agent.ID)
	}
	if err := d.SetState("fraud", AgentAvailable); err != nil {
		t.Fatal(err)
	}
	ev = rec.waitFor(t, DeskOffer)
	if ev.CallID != "urgent" || ev.Agent.ID != "fraud" {
		t.Fatalf("offered %s to %s, want urgent to fraud", ev.CallID, ev.Agent.ID)
	}
}

func TestDeskSkillFallsBackWhenNobodyHasIt(t *testing.T) {
	d, clk, rec := newTestDesk(DeskOptions{})
	available(t, d, clk, "general")
	if err := d.Enqueue(Request{CallID: "c", Skill: "bereavement"}); err != nil {
		t.Fatal(err)
	}
	if ev := rec.waitFor(t, DeskOffer); ev.Agent.ID != "general" {
		t.Fatalf("offered to %s", ev.Agent.ID)
	}
}

func TestDeskSkillWaitEnds(t *testing.T) {
	d, clk, rec := newTestDesk(DeskOptions{SkillWait: 50 * time.Millisecond})
	d.SignIn("cards", "Cards agent", []string{"cards"}) // on duty but away? no: busy below
	if err := d.SetState("cards", AgentAvailable); err != nil {
		t.Fatal(err)
	}
	if err := d.Enqueue(Request{CallID: "first", Skill: "cards"}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, DeskOffer)
	if _, err := d.Accept("cards", "first"); err != nil {
		t.Fatal(err)
	}
	available(t, d, clk, "general")
	if err := d.Enqueue(Request{CallID: "second", Skill: "cards"}); err != nil {
		t.Fatal(err)
	}
	// The cards agent is busy: the call waits for them for SkillWait, then
	// any agent may take it.
	clk.add(time.Second)
	rec.waitFor(t, DeskSkillWait)
	if ev := rec.waitFor(t, DeskOffer); ev.CallID != "second" || ev.Agent.ID != "general" {
		t.Fatalf("offered %s to %s", ev.CallID, ev.Agent.ID)
	}
}

func TestDeskDeclineAndMissedOffersMoveOn(t *testing.T) {
	d, clk, rec := newTestDesk(DeskOptions{OfferTimeout: 30 * time.Millisecond})
	available(t, d, clk, "a")
	available(t, d, clk, "b")
	if err := d.Enqueue(Request{CallID: "c"}); err != nil {
		t.Fatal(err)
	}
	if ev := rec.waitFor(t, DeskOffer); ev.Agent.ID != "a" {
		t.Fatalf("first offer to %s", ev.Agent.ID)
	}
	if err := d.Decline("a", "c"); err != nil {
		t.Fatal(err)
	}
	if ev := rec.waitFor(t, DeskWithdrawn); ev.Why != "declined" || ev.Agent.ID != "a" {
		t.Fatalf("withdrawn %+v", ev)
	}
	if ev := rec.waitFor(t, DeskOffer); ev.Agent.ID != "b" {
		t.Fatalf("second offer to %s", ev.Agent.ID)
	}
	// b does not answer: the offer times out, b goes away, and a (who
	// declined this call) is not asked again.
	if ev := rec.waitFor(t, DeskWithdrawn); ev.Why != "missed" || ev.Agent.ID != "b" {
		t.Fatalf("withdrawn %+v", ev)
	}
	if a, _ := d.Agent("b"); a.State != AgentAway {
		t.Fatalf("b after missing an offer: %s", a.State)
	}
	if a, _ := d.Agent("a"); a.State != AgentAvailable {
		t.Fatalf("a after declining: %s", a.State)
	}
	if _, ok := d.Offered("a"); ok {
		t.Fatal("the call went back to the agent who declined it")
	}
	_, q := d.Snapshot()
	if len(q) != 1 || len(q[0].Declined) != 2 {
		t.Fatalf("queue %+v", q)
	}
	// A new agent takes it.
	available(t, d, clk, "c")
	if ev := rec.waitFor(t, DeskOffer); ev.Agent.ID != "c" {
		t.Fatalf("third offer to %s", ev.Agent.ID)
	}
}

func TestDeskCancelAndSignOutWithdrawOffers(t *testing.T) {
	d, clk, rec := newTestDesk(DeskOptions{})
	available(t, d, clk, "a")
	if err := d.Enqueue(Request{CallID: "c"}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, DeskOffer)
	if !d.Cancel("c") {
		t.Fatal("cancel: not queued")
	}
	if ev := rec.waitFor(t, DeskWithdrawn); ev.Why != "cancelled" {
		t.Fatalf("withdrawn %+v", ev)
	}
	if a, _ := d.Agent("a"); a.State != AgentAvailable || a.CallID != "" {
		t.Fatalf("agent after cancel: %+v", a)
	}
	if d.Cancel("c") {
		t.Fatal("cancelled twice")
	}
	if err := d.Enqueue(Request{CallID: "d"}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, DeskOffer)
	d.SignOut("a")
	if ev := rec.waitFor(t, DeskWithdrawn); ev.Why != "signed_out" {
		t.Fatalf("withdrawn %+v", ev)
	}
	if _, ok := d.Agent("a"); ok {
		t.Fatal("signed-out agent still on the desk")
	}
	if d.Staffed() {
		t.Fatal("desk staffed with nobody on it")
	}
	if pos, _, ok := d.Position("d"); !ok || pos != 1 {
		t.Fatalf("call d lost: %d %v", pos, ok)
	}
}

func TestDeskRequeueGoesFirstAndSkipsTheLostAgent(t *testing.T) {
	d, clk, rec := newTestDesk(DeskOptions{})
	d.SignIn("a", "A", nil)
	d.SignIn("b", "B", nil)
	if err := d.Enqueue(Request{CallID: "waiting"}); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Second)
	if err := d.Requeue(Request{CallID: "dropped"}, "a"); err != nil {
		t.Fatal(err)
	}
	if pos, _, _ := d.Position("dropped"); pos != 1 {
		t.Fatalf("re-queued call at %d", pos)
	}
	if err := d.SetState("a", AgentAvailable); err != nil {
		t.Fatal(err)
	}
	if ev := rec.waitFor(t, DeskOffer); ev.CallID != "waiting" {
		t.Fatalf("agent a was offered %s, the call they lost", ev.CallID)
	}
	if err := d.SetState("b", AgentAvailable); err != nil {
		t.Fatal(err)
	}
	if ev := rec.waitFor(t, DeskOffer); ev.CallID != "dropped" || ev.Agent.ID != "b" {
		t.Fatalf("offered %s to %s", ev.CallID, ev.Agent.ID)
	}
}

func TestDeskStateRulesAndEstimates(t *testing.T) {
	d, clk, _ := newTestDesk(DeskOptions{DefaultHandle: 2 * time.Minute})
	if err := d.SetState("ghost", AgentAvailable); !errors.Is(err, ErrUnknownAgent) {
		t.Fatalf("unknown agent: %v", err)
	}
	d.SignIn("a", "A", nil)
	if err := d.SetState("a", AgentBusy); !errors.Is(err, ErrBadState) {
		t.Fatalf("set busy by hand: %v", err)
	}
	for i, id := range []string{"q1", "q2", "q3"} {
		if err := d.Enqueue(Request{CallID: id}); err != nil {
			t.Fatal(err)
		}
		clk.add(time.Duration(i+1) * time.Second)
	}
	// One agent on duty (away agents do not count): the third call waits
	// for three handle times; with nobody on duty it is the same.
	if _, w, _ := d.Position("q3"); w != 6*time.Minute {
		t.Fatalf("estimate %v", w)
	}
	d.SignIn("b", "B", nil)
	_ = d.SetState("a", AgentAvailable) // takes q1 (offered)
	_ = d.SetState("b", AgentAvailable) // takes q2
	if !d.Staffed() {
		t.Fatal("not staffed")
	}
	if pos, w, _ := d.Position("q3"); pos != 3 || w != 4*time.Minute {
		t.Fatalf("q3 at %d waits %v, want 3 and 4m (two agents)", pos, w)
	}
	if _, err := d.Accept("a", "q1"); err != nil {
		t.Fatal(err)
	}
	d.Finish("a", 4*time.Minute)
	if pos, w, _ := d.Position("q3"); pos != 2 || w != 4*time.Minute {
		t.Fatalf("q3 at %d waits %v after a 4-minute call", pos, w)
	}
	// An agent who signs out during a call leaves the desk when it ends.
	if _, err := d.Accept("b", "q2"); err != nil {
		t.Fatal(err)
	}
	d.SignOut("b")
	if a, ok := d.Agent("b"); !ok || a.State != AgentBusy {
		t.Fatalf("busy agent removed mid-call: %+v %v", a, ok)
	}
	d.Finish("b", time.Minute)
	if _, ok := d.Agent("b"); ok {
		t.Fatal("agent who signed out stayed on the desk")
	}
}
