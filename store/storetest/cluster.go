package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/parley-ai/parley"
)

// contractCluster: the calls a node left open when its heart stopped are
// ended as dropped by another node, with their transcripts kept; live
// nodes' calls are untouched.
func contractCluster(t *testing.T, s parley.Store) {
	cl, ok := s.(parley.Cluster)
	if !ok {
		t.Fatalf("%T does not implement parley.Cluster", s)
	}
	ctx := context.Background()
	for _, c := range []parley.Call{
		{ID: "CA-a-open", Channel: parley.ChannelTwilio, From: "+1", StartedAt: at(0), Node: "node-a"},
		{ID: "CA-a-done", Channel: parley.ChannelTwilio, From: "+1", StartedAt: at(0), Node: "node-a"},
		{ID: "CA-b-open", Channel: parley.ChannelTwilio, From: "+2", StartedAt: at(0), Node: "node-b"},
	} {
		if err := s.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendTurn(ctx, parley.Turn{CallID: "CA-a-open", Seq: 1, Speaker: parley.SpeakerCaller, Text: "my card is gone", Start: at(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := s.EndCall(ctx, "CA-a-done", at(time.Minute), parley.OutcomeResolved, "caller_hangup"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Heartbeat(ctx, "", "x", at(0)); err == nil {
		t.Fatal("heartbeat of an unnamed node accepted")
	}
	if err := cl.Heartbeat(ctx, "node-a", "10.0.0.1:8080", at(0)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Heartbeat(ctx, "node-b", "10.0.0.2:8080", at(0)); err != nil {
		t.Fatal(err)
	}
	// node-b keeps beating; node-a has gone quiet.
	if err := cl.Heartbeat(ctx, "node-b", "10.0.0.2:8080", at(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	live, err := cl.Nodes(ctx, at(20*time.Second))
	if err != nil || !reflect.DeepEqual(live, map[string]string{"node-b": "10.0.0.2:8080"}) {
		t.Fatalf("Nodes = %v, %v", live, err)
	}
	dead, n, err := cl.ReapNodes(ctx, at(20*time.Second), at(31*time.Second))
	if err != nil || n != 1 || !reflect.DeepEqual(dead, []string{"node-a"}) {
		t.Fatalf("ReapNodes = %v, %d, %v; want [node-a], 1", dead, n, err)
	}
	c, err := s.GetCall(ctx, "CA-a-open")
	if err != nil || c.Outcome != parley.OutcomeDropped || c.Reason != "node node-a stopped" || !c.EndedAt.Equal(at(31*time.Second).Truncate(time.Millisecond)) ||
		len(c.Turns) != 1 || c.Node != "node-a" {
		t.Fatalf("call of the dead node: %+v, %v", c, err)
	}
	if c, _ := s.GetCall(ctx, "CA-a-done"); c.Outcome != parley.OutcomeResolved {
		t.Fatalf("an ended call was touched: %+v", c)
	}
	if c, _ := s.GetCall(ctx, "CA-b-open"); !c.EndedAt.IsZero() {
		t.Fatalf("a live node's call was ended: %+v", c)
	}
	if dead, n, err := cl.ReapNodes(ctx, at(20*time.Second), at(32*time.Second)); err != nil || n != 0 || len(dead) != 0 {
		t.Fatalf("second reap = %v, %d, %v", dead, n, err)
	}
	// A node restarting ends what its previous run left open.
	if n, err := cl.EndNodeCalls(ctx, "node-b", at(40*time.Second), "node restarted"); err != nil || n != 1 {
		t.Fatalf("EndNodeCalls = %d, %v", n, err)
	}
}
