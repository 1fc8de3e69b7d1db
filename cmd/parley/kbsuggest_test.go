package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog/kb"
)

func TestKBSuggestLearnsFromMisunderstoodTurns(t *testing.T) {
	ctx := context.Background()
	tc := &testCLI{dataDir: t.TempDir()}
	st := tc.open(t)
	now := time.Now().UTC().Add(-time.Hour)
	says := []struct {
		text string
		sig  parley.Signals
	}{
		{"does my card come with travel insurance", parley.Signals{NLUConfidence: 0.2}},
		{"is travel insurance included with my card", parley.Signals{OutOfScope: true}},
		{"how do I claim on the travel insurance", parley.Signals{NLUConfidence: 0.3}},
		{"I want to check my balance", parley.Signals{NLUConfidence: 0.95}}, // understood: not learned from
		{"the plastic never turned up", parley.Signals{NLUConfidence: 0.3}}, // corrected below
	}
	for i, s := range says {
		id := "CA-kb-" + string(rune('a'+i))
		if err := st.CreateCall(ctx, parley.Call{ID: id, Channel: parley.ChannelTwilio, From: "+1555000", StartedAt: now.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		sig := s.sig
		if err := st.AppendTurn(ctx, parley.Turn{CallID: id, Seq: 1, Speaker: parley.SpeakerCaller, Text: s.text, Start: now, End: now, Signals: &sig}); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := json.Marshal(map[string]any{"seq": 1, "text": "the plastic never turned up", "intent": "card_not_arrived", "by": "sam"})
	if err := st.AppendEvent(ctx, parley.Event{CallID: "CA-kb-e", At: now, Kind: "feedback", Data: data}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	if err := tc.cli("").kb(ctx, []string{"suggest"}); err != nil {
		t.Fatalf("kb suggest: %v (%s)", err, tc.stderr.String())
	}
	out := tc.stdout.String()
	if !strings.Contains(out, "5 calls, 4 requests to learn from") {
		t.Fatalf("header: %s", out)
	}
	var s kb.Suggestions
	if err := yaml.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, out)
	}
	if got := s.Examples["card_not_arrived"]; len(got) != 1 || got[0] != "the plastic never turned up" {
		t.Fatalf("examples %v", s.Examples)
	}
	if len(s.NewIntents) != 1 || len(s.NewIntents[0].Examples) != 3 || !strings.Contains(s.NewIntents[0].Name, "insurance") {
		t.Fatalf("new intents %+v\n%s", s.NewIntents, out)
	}
	if strings.Contains(out, "check my balance") {
		t.Fatal("an understood turn was proposed")
	}
}

// The running server beats its heart in the store and ends the calls a
// dead node left open, keeping their transcripts.
func TestServerReapsCallsOfADeadNode(t *testing.T) {
	ctx := context.Background()
	cl, ok := testServer.srv.base.(parley.Cluster)
	if !ok {
		t.Fatalf("store %T is no cluster", testServer.srv.base)
	}
	if err := testServer.srv.base.CreateCall(ctx, parley.Call{ID: "CA-dead-node", Channel: parley.ChannelTwilio, From: "+1555", StartedAt: time.Now().Add(-2 * time.Minute), Node: "dead-node"}); err != nil {
		t.Fatal(err)
	}
	if err := testServer.srv.base.AppendTurn(ctx, parley.Turn{CallID: "CA-dead-node", Seq: 1, Speaker: parley.SpeakerCaller, Text: "hello", Start: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Heartbeat(ctx, "dead-node", "10.9.9.9:8080", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * heartbeatEvery)
	for {
		c, err := testServer.srv.base.GetCall(ctx, "CA-dead-node")
		if err == nil && c.Outcome == parley.OutcomeDropped {
			if c.Reason != "node dead-node stopped" || len(c.Turns) != 1 {
				t.Fatalf("reaped call %+v", c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead node's call was not ended: %+v, %v", c, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	live, err := cl.Nodes(ctx, time.Now().Add(-nodeStaleAfter))
	if err != nil || live[testServer.srv.cfg.Node] == "" || live["dead-node"] != "" {
		t.Fatalf("live nodes %v (%v)", live, err)
	}
}
