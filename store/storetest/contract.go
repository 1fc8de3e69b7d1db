package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store"
)

// Contract checks that the stores made by open behave as the package
// documentation says every parley.Store must. Each subtest calls open for
// a new, empty store and closes it when the subtest ends, before any
// cleanup open registered (dropping a test database, say) runs.
//
// Backends run it from their tests:
//
//	func TestContract(t *testing.T) {
//		store.Contract(t, func(t *testing.T) parley.Store { return openTestStore(t) })
//	}
func Contract(t *testing.T, open func(t *testing.T) parley.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s parley.Store)
	}{
		{"CreateAndGetCall", contractCreateAndGet},
		{"CreateCallRejects", contractCreateRejects},
		{"EndCall", contractEndCall},
		{"TurnsRoundTrip", contractTurnsRoundTrip},
		{"AppendTurnRejects", contractAppendTurnRejects},
		{"Events", contractEvents},
		{"ListCallsFilters", contractListFilters},
		{"ListCallsPaging", contractListPaging},
		{"ListCallsDefaultLimit", contractListDefaultLimit},
		{"ConcurrentWrites", contractConcurrent},
		{"CanceledContext", contractCanceled},
		{"WriteBatch", contractWriteBatch},
		{"ForgetNumber", contractForgetNumber},
		{"ForgetBefore", contractForgetBefore},
		{"Cluster", contractCluster},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.run(t, s)
		})
	}
}

// contractT0 has sub-millisecond digits and a non-UTC zone on purpose: the
// stores must give it back truncated to the millisecond, in UTC.
var contractT0 = time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.FixedZone("CET", 3600))

func at(d time.Duration) time.Time { return contractT0.Add(d) }

func contractCreateAndGet(t *testing.T, s parley.Store) {
	ctx := context.Background()
	tests := []struct {
		name string
		call parley.Call
	}{
		{"minimal", parley.Call{ID: "CA-min", Channel: parley.ChannelTwilio, StartedAt: at(0)}},
		{"numbers", parley.Call{ID: "CA-num", Channel: parley.ChannelTwilio, From: "+15551230001", To: "+15559870000", StartedAt: at(time.Second)}},
		{"webrtc identity", parley.Call{ID: "web-ünïcode-1", Channel: parley.ChannelWebRTC, From: "agent@example.com", StartedAt: at(2 * time.Second)}},
		{"finished import", parley.Call{ID: "CA-done", Channel: parley.ChannelTwilio, From: "+1", To: "+2",
			StartedAt: at(3 * time.Second), EndedAt: at(5 * time.Minute), Outcome: parley.OutcomeEscalated, Reason: "asked for a human"}},
		{"with turns", parley.Call{ID: "CA-turns", Channel: parley.ChannelTwilio, StartedAt: at(4 * time.Second), Turns: []parley.Turn{
			{Seq: 0, Speaker: parley.SpeakerAI, Text: "Hello, how can I help?", Start: at(4 * time.Second), End: at(6 * time.Second)},
			{CallID: "CA-turns", Seq: 1, Speaker: parley.SpeakerCaller, Text: "My card.", Start: at(7 * time.Second), End: at(8 * time.Second),
				Signals: &parley.Signals{Intent: "card", ASRConfidence: 0.5}},
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.CreateCall(ctx, tc.call); err != nil {
				t.Fatalf("CreateCall: %v", err)
			}
			got, err := s.GetCall(ctx, tc.call.ID)
			if err != nil {
				t.Fatalf("GetCall: %v", err)
			}
			want := stored(tc.call)
			for i := range want.Turns {
				want.Turns[i].CallID = tc.call.ID
			}
			checkCall(t, got, want)
		})
	}
	t.Run("not found", func(t *testing.T) {
		_, err := s.GetCall(ctx, "CA-nobody")
		if !errors.Is(err, parley.ErrNotFound) {
			t.Fatalf("GetCall(unknown) = %v, want ErrNotFound", err)
		}
	})
}

func contractCreateRejects(t *testing.T, s parley.Store) {
	ctx := context.Background()
	orig := parley.Call{ID: "CA-1", Channel: parley.ChannelTwilio, From: "+1", StartedAt: at(0)}
	mustCreate(t, s, orig)
	tests := []struct {
		name    string
		call    parley.Call
		wantErr error // nil: any error
	}{
		{"empty id", parley.Call{Channel: parley.ChannelTwilio, StartedAt: at(0)}, nil},
		{"no start time", parley.Call{ID: "CA-2", Channel: parley.ChannelTwilio}, nil},
		{"duplicate id", parley.Call{ID: "CA-1", Channel: parley.ChannelWebRTC, From: "+9", StartedAt: at(time.Hour)}, store.ErrDuplicate},
		{"turn of another call", parley.Call{ID: "CA-3", Channel: parley.ChannelTwilio, StartedAt: at(0),
			Turns: []parley.Turn{{CallID: "CA-1", Seq: 0, Speaker: parley.SpeakerAI}}}, nil},
		{"duplicate seq in turns", parley.Call{ID: "CA-4", Channel: parley.ChannelTwilio, StartedAt: at(0),
			Turns: []parley.Turn{{Seq: 0, Speaker: parley.SpeakerAI}, {Seq: 0, Speaker: parley.SpeakerCaller}}}, store.ErrDuplicate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CreateCall(ctx, tc.call)
			if err == nil {
				t.Fatalf("CreateCall(%+v) = nil, want an error", tc.call)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("CreateCall error %v does not wrap %v", err, tc.wantErr)
			}
			if tc.call.ID != "" && tc.call.ID != orig.ID {
				// A rejected call leaves nothing behind, not even half of it.
				if _, err := s.GetCall(ctx, tc.call.ID); !errors.Is(err, parley.ErrNotFound) {
					t.Fatalf("after rejected CreateCall, GetCall = %v, want ErrNotFound", err)
				}
			}
		})
	}
	got, err := s.GetCall(ctx, orig.ID)
	if err != nil {
		t.Fatalf("GetCall: %v", err)
	}
	checkCall(t, got, stored(orig))
}

func contractEndCall(t *testing.T, s parley.Store) {
	ctx := context.Background()
	c := parley.Call{ID: "CA-end", Channel: parley.ChannelTwilio, From: "+1", To: "+2", StartedAt: at(0)}
	mustCreate(t, s, c)
	got, err := s.GetCall(ctx, c.ID)
	if err != nil {
		t.Fatalf("GetCall: %v", err)
	}
	checkCall(t, got, stored(c)) // open: no end, no outcome

	end := at(3*time.Minute + 123456789)
	if err := s.EndCall(ctx, c.ID, end, parley.OutcomeResolved, "caller said goodbye"); err != nil {
		t.Fatalf("EndCall: %v", err)
	}
	c.EndedAt, c.Outcome, c.Reason = end, parley.OutcomeResolved, "caller said goodbye"
	if got, err = s.GetCall(ctx, c.ID); err != nil {
		t.Fatalf("GetCall: %v", err)
	}
	checkCall(t, got, stored(c))

	err = s.EndCall(ctx, "CA-nobody", end, parley.OutcomeDropped, "")
	if !errors.Is(err, parley.ErrNotFound) {
		t.Fatalf("EndCall(unknown) = %v, want ErrNotFound", err)
	}
}

// contractTurns are turns that between them set every field of a Turn.
func contractTurns(callID string) []parley.Turn {
	return []parley.Turn{
		{CallID: callID, Seq: 0, Speaker: parley.SpeakerAI, Text: "Thanks for calling. How can I help?",
			Start: at(100 * time.Millisecond), End: at(2500 * time.Millisecond)},
		{CallID: callID, Seq: 1, Speaker: parley.SpeakerCaller, Text: "My card was stolen yesterday",
			Start: at(3 * time.Second), End: at(5*time.Second + 999999), EndOfSpeech: at(5*time.Second + 999999),
			FirstAudio: at(5*time.Second + 640*time.Millisecond + 1),
			Signals: &parley.Signals{Intent: "card_stolen", ASRConfidence: 0.91, NLUConfidence: 0.875,
				Frustration: 0.125, Repeats: 0, AITime: 5*time.Second + 640*time.Millisecond}},
		{CallID: callID, Seq: 2, Speaker: parley.SpeakerAI, Text: "I'm sorry to hear that. I can block",
			Intended:    "I'm sorry to hear that. I can block the card right now and order a new one.",
			Interrupted: true, Start: at(5700 * time.Millisecond), End: at(7 * time.Second)},
		{CallID: callID, Seq: 3, Speaker: parley.SpeakerCaller, Text: "", DTMF: "0#",
			Start: at(7100 * time.Millisecond), End: at(7300 * time.Millisecond),
			Signals: &parley.Signals{AskedForHuman: true, OutOfScope: true, HumanOnly: true, ProviderFailure: true,
				Repeats: 2, Frustration: 1, AITime: 7300 * time.Millisecond}},
		{CallID: callID, Seq: 4, Speaker: parley.SpeakerAgent, Text: "Hi, this is Dana — «ünïcödé» 你好 \"quoted\" 'single' \\ back\nslash",
			Start: at(9 * time.Second), End: at(12 * time.Second), Signals: &parley.Signals{}},
		{CallID: callID, Seq: 10, Speaker: parley.SpeakerCaller, Text: "gap in seq is fine"},
	}
}

func contractTurnsRoundTrip(t *testing.T, s parley.Store) {
	ctx := context.Background()
	c := parley.Call{ID: "CA-turns", Channel: parley.ChannelTwilio, From: "+1", To: "+2", StartedAt: at(0)}
	mustCreate(t, s, c)
	turns := contractTurns(c.ID)
	// Appended out of order: GetCall must order by Seq, not by arrival.
	for _, i := range []int{2, 0, 5, 1, 4, 3} {
		if err := s.AppendTurn(ctx, turns[i]); err != nil {
			t.Fatalf("AppendTurn(seq %d): %v", turns[i].Seq, err)
		}
	}
	got, err := s.GetCall(ctx, c.ID)
	if err != nil {
		t.Fatalf("GetCall: %v", err)
	}
	c.Turns = turns
	checkCall(t, got, stored(c))
	if lat, want := got.Turns[1].Latency(), stored(c).Turns[1].Latency(); lat != want || lat <= 0 {
		t.Errorf("turn 1 latency after round trip = %v, want %v", lat, want)
	}
}

func contractAppendTurnRejects(t *testing.T, s parley.Store) {
	ctx := context.Background()
	c := parley.Call{ID: "CA-dup", Channel: parley.ChannelTwilio, StartedAt: at(0)}
	mustCreate(t, s, c)
	first := parley.Turn{CallID: c.ID, Seq: 1, Speaker: parley.SpeakerCaller, Text: "first", Start: at(time.Second)}
	if err := s.AppendTurn(ctx, first); err != nil {
		t.Fatalf("AppendTurn: %v", err)
	}
	tests := []struct {
		name    string
		turn    parley.Turn
		wantErr error // nil: any error
	}{
		{"duplicate seq", parley.Turn{CallID: c.ID, Seq: 1, Speaker: parley.SpeakerAI, Text: "second"}, store.ErrDuplicate},
		{"unknown call", parley.Turn{CallID: "CA-nobody", Seq: 0, Speaker: parley.SpeakerAI}, parley.ErrNotFound},
		{"no call id", parley.Turn{Seq: 0, Speaker: parley.SpeakerAI}, nil},
		{"negative seq", parley.Turn{CallID: c.ID, Seq: -1, Speaker: parley.SpeakerAI}, nil},
		{"no speaker", parley.Turn{CallID: c.ID, Seq: 2}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.AppendTurn(ctx, tc.turn)
			if err == nil {
				t.Fatalf("AppendTurn(%+v) = nil, want an error", tc.turn)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("AppendTurn error %v does not wrap %v", err, tc.wantErr)
			}
		})
	}
	got, err := s.GetCall(ctx, c.ID)
	if err != nil {
		t.Fatalf("GetCall: %v", err)
	}
	c.Turns = []parley.Turn{first}
	checkCall(t, got, stored(c))
}

func contractEvents(t *testing.T, s parley.Store) {
	ctx := context.Background()
	c := parley.Call{ID: "CA-ev", Channel: parley.ChannelTwilio, StartedAt: at(0)}
	mustCreate(t, s, c)
	mustCreate(t, s, parley.Call{ID: "CA-quiet", Channel: parley.ChannelTwilio, StartedAt: at(0)})

	evs := []parley.Event{
		{CallID: c.ID, At: at(30 * time.Second), Kind: "transfer", Data: json.RawMessage(`{"agent":"dana","step":"bridged"}`)},
		{CallID: c.ID, At: at(10*time.Second + 250*time.Microsecond), Kind: "decision",
			Data: json.RawMessage(`{"decision": "transfer", "reasons": ["asked_for_human", "frustration>0.7"], "score": 0.25}`)},
		{CallID: c.ID, At: at(time.Second), Kind: "status", Data: json.RawMessage(`"in-progress"`)},
		{CallID: c.ID, At: at(30 * time.Second), Kind: "status"}, // same time as the transfer: after it
		{CallID: c.ID, At: at(20 * time.Second), Kind: "note", Data: json.RawMessage(`[1, 2.5, null, true, "ü"]`)},
	}
	for _, e := range evs {
		if err := s.AppendEvent(ctx, e); err != nil {
			t.Fatalf("AppendEvent(%s): %v", e.Kind, err)
		}
	}
	got, err := s.Events(ctx, c.ID)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	checkEvents(t, got, []parley.Event{evs[2], evs[1], evs[4], evs[0], evs[3]})

	quiet, err := s.Events(ctx, "CA-quiet")
	if err != nil || len(quiet) != 0 {
		t.Fatalf("Events(call without events) = %v, %v; want none, nil", quiet, err)
	}
	if _, err := s.Events(ctx, "CA-nobody"); !errors.Is(err, parley.ErrNotFound) {
		t.Fatalf("Events(unknown call) = %v, want ErrNotFound", err)
	}

	rejects := []struct {
		name    string
		event   parley.Event
		wantErr error
	}{
		{"unknown call", parley.Event{CallID: "CA-nobody", At: at(0), Kind: "status"}, parley.ErrNotFound},
		{"invalid JSON", parley.Event{CallID: c.ID, At: at(0), Kind: "status", Data: json.RawMessage(`{"open":`)}, nil},
		{"no kind", parley.Event{CallID: c.ID, At: at(0)}, nil},
		{"no time", parley.Event{CallID: c.ID, Kind: "status"}, nil},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			err := s.AppendEvent(ctx, tc.event)
			if err == nil {
				t.Fatalf("AppendEvent(%+v) = nil, want an error", tc.event)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("AppendEvent error %v does not wrap %v", err, tc.wantErr)
			}
		})
	}
	if got, err = s.Events(ctx, c.ID); err != nil || len(got) != len(evs) {
		t.Fatalf("after rejected events, Events = %d events, %v; want %d", len(got), err, len(evs))
	}
}

// listFixture is four calls an hour apart, each with a transcript.
func listFixture(t *testing.T, s parley.Store) map[string]parley.Call {
	ctx := context.Background()
	type spec struct {
		call  parley.Call
		says  []string
		endAs parley.Outcome
	}
	specs := []spec{
		{parley.Call{ID: "CA-balance", Channel: parley.ChannelTwilio, From: "+15550001", To: "+15559999", StartedAt: at(0)},
			[]string{"Thanks for calling, how can I help?", "I want to check my balance"}, parley.OutcomeResolved},
		{parley.Call{ID: "CA-stolen", Channel: parley.ChannelTwilio, From: "+15550002", To: "+15559999", StartedAt: at(time.Hour)},
			[]string{"How can I help?", "My card was STOLEN, I need to block it"}, parley.OutcomeEscalated},
		{parley.Call{ID: "CA-declined", Channel: parley.ChannelWebRTC, From: "+15550001", To: "+15558888", StartedAt: at(2 * time.Hour)},
			[]string{"Hello.", "My cards keep getting declined at the shop"}, ""},
		{parley.Call{ID: "CA-wallet", Channel: parley.ChannelTwilio, From: "+15550003", To: "+15558888", StartedAt: at(3 * time.Hour)},
			[]string{"I lost my wallet on the train.", "And the debit card in it."}, parley.OutcomeAbandoned},
	}
	calls := make(map[string]parley.Call)
	for _, sp := range specs {
		mustCreate(t, s, sp.call)
		for i, text := range sp.says {
			speaker := parley.SpeakerAI
			if i%2 == 1 {
				speaker = parley.SpeakerCaller
			}
			if err := s.AppendTurn(ctx, parley.Turn{CallID: sp.call.ID, Seq: i, Speaker: speaker, Text: text,
				Start: sp.call.StartedAt.Add(time.Duration(i) * time.Second)}); err != nil {
				t.Fatalf("AppendTurn: %v", err)
			}
		}
		c := sp.call
		if sp.endAs != "" {
			c.EndedAt, c.Outcome, c.Reason = c.StartedAt.Add(10*time.Minute), sp.endAs, "fixture"
			if err := s.EndCall(ctx, c.ID, c.EndedAt, c.Outcome, c.Reason); err != nil {
				t.Fatalf("EndCall: %v", err)
			}
		}
		calls[c.ID] = c
	}
	return calls
}

func contractListFilters(t *testing.T, s parley.Store) {
	ctx := context.Background()
	calls := listFixture(t, s)
	tests := []struct {
		name  string
		query parley.CallQuery
		want  []string
	}{
		{"everything, newest first", parley.CallQuery{}, []string{"CA-wallet", "CA-declined", "CA-stolen", "CA-balance"}},
		{"from is inclusive", parley.CallQuery{From: at(time.Hour)}, []string{"CA-wallet", "CA-declined", "CA-stolen"}},
		{"to is exclusive", parley.CallQuery{To: at(time.Hour)}, []string{"CA-balance"}},
		{"window", parley.CallQuery{From: at(30 * time.Minute), To: at(150 * time.Minute)}, []string{"CA-declined", "CA-stolen"}},
		{"window in another zone", parley.CallQuery{From: at(time.Hour).UTC(), To: at(time.Hour + time.Millisecond).In(time.FixedZone("PST", -8*3600))}, []string{"CA-stolen"}},
		{"empty window", parley.CallQuery{From: at(time.Hour), To: at(time.Hour)}, nil},
		{"number as caller", parley.CallQuery{Number: "+15550001"}, []string{"CA-declined", "CA-balance"}},
		{"number as dialled", parley.CallQuery{Number: "+15559999"}, []string{"CA-stolen", "CA-balance"}},
		{"unknown number", parley.CallQuery{Number: "+15550000"}, nil},
		{"outcome", parley.CallQuery{Outcome: parley.OutcomeEscalated}, []string{"CA-stolen"}},
		{"outcome nobody had", parley.CallQuery{Outcome: parley.OutcomeFailed}, nil},
		{"text: words in another order", parley.CallQuery{Text: "stolen card"}, []string{"CA-stolen"}},
		{"text: case-insensitive", parley.CallQuery{Text: "STOLEN"}, []string{"CA-stolen"}},
		{"text: one word", parley.CallQuery{Text: "balance"}, []string{"CA-balance"}},
		{"text: plural matches singular", parley.CallQuery{Text: "Cards"}, []string{"CA-wallet", "CA-declined", "CA-stolen"}},
		{"text: words in different turns", parley.CallQuery{Text: "wallet, debit"}, []string{"CA-wallet"}},
		{"text: every word must appear", parley.CallQuery{Text: "stolen balance"}, nil},
		{"text: whole words only", parley.CallQuery{Text: "bal"}, nil},
		{"text: punctuation and stop words ignored", parley.CallQuery{Text: `"my card" was... stolen?!`}, []string{"CA-stolen"}},
		{"text: only stop words", parley.CallQuery{Text: "the my was"}, nil},
		{"text: query syntax is not interpreted", parley.CallQuery{Text: `card* OR NOT -stolen^ & | ! ( "`}, []string{"CA-stolen"}},
		{"text and number", parley.CallQuery{Text: "card", Number: "+15558888"}, []string{"CA-wallet", "CA-declined"}},
		{"everything at once", parley.CallQuery{From: at(time.Hour), To: at(4 * time.Hour), Number: "+15550002",
			Outcome: parley.OutcomeEscalated, Text: "block"}, []string{"CA-stolen"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListCalls(ctx, tc.query)
			if err != nil {
				t.Fatalf("ListCalls(%+v): %v", tc.query, err)
			}
			if ids := callIDs(got); !reflect.DeepEqual(ids, tc.want) {
				t.Fatalf("ListCalls(%+v) = %q, want %q", tc.query, ids, tc.want)
			}
			for _, c := range got {
				checkCall(t, c, stored(calls[c.ID])) // all fields, and no turns
			}
		})
	}
}

func contractListPaging(t *testing.T, s parley.Store) {
	ctx := context.Background()
	// Two calls share a start time: the order between them must still be
	// fixed (by ID, descending), or pages could repeat or skip a call.
	ids := []string{"CA-a", "CA-b", "CA-c", "CA-d", "CA-e"}
	starts := []time.Duration{0, time.Minute, time.Minute, 2 * time.Minute, 3 * time.Minute}
	for i, id := range ids {
		mustCreate(t, s, parley.Call{ID: id, Channel: parley.ChannelTwilio, StartedAt: at(starts[i])})
	}
	tests := []struct {
		name          string
		limit, offset int
		want          []string
	}{
		{"all", 0, 0, []string{"CA-e", "CA-d", "CA-c", "CA-b", "CA-a"}},
		{"first page", 2, 0, []string{"CA-e", "CA-d"}},
		{"second page", 2, 2, []string{"CA-c", "CA-b"}},
		{"last page", 2, 4, []string{"CA-a"}},
		{"past the end", 2, 5, nil},
		{"negative limit means default", -1, 0, []string{"CA-e", "CA-d", "CA-c", "CA-b", "CA-a"}},
		{"negative offset means zero", 1, -3, []string{"CA-e"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListCalls(ctx, parley.CallQuery{Limit: tc.limit, Offset: tc.offset})
			if err != nil {
				t.Fatalf("ListCalls: %v", err)
			}
			if ids := callIDs(got); !reflect.DeepEqual(ids, tc.want) {
				t.Fatalf("ListCalls(limit %d, offset %d) = %q, want %q", tc.limit, tc.offset, ids, tc.want)
			}
		})
	}
}

func contractListDefaultLimit(t *testing.T, s parley.Store) {
	ctx := context.Background()
	n := store.DefaultLimit + 5
	for i := range n {
		mustCreate(t, s, parley.Call{ID: fmt.Sprintf("CA-%03d", i), Channel: parley.ChannelTwilio, StartedAt: at(time.Duration(i) * time.Second)})
	}
	got, err := s.ListCalls(ctx, parley.CallQuery{})
	if err != nil {
		t.Fatalf("ListCalls: %v", err)
	}
	if len(got) != store.DefaultLimit {
		t.Fatalf("ListCalls with no limit returned %d calls, want %d", len(got), store.DefaultLimit)
	}
	if want := fmt.Sprintf("CA-%03d", n-1); got[0].ID != want {
		t.Fatalf("first call = %s, want newest %s", got[0].ID, want)
	}
	got, err = s.ListCalls(ctx, parley.CallQuery{Limit: n + 10})
	if err != nil || len(got) != n {
		t.Fatalf("ListCalls(limit %d) = %d calls, %v; want %d", n+10, len(got), err, n)
	}
}

func contractConcurrent(t *testing.T, s parley.Store) {
	ctx := context.Background()
	const writers, perWriter = 8, 25
	c := parley.Call{ID: "CA-busy", Channel: parley.ChannelTwilio, StartedAt: at(0)}
	mustCreate(t, s, c)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each writer also opens a call of its own, so creates, turns
			// and events of different calls interleave.
			own := parley.Call{ID: fmt.Sprintf("CA-w%d", w), Channel: parley.ChannelWebRTC, StartedAt: at(time.Duration(w+1) * time.Second)}
			if err := s.CreateCall(ctx, own); err != nil {
				t.Errorf("writer %d: CreateCall: %v", w, err)
				return
			}
			for i := range perWriter {
				seq := i*writers + w
				turn := parley.Turn{CallID: c.ID, Seq: seq, Speaker: parley.SpeakerCaller, Text: fmt.Sprintf("turn %d", seq),
					Start: at(time.Duration(seq) * time.Millisecond), Signals: &parley.Signals{Repeats: seq}}
				if err := s.AppendTurn(ctx, turn); err != nil {
					t.Errorf("writer %d: AppendTurn(%d): %v", w, seq, err)
					return
				}
				if err := s.AppendEvent(ctx, parley.Event{CallID: own.ID, At: at(time.Duration(i) * time.Millisecond), Kind: "tick"}); err != nil {
					t.Errorf("writer %d: AppendEvent: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	got, err := s.GetCall(ctx, c.ID)
	if err != nil {
		t.Fatalf("GetCall: %v", err)
	}
	if len(got.Turns) != writers*perWriter {
		t.Fatalf("GetCall has %d turns, want %d", len(got.Turns), writers*perWriter)
	}
	for i, turn := range got.Turns {
		if turn.Seq != i || turn.Text != fmt.Sprintf("turn %d", i) || turn.Signals == nil || turn.Signals.Repeats != i {
			t.Fatalf("turn %d = %+v, want seq %d with its own text and signals", i, turn, i)
		}
	}
	for w := range writers {
		evs, err := s.Events(ctx, fmt.Sprintf("CA-w%d", w))
		if err != nil || len(evs) != perWriter {
			t.Fatalf("Events(CA-w%d) = %d events, %v; want %d", w, len(evs), err, perWriter)
		}
	}
	all, err := s.ListCalls(ctx, parley.CallQuery{})
	if err != nil || len(all) != writers+1 {
		t.Fatalf("ListCalls = %d calls, %v; want %d", len(all), err, writers+1)
	}
}

func contractCanceled(t *testing.T, s parley.Store) {
	c := parley.Call{ID: "CA-live", Channel: parley.ChannelTwilio, From: "+1", StartedAt: at(0)}
	mustCreate(t, s, c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ops := []struct {
		name string
		do   func() error
	}{
		{"CreateCall", func() error {
			return s.CreateCall(ctx, parley.Call{ID: "CA-late", Channel: parley.ChannelTwilio, StartedAt: at(0)})
		}},
		{"AppendTurn", func() error {
			return s.AppendTurn(ctx, parley.Turn{CallID: c.ID, Seq: 0, Speaker: parley.SpeakerAI})
		}},
		{"AppendEvent", func() error {
			return s.AppendEvent(ctx, parley.Event{CallID: c.ID, At: at(0), Kind: "status"})
		}},
		{"EndCall", func() error { return s.EndCall(ctx, c.ID, at(time.Minute), parley.OutcomeDropped, "") }},
		{"GetCall", func() error { _, err := s.GetCall(ctx, c.ID); return err }},
		{"Events", func() error { _, err := s.Events(ctx, c.ID); return err }},
		{"ListCalls", func() error { _, err := s.ListCalls(ctx, parley.CallQuery{}); return err }},
		{"ForgetNumber", func() error { _, err := s.ForgetNumber(ctx, "+1"); return err }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			if err := op.do(); err == nil {
				t.Fatalf("%s with a cancelled context = nil, want an error", op.name)
			}
		})
	}
	// Nothing the cancelled calls tried may have landed.
	got, err := s.GetCall(context.Background(), c.ID)
	if err != nil {
		t.Fatalf("GetCall: %v", err)
	}
	checkCall(t, got, stored(c))
	if _, err := s.GetCall(context.Background(), "CA-late"); !errors.Is(err, parley.ErrNotFound) {
		t.Fatalf("GetCall(CA-late) = %v, want ErrNotFound", err)
	}
}

func contractWriteBatch(t *testing.T, s parley.Store) {
	b, ok := s.(store.Batcher)
	if !ok {
		t.Skipf("%T does not implement store.Batcher", s)
	}
	ctx := context.Background()
	turns := contractTurns("CA-batch")
	sig := *turns[1].Signals
	turns[1].Signals = &sig
	ws := []store.Write{
		{CreateCall: &parley.Call{ID: "CA-batch", Channel: parley.ChannelTwilio, From: "+1", StartedAt: at(0), Turns: turns[:1]}},
		{AppendTurn: &turns[1]},
		{AppendEvent: &parley.Event{CallID: "CA-batch", At: at(time.Second), Kind: "decision", Data: json.RawMessage(`{"stay":true}`)}},
		{AppendTurn: &turns[2]},
		{EndCall: &store.CallEnd{ID: "CA-batch", EndedAt: at(time.Minute), Outcome: parley.OutcomeResolved, Reason: "bye"}},
	}
	if err := b.WriteBatch(ctx, ws); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	got, err := s.GetCall(ctx, "CA-batch")
	if err != nil {
		t.Fatalf("GetCall: %v", err)
	}
	checkCall(t, got, stored(parley.Call{ID: "CA-batch", Channel: parley.ChannelTwilio, From: "+1", StartedAt: at(0),
		EndedAt: at(time.Minute), Outcome: parley.OutcomeResolved, Reason: "bye", Turns: turns[:3]}))
	if evs, err := s.Events(ctx, "CA-batch"); err != nil || len(evs) != 1 {
		t.Fatalf("Events = %+v, %v; want the batch's event", evs, err)
	}

	// A batch is all or none: one bad write and nothing of it lands.
	failing := []struct {
		name    string
		bad     store.Write
		wantErr error
	}{
		{"duplicate turn", store.Write{AppendTurn: &turns[0]}, store.ErrDuplicate},
		{"duplicate call", store.Write{CreateCall: &parley.Call{ID: "CA-batch", Channel: parley.ChannelTwilio, StartedAt: at(0)}}, store.ErrDuplicate},
		{"end of unknown call", store.Write{EndCall: &store.CallEnd{ID: "CA-nobody", EndedAt: at(0)}}, parley.ErrNotFound},
		{"turn of unknown call", store.Write{AppendTurn: &parley.Turn{CallID: "CA-nobody", Speaker: parley.SpeakerAI}}, parley.ErrNotFound},
		{"event of unknown call", store.Write{AppendEvent: &parley.Event{CallID: "CA-nobody", At: at(0), Kind: "x"}}, parley.ErrNotFound},
		{"invalid turn", store.Write{AppendTurn: &parley.Turn{CallID: "CA-batch", Seq: 99}}, nil},
		{"empty write", store.Write{}, nil},
	}
	for _, tc := range failing {
		t.Run(tc.name, func(t *testing.T) {
			ws := []store.Write{
				{CreateCall: &parley.Call{ID: "CA-rolled-back", Channel: parley.ChannelTwilio, StartedAt: at(0)}},
				{AppendTurn: &parley.Turn{CallID: "CA-batch", Seq: 50, Speaker: parley.SpeakerAI, Text: "rolled back"}},
				tc.bad,
				{AppendEvent: &parley.Event{CallID: "CA-batch", At: at(0), Kind: "after"}},
			}
			err := b.WriteBatch(ctx, ws)
			if err == nil {
				t.Fatal("WriteBatch with a bad write = nil, want an error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("WriteBatch error %v does not wrap %v", err, tc.wantErr)
			}
			if _, err := s.GetCall(ctx, "CA-rolled-back"); !errors.Is(err, parley.ErrNotFound) {
				t.Fatalf("call from a failed batch: GetCall = %v, want ErrNotFound", err)
			}
			got, err := s.GetCall(ctx, "CA-batch")
			if err != nil || len(got.Turns) != 3 {
				t.Fatalf("after a failed batch CA-batch has %d turns (%v), want 3", len(got.Turns), err)
			}
			if evs, err := s.Events(ctx, "CA-batch"); err != nil || len(evs) != 1 {
				t.Fatalf("after a failed batch Events = %d, %v; want 1", len(evs), err)
			}
		})
	}
	if err := b.WriteBatch(ctx, nil); err != nil {
		t.Fatalf("WriteBatch(nil) = %v, want nil", err)
	}
}

func mustCreate(t *testing.T, s parley.Store, c parley.Call) {
	t.Helper()
	if err := s.CreateCall(context.Background(), c); err != nil {
		t.Fatalf("CreateCall(%s): %v", c.ID, err)
	}
}

func callIDs(calls []parley.Call) []string {
	var ids []string
	for _, c := range calls {
		ids = append(ids, c.ID)
	}
	return ids
}

// stored returns c as a store gives it back: times at millisecond
// precision in UTC.
func stored(c parley.Call) parley.Call {
	c.StartedAt, c.EndedAt = store.Millis(c.StartedAt), store.Millis(c.EndedAt)
	turns := make([]parley.Turn, len(c.Turns))
	for i, t := range c.Turns {
		t.Start, t.End, t.EndOfSpeech, t.FirstAudio = store.Millis(t.Start), store.Millis(t.End), store.Millis(t.EndOfSpeech), store.Millis(t.FirstAudio)
		turns[i] = t
	}
	c.Turns = turns
	if len(turns) == 0 {
		c.Turns = nil
	}
	return c
}

// checkCall compares got with want field by field, including the time
// zone of every time, and reports each difference.
func checkCall(t *testing.T, got, want parley.Call) {
	t.Helper()
	g, w := callFields(got), callFields(want)
	var diffs []string
	for i := 0; i < max(len(g), len(w)); i++ {
		gl, wl := "<missing>", "<missing>"
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			diffs = append(diffs, fmt.Sprintf("  got  %s\n  want %s", gl, wl))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("call %s differs:\n%s", want.ID, strings.Join(diffs, "\n"))
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.Format(time.RFC3339Nano) + " " + t.Location().String()
}

func callFields(c parley.Call) []string {
	f := []string{
		"id=" + c.ID, "channel=" + string(c.Channel), "from=" + c.From, "to=" + c.To,
		"started_at=" + fmtTime(c.StartedAt), "ended_at=" + fmtTime(c.EndedAt),
		"outcome=" + string(c.Outcome), "reason=" + c.Reason,
		fmt.Sprintf("turns=%d", len(c.Turns)),
	}
	for i, t := range c.Turns {
		p := fmt.Sprintf("turns[%d].", i)
		sig := "nil"
		if t.Signals != nil {
			sig = fmt.Sprintf("%+v", *t.Signals)
		}
		f = append(f, p+"call_id="+t.CallID, fmt.Sprintf("%sseq=%d", p, t.Seq), p+"speaker="+string(t.Speaker),
			fmt.Sprintf("%stext=%q", p, t.Text), fmt.Sprintf("%sintended=%q", p, t.Intended),
			fmt.Sprintf("%sinterrupted=%t", p, t.Interrupted), p+"dtmf="+t.DTMF,
			p+"start="+fmtTime(t.Start), p+"end="+fmtTime(t.End),
			p+"end_of_speech="+fmtTime(t.EndOfSpeech), p+"first_audio="+fmtTime(t.FirstAudio),
			p+"signals="+sig)
	}
	return f
}

// checkEvents compares events; data is compared as JSON values, since a
// store may normalise white space and key order.
func checkEvents(t *testing.T, got, want []parley.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.CallID != w.CallID || g.Kind != w.Kind || fmtTime(g.At) != fmtTime(store.Millis(w.At)) {
			t.Errorf("event %d = {%s %s %s}, want {%s %s %s}", i, g.CallID, fmtTime(g.At), g.Kind, w.CallID, fmtTime(store.Millis(w.At)), w.Kind)
		}
		if !sameJSON(g.Data, w.Data) {
			t.Errorf("event %d data = %s, want %s", i, g.Data, w.Data)
		}
	}
}

func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
