package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/escalation"
	"github.com/parley-ai/parley/escalation/desktest"
)

// nodes opens n stores on one fresh database, each with its bus, as n
// parley nodes would.
func nodes(t testing.TB, n int) ([]*Store, []*Bus) {
	t.Helper()
	url := freshDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stores []*Store
	var buses []*Bus
	for i := range n {
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Bus(ctx, fmt.Sprintf("node-%c", 'a'+i))
		if err != nil {
			t.Fatal(err)
		}
		stores, buses = append(stores, s), append(buses, b)
		t.Cleanup(func() { b.Close(); s.Close() })
	}
	return stores, buses
}

func TestDeskContract(t *testing.T) {
	desktest.Run(t, func(t *testing.T, n int, opt escalation.DeskOptions) []escalation.Router {
		stores, buses := nodes(t, n)
		rs := make([]escalation.Router, n)
		for i := range stores {
			d := stores[i].NewDesk(buses[i], opt, func(what string, err error) { t.Errorf("%s: %v", what, err) })
			t.Cleanup(d.Close)
			rs[i] = d
		}
		return rs
	})
}

// Every node hears every desk change, including those made by others.
func TestDeskEventsReachEveryNode(t *testing.T) {
	stores, buses := nodes(t, 2)
	var mu sync.Mutex
	heard := map[int][]escalation.DeskEventKind{}
	var ds []*Desk
	for i := range stores {
		d := stores[i].NewDesk(buses[i], escalation.DeskOptions{OnEvent: func(ev escalation.DeskEvent) {
			mu.Lock()
			heard[i] = append(heard[i], ev.Kind)
			mu.Unlock()
		}}, nil)
		t.Cleanup(d.Close)
		ds = append(ds, d)
	}
	ds[0].SignIn("ev-1", "Eve", nil)
	if err := ds[0].SetState("ev-1", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	if err := ds[1].Enqueue(escalation.Request{CallID: "ev-c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ds[1].Accept("ev-1", "ev-c"); err != nil && !errors.Is(err, escalation.ErrNoOffer) {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		ok := true
		for i := range ds {
			if !containsAll(heard[i], escalation.DeskAgent, escalation.DeskQueue, escalation.DeskOffer) {
				ok = false
			}
		}
		got := fmt.Sprint(heard)
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events heard per node: %s", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsAll(got []escalation.DeskEventKind, want ...escalation.DeskEventKind) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}

func TestBusPublishAndRequest(t *testing.T) {
	_, buses := nodes(t, 2)
	a, b := buses[0], buses[1]
	got := make(chan string, 4)
	b.Subscribe("live", func(from string, body []byte) { got <- from + ":" + string(body) })
	a.Subscribe("live", func(from string, body []byte) { got <- "self-delivered" })
	big := bytes.Repeat([]byte("x"), 3*inlineMax) // through bus_messages
	b.Handle("echo", func(ctx context.Context, from string, body []byte) ([]byte, error) {
		if string(body) == "fail" {
			return nil, errors.New("refused")
		}
		return append([]byte(from+">"), body...), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Publish(ctx, "live", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "live", big); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"node-a:hello", "node-a:" + string(big)} {
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("got %.40q…, want %.40q…", g, want)
			}
		case <-ctx.Done():
			t.Fatal("publication not delivered")
		}
	}
	rep, err := a.Request(ctx, "node-b", "echo", big)
	if err != nil || !bytes.Equal(rep, append([]byte("node-a>"), big...)) {
		t.Fatalf("echo: %d bytes, %v", len(rep), err)
	}
	if _, err := a.Request(ctx, "node-b", "echo", []byte("fail")); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("handler error: %v", err)
	}
	if _, err := a.Request(ctx, "node-b", "nobody", nil); err == nil {
		t.Fatal("request to an unknown method answered")
	}
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if _, err := a.Request(short, "node-gone", "echo", nil); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("request to a dead node: %v", err)
	}
	select {
	case g := <-got:
		t.Fatalf("a node heard its own publication: %q", g)
	case <-time.After(100 * time.Millisecond):
	}
}

// A dead node's agents and queued calls leave the shared desk.
func TestReapTakesADeadNodeOffTheDesk(t *testing.T) {
	stores, buses := nodes(t, 2)
	ctx := context.Background()
	live := stores[0].NewDesk(buses[0], escalation.DeskOptions{}, nil)
	t.Cleanup(live.Close)
	dead := stores[1].NewDesk(buses[1], escalation.DeskOptions{}, nil)
	t.Cleanup(dead.Close)
	if err := stores[1].CreateCall(ctx, parley.Call{ID: "rp-c", Channel: parley.ChannelTwilio, StartedAt: time.Now(), Node: "node-b"}); err != nil {
		t.Fatal(err)
	}
	live.SignIn("rp-live", "Live", nil)
	dead.SignIn("rp-dead", "Dead", nil)
	// An agent whose console is on the dead node is on a call held by the
	// live node: they stay on it and keep it when their console reconnects.
	dead.SignIn("rp-moving", "Moving", nil)
	if err := dead.SetState("rp-moving", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	if err := live.Enqueue(escalation.Request{CallID: "rp-other", Node: "node-a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Accept("rp-moving", "rp-other"); err != nil {
		t.Fatal(err)
	}
	if err := dead.Enqueue(escalation.Request{CallID: "rp-c"}); err != nil {
		t.Fatal(err)
	}
	if err := live.SetState("rp-live", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	if _, ok := live.Offered("rp-live"); !ok {
		t.Fatal("no offer")
	}
	for i, n := range []string{"node-a", "node-b"} {
		at := time.Now()
		if i == 1 {
			at = at.Add(-time.Hour)
		}
		if err := stores[0].Heartbeat(ctx, n, "", at); err != nil {
			t.Fatal(err)
		}
	}
	gone, _, err := stores[0].ReapNodes(ctx, time.Now().Add(-time.Minute), time.Now())
	if err != nil || len(gone) != 1 || gone[0] != "node-b" {
		t.Fatalf("reaped %v %v", gone, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		agents, q := live.Snapshot()
		if len(q) == 0 && len(agents) == 2 && agents[0].ID == "rp-live" && agents[0].State == escalation.AgentAvailable &&
			agents[1].ID == "rp-moving" && agents[1].State == escalation.AgentBusy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("desk after the reap: %+v %+v", agents, q)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The moving agent's console reconnects to the live node: same call.
	if a := live.SignIn("rp-moving", "Moving", nil); a.State != escalation.AgentBusy || a.CallID != "rp-other" {
		t.Fatalf("after moving: %+v", a)
	}
	live.Finish("rp-moving", time.Minute)
	if a, ok := live.Agent("rp-moving"); !ok || a.State != escalation.AgentWrapUp {
		t.Fatalf("after the call, the moved agent: %+v %v (want wrap-up, still on the desk)", a, ok)
	}
}

// BenchmarkDeskCrossNodeCycle measures one call's way through the shared
// desk: queued on node B, offered to an agent whose console is on node A
// (seen in A's copy), accepted on A, finished and the agent available again.
func BenchmarkDeskCrossNodeCycle(b *testing.B) {
	stores, buses := nodes(b, 2)
	a := stores[0].NewDesk(buses[0], escalation.DeskOptions{OfferTimeout: time.Minute}, nil)
	defer a.Close()
	bn := stores[1].NewDesk(buses[1], escalation.DeskOptions{OfferTimeout: time.Minute}, nil)
	defer bn.Close()
	a.SignIn("bench-agent", "Bench", nil)
	if err := a.SetState("bench-agent", escalation.AgentAvailable); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("bench-call-%d", i)
		if err := bn.Enqueue(escalation.Request{CallID: id, Node: "node-b"}); err != nil {
			b.Fatal(err)
		}
		for {
			if w, ok := a.Offered("bench-agent"); ok && w.CallID == id {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		if _, err := a.Accept("bench-agent", id); err != nil {
			b.Fatal(err)
		}
		a.Finish("bench-agent", time.Second)
		if err := a.SetState("bench-agent", escalation.AgentAvailable); err != nil {
			b.Fatal(err)
		}
	}
}

// A console that moved to another node is not signed out by the node it
// left (whose grace period for the closed stream ends later).
func TestSignOutByTheNodeAnAgentLeftKeepsThem(t *testing.T) {
	stores, buses := nodes(t, 2)
	a := stores[0].NewDesk(buses[0], escalation.DeskOptions{}, nil)
	t.Cleanup(a.Close)
	b := stores[1].NewDesk(buses[1], escalation.DeskOptions{}, nil)
	t.Cleanup(b.Close)
	a.SignIn("mv", "Mover", nil)
	if err := a.SetState("mv", escalation.AgentAvailable); err != nil {
		t.Fatal(err)
	}
	b.SignIn("mv", "Mover", nil) // the console reconnected to node B
	a.SignOut("mv")              // node A's grace for the old stream ends
	if ag, ok := b.Agent("mv"); !ok || ag.State != escalation.AgentAvailable {
		t.Fatalf("after the old node signed them out: %+v %v", ag, ok)
	}
	b.SignOut("mv")
	if _, ok := b.Agent("mv"); ok {
		t.Fatal("the node the agent is on could not sign them out")
	}
}
