package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parley-ai/parley"
)

// AnalyticsBackend is a store that also computes KPIs.
type AnalyticsBackend interface {
	parley.Store
	parley.Analytics
}

// AnalyticsContract checks the KPIs of the stores made by open against a
// small set of calls whose every number is worked out by hand.
func AnalyticsContract(t *testing.T, open func(t *testing.T) AnalyticsBackend) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s AnalyticsBackend)
	}{
		{"Empty", analyticsEmpty},
		{"Fixture", analyticsFixture},
		{"PartialHours", analyticsPartialHours},
		{"Updates", analyticsUpdates},
		{"Rejects", analyticsRejects},
		{"DailySeries", analyticsDaily},
		{"ManyHours", analyticsManyHours},
		{"QueueEnd", analyticsQueueEnd},
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

// KPIT0 is the first hour of the KPI fixture.
var KPIT0 = time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)

func kat(d time.Duration) time.Time { return KPIT0.Add(d) }

func callerTurn(seq int, intent string, asr, nlu float64) parley.Turn {
	return parley.Turn{Seq: seq, Speaker: parley.SpeakerCaller, Text: "words " + intent,
		Signals: &parley.Signals{Intent: intent, ASRConfidence: asr, NLUConfidence: nlu}}
}

func jsonOf(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// KPIFixture writes eight calls from KPIT0 on, through the Store methods
// the call path uses; CheckKPIFixture checks a report on [KPIT0,
// KPIT0+3h) against them.
func KPIFixture(t testing.TB, s parley.Store) {
	t.Helper()
	ctx := context.Background()
	create := func(id, from string, start time.Duration, turns ...parley.Turn) {
		t.Helper()
		if err := s.CreateCall(ctx, parley.Call{ID: id, Channel: parley.ChannelTwilio, From: from, To: "+18005550100", StartedAt: kat(start)}); err != nil {
			t.Fatalf("CreateCall %s: %v", id, err)
		}
		for _, tu := range turns {
			tu.CallID = id
			if err := s.AppendTurn(ctx, tu); err != nil {
				t.Fatalf("AppendTurn %s: %v", id, err)
			}
		}
	}
	event := func(id string, at time.Duration, kind string, data any) {
		t.Helper()
		if err := s.AppendEvent(ctx, parley.Event{CallID: id, At: kat(at), Kind: kind, Data: jsonOf(t, data)}); err != nil {
			t.Fatalf("AppendEvent %s %s: %v", id, kind, err)
		}
	}
	end := func(id string, at time.Duration, o parley.Outcome) {
		t.Helper()
		if err := s.EndCall(ctx, id, kat(at), o, "fixture"); err != nil {
			t.Fatalf("EndCall %s: %v", id, err)
		}
	}
	decide := func(id string, at time.Duration, reasons ...string) {
		t.Helper()
		event(id, at, "decision", map[string]any{"transfer": false, "reasons": []string{}, "score": 0.2})
		event(id, at, "decision", map[string]any{"transfer": true, "reasons": reasons, "score": 1.5})
		event(id, at+time.Second, "decision", map[string]any{"transfer": true, "reasons": []string{"ai_time"}, "score": 1.5}) // only the first counts
	}

	// c1: contained in two minutes; a silence turn and an AI turn do not count.
	create("k1", "+15550001", 5*time.Minute,
		parley.Turn{Seq: 0, Speaker: parley.SpeakerAI, Text: "Hello"},
		callerTurn(1, "card_lost", 0.9, 0.9),
		parley.Turn{Seq: 2, Speaker: parley.SpeakerCaller, Signals: &parley.Signals{}})
	end("k1", 7*time.Minute, parley.OutcomeResolved)

	// c2: asked for a human, an agent after a minute, eight minutes with them.
	create("k2", "+15550002", 10*time.Minute, callerTurn(0, "agent", 0.9, 0.3), callerTurn(1, "agent", 0.9, 0.2))
	decide("k2", 11*time.Minute, "asked_for_human")
	event("k2", 11*time.Minute, "queue", map[string]any{"state": "queued"})
	event("k2", 12*time.Minute, "transfer", map[string]any{"agent_id": "u1", "agent": "alice", "reasons": []string{"asked_for_human"},
		"decided_at": kat(11 * time.Minute), "connected_at": kat(12 * time.Minute), "time_to_human_ms": 60000, "queue_wait_ms": 50000})
	end("k2", 20*time.Minute, parley.OutcomeEscalated)
	event("k2", 21*time.Minute, "csat", map[string]any{"score": 4})

	// c3: the first caller again, gave up waiting for a human.
	create("k3", "+15550001", 70*time.Minute, callerTurn(0, "payments_late", 0.9, 0.4),
		parley.Turn{Seq: 1, Speaker: parley.SpeakerCaller, Text: "what about the weather",
			Signals: &parley.Signals{Intent: "payments_late", ASRConfidence: 0.9, NLUConfidence: 0.1, OutOfScope: true}})
	decide("k3", 71*time.Minute, "low_confidence", "frustration")
	event("k3", 72*time.Minute, "queue", map[string]any{"state": "abandoned"})
	event("k3", 72*time.Minute, "queue", map[string]any{"state": "withdrawn"}) // the offer ends after the caller left
	end("k3", 75*time.Minute, parley.OutcomeAbandoned)

	// c4: a human-only request, left a number to be called back.
	create("k4", "+15550003", 80*time.Minute, callerTurn(0, "loan", 0.2, 0.95))
	decide("k4", 81*time.Minute, "human_only_intent")
	event("k4", 82*time.Minute, "queue", map[string]any{"state": "callback"})
	event("k4", 82*time.Minute, "callback", map[string]any{"number": "+15550003"})
	end("k4", 82*time.Minute, parley.Outcome("callback"))

	// c5: contained in three minutes, but an unhappy survey; a bad score is ignored.
	create("k5", "+15550004", 130*time.Minute, callerTurn(0, "card_lost", 0.9, 0.8))
	end("k5", 133*time.Minute, parley.OutcomeResolved)
	event("k5", 134*time.Minute, "csat", map[string]any{"score": 1})
	event("k5", 134*time.Minute, "csat", map[string]any{"score": 9})

	// c6: still going.
	create("k6", "+15550005", 135*time.Minute, callerTurn(0, "card_lost", 0.9, 0.9))

	// c7: failed at once; c8: the first caller eight days later, not a repeat.
	create("k7", "", 140*time.Minute)
	end("k7", 141*time.Minute, parley.OutcomeFailed)
	create("k8", "+15550001", 8*24*time.Hour+70*time.Minute+time.Second)
	end("k8", 8*24*time.Hour+71*time.Minute, parley.OutcomeResolved)
}

func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want))
}

// CheckKPIFixture checks report r, of [KPIT0, KPIT0+3h), against KPIFixture.
func CheckKPIFixture(t testing.TB, r parley.KPIReport) {
	t.Helper()
	ints := []struct {
		name      string
		got, want int64
	}{
		{"calls", r.Calls, 7}, {"ended", r.Ended, 6}, {"contained", r.Contained, 2}, {"escalated", r.Escalated, 3},
		{"abandoned in queue", r.AbandonedInQueue, 1}, {"abandoned", r.Abandoned, 1}, {"callbacks", r.Callbacks, 1},
		{"voicemails", r.Voicemails, 0}, {"dropped", r.Dropped, 0}, {"failed", r.Failed, 1},
		{"time to human count", r.TimeToHuman.Count, 1}, {"repeats", r.Repeats.Calls, 1}, {"csat responses", r.CSAT.Responses, 2},
	}
	for _, c := range ints {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	floats := []struct {
		name      string
		got, want float64
	}{
		{"containment rate", r.ContainmentRate, 2.0 / 6}, {"escalation rate", r.EscalationRate, 3.0 / 6},
		{"ai handle ms", r.AIHandleMS, 90000}, {"human handle ms", r.HumanHandleMS, 480000},
		{"ai resolution ms", r.AIResolutionMS, 150000}, {"time to human avg", r.TimeToHuman.AvgMS, 60000},
		{"queue wait ms", r.QueueWaitMS, 50000}, {"repeat rate", r.Repeats.Rate, 1.0 / 7}, {"csat average", r.CSAT.Average, 2.5},
	}
	for _, c := range floats {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	for _, p := range []float64{r.TimeToHuman.P50MS, r.TimeToHuman.P95MS} {
		if math.Abs(p-60000) > 0.025*60000 {
			t.Errorf("time to human percentile = %v, want 60000 ± 2.5 %%", p)
		}
	}
	if want := [5]int64{1, 0, 0, 1, 0}; r.CSAT.Distribution != want {
		t.Errorf("csat distribution = %v, want %v", r.CSAT.Distribution, want)
	}
	third := 1.0 / 3
	wantReasons := []parley.ReasonCount{{Reason: "asked_for_human", Calls: 1, Share: third}, {Reason: "frustration", Calls: 1, Share: third},
		{Reason: "human_only_intent", Calls: 1, Share: third}, {Reason: "low_confidence", Calls: 1, Share: third}}
	if !reflect.DeepEqual(r.EscalationReasons, wantReasons) {
		t.Errorf("escalation reasons = %+v, want %+v", r.EscalationReasons, wantReasons)
	}
	if want := []parley.IntentCount{{Intent: "card_lost", Calls: 1}}; !reflect.DeepEqual(r.Repeats.ByIntent, want) {
		t.Errorf("repeats by intent = %+v, want %+v", r.Repeats.ByIntent, want)
	}
	wantIntents := []parley.IntentStat{
		{Intent: "agent", Turns: 2, MeanNLUConfidence: 0.25, LowConfidenceTurns: 2, LowConfidenceShare: 1, Calls: 1, Escalated: 1},
		{Intent: "loan", Turns: 1, MeanNLUConfidence: 0.95, LowConfidenceTurns: 1, LowConfidenceShare: 1, Calls: 1, Escalated: 1},
		{Intent: "payments_late", Turns: 2, MeanNLUConfidence: 0.25, LowConfidenceTurns: 1, LowConfidenceShare: 0.5, Calls: 1, Escalated: 1},
		{Intent: "card_lost", Turns: 2, MeanNLUConfidence: 0.85, LowConfidenceTurns: 0, LowConfidenceShare: 0, Calls: 2, Escalated: 0},
	}
	if len(r.WorstIntents) != len(wantIntents) {
		t.Errorf("worst intents = %+v, want %+v", r.WorstIntents, wantIntents)
	} else {
		for i, w := range wantIntents {
			g := r.WorstIntents[i]
			if g.Intent != w.Intent || g.Turns != w.Turns || !near(g.MeanNLUConfidence, w.MeanNLUConfidence) ||
				g.LowConfidenceTurns != w.LowConfidenceTurns || !near(g.LowConfidenceShare, w.LowConfidenceShare) ||
				g.Calls != w.Calls || g.Escalated != w.Escalated {
				t.Errorf("worst intent %d = %+v, want %+v", i, g, w)
			}
		}
	}
	var review []string
	for _, c := range r.Review {
		review = append(review, c.ID)
	}
	if want := []string{"k7", "k5", "k3", "k2"}; !reflect.DeepEqual(review, want) {
		t.Errorf("calls to review = %v, want %v", review, want)
	}
	if len(r.Review) == 4 {
		if c := r.Review[1]; c.CSAT != 1 || c.Intent != "card_lost" || c.Outcome != parley.OutcomeResolved || c.Escalated || !c.StartedAt.Equal(kat(130*time.Minute)) {
			t.Errorf("review k5 = %+v", c)
		}
		if c := r.Review[3]; c.LowTurns != 2 || !c.Escalated || c.From != "+15550002" {
			t.Errorf("review k2 = %+v", c)
		}
	}
	if r.Step != "hour" || len(r.Series) != 3 {
		t.Fatalf("series: step %q, %d points, want 3 hours", r.Step, len(r.Series))
	}
	want := []parley.KPIPoint{
		{Start: KPIT0, Calls: 2, Ended: 2, Contained: 1, Escalated: 1, ContainmentRate: 0.5, EscalationRate: 0.5},
		{Start: kat(time.Hour), Calls: 2, Ended: 2, Contained: 0, Escalated: 2, ContainmentRate: 0, EscalationRate: 1},
		{Start: kat(2 * time.Hour), Calls: 3, Ended: 2, Contained: 1, Escalated: 0, ContainmentRate: 0.5, EscalationRate: 0},
	}
	for i := range want {
		if g := r.Series[i]; !g.Start.Equal(want[i].Start) || g.Calls != want[i].Calls || g.Ended != want[i].Ended ||
			g.Contained != want[i].Contained || g.Escalated != want[i].Escalated || !near(g.ContainmentRate, want[i].ContainmentRate) ||
			!near(g.EscalationRate, want[i].EscalationRate) {
			t.Errorf("series[%d] = %+v, want %+v", i, g, want[i])
		}
	}
}

func kpis(t *testing.T, s parley.Analytics, from, to time.Time) parley.KPIReport {
	t.Helper()
	r, err := s.KPIs(context.Background(), parley.KPIQuery{From: from, To: to})
	if err != nil {
		t.Fatalf("KPIs(%v, %v): %v", from, to, err)
	}
	return r
}

func analyticsEmpty(t *testing.T, s AnalyticsBackend) {
	r := kpis(t, s, KPIT0, kat(3*time.Hour))
	if r.Calls != 0 || r.Ended != 0 || r.ContainmentRate != 0 || len(r.EscalationReasons) != 0 || len(r.Review) != 0 || len(r.WorstIntents) != 0 {
		t.Errorf("empty store: %+v", r)
	}
	if len(r.Series) != 3 || !r.Series[0].Start.Equal(KPIT0) || r.Series[2].Calls != 0 {
		t.Errorf("empty store series = %+v, want three empty hours", r.Series)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, null := range []string{`"escalation_reasons":null`, `"review":null`, `"by_intent":null`, `"worst_intents":null`} {
		if strings.Contains(string(b), null) {
			t.Errorf("empty report has %s; lists must be [] for the dashboard", null)
		}
	}
}

func analyticsFixture(t *testing.T, s AnalyticsBackend) {
	KPIFixture(t, s)
	CheckKPIFixture(t, kpis(t, s, KPIT0, kat(3*time.Hour)))
	// Asked again, from the rollups only.
	CheckKPIFixture(t, kpis(t, s, KPIT0, kat(3*time.Hour)))
}

// analyticsPartialHours asks for periods that do not start or end on the
// hour: those parts are counted from the calls, the rest from rollups,
// and the sums must agree.
func analyticsPartialHours(t *testing.T, s AnalyticsBackend) {
	KPIFixture(t, s)
	whole := kpis(t, s, KPIT0, kat(3*time.Hour))
	shifted := kpis(t, s, kat(-time.Millisecond), kat(3*time.Hour-time.Millisecond))
	inside := kpis(t, s, kat(time.Millisecond), kat(2*time.Hour+59*time.Minute)) // one whole hour
	for name, r := range map[string]parley.KPIReport{"shifted": shifted, "inside": inside} {
		r.From, r.To, r.Series = whole.From, whole.To, whole.Series
		if !reflect.DeepEqual(r, whole) {
			t.Errorf("%s period: %+v\nwant %+v", name, r, whole)
		}
	}
	// [10:06, 12:15): k2 to k5; k1 before, k6 at the end excluded.
	r := kpis(t, s, kat(6*time.Minute), kat(135*time.Minute))
	if r.Calls != 4 || r.Ended != 4 || r.Escalated != 3 || r.Contained != 1 || r.Repeats.Calls != 1 || r.CSAT.Responses != 2 || r.Failed != 0 {
		t.Errorf("[10:06, 12:15): %+v", r)
	}
	// Within one hour: only raw calls.
	r = kpis(t, s, kat(9*time.Minute), kat(11*time.Minute))
	if r.Calls != 1 || r.Escalated != 1 || r.TimeToHuman.Count != 1 || len(r.EscalationReasons) != 1 || len(r.Series) != 1 {
		t.Errorf("[10:09, 10:11): %+v", r)
	}
}

// analyticsUpdates changes calls after a report: the next one must see it.
func analyticsUpdates(t *testing.T, s AnalyticsBackend) {
	ctx := context.Background()
	KPIFixture(t, s)
	_ = kpis(t, s, KPIT0, kat(3*time.Hour))
	if err := s.AppendEvent(ctx, parley.Event{CallID: "k1", At: kat(8 * time.Minute), Kind: "csat", Data: json.RawMessage(`{"score":5}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.EndCall(ctx, "k6", kat(136*time.Minute), parley.OutcomeDropped, "line"); err != nil {
		t.Fatal(err)
	}
	r := kpis(t, s, KPIT0, kat(3*time.Hour))
	if r.CSAT.Responses != 3 || r.CSAT.Distribution[4] != 1 || r.Ended != 7 || r.Dropped != 1 {
		t.Errorf("after a survey and an end: csat %+v, ended %d, dropped %d", r.CSAT, r.Ended, r.Dropped)
	}
	// Forgetting the first caller takes k1 and k3 (and k8) with their turns, reasons and repeats.
	if n, err := s.ForgetNumber(ctx, "+15550001"); err != nil || n != 3 {
		t.Fatalf("ForgetNumber = %d, %v", n, err)
	}
	r = kpis(t, s, KPIT0, kat(3*time.Hour))
	if r.Calls != 5 || r.Repeats.Calls != 0 || r.AbandonedInQueue != 0 || len(r.EscalationReasons) != 2 || r.CSAT.Responses != 2 {
		t.Errorf("after forgetting a caller: %+v", r)
	}
	for _, in := range r.WorstIntents {
		if in.Intent == "payments_late" {
			t.Errorf("forgotten call's intent still counted: %+v", in)
		}
	}
}

func analyticsRejects(t *testing.T, s AnalyticsBackend) {
	ctx := context.Background()
	for name, q := range map[string]parley.KPIQuery{
		"no from":      {To: KPIT0},
		"no to":        {From: KPIT0},
		"backwards":    {From: KPIT0, To: kat(-time.Hour)},
		"empty":        {From: KPIT0, To: KPIT0},
		"odd step":     {From: KPIT0, To: kat(time.Hour), Step: time.Minute},
		"ten years":    {From: KPIT0, To: kat(10 * 366 * 24 * time.Hour)},
		"huge review":  {From: KPIT0, To: kat(time.Hour), Review: 1000},
		"minus review": {From: KPIT0, To: kat(time.Hour), Review: -1},
	} {
		if _, err := s.KPIs(ctx, q); err == nil {
			t.Errorf("%s: KPIs accepted %+v", name, q)
		}
	}
}

func analyticsDaily(t *testing.T, s AnalyticsBackend) {
	KPIFixture(t, s)
	r := kpis(t, s, KPIT0.Add(-24*time.Hour), KPIT0.Add(9*24*time.Hour))
	if r.Step != "day" || len(r.Series) != 11 {
		t.Fatalf("daily series: step %q, %d points", r.Step, len(r.Series))
	}
	day := KPIT0.Truncate(24 * time.Hour)
	if p := r.Series[1]; !p.Start.Equal(day) || p.Calls != 7 || p.Escalated != 3 {
		t.Errorf("fixture day = %+v", p)
	}
	if p := r.Series[9]; p.Calls != 1 || p.Contained != 1 {
		t.Errorf("eight days later = %+v", p)
	}
	if r.Calls != 8 || r.Repeats.Calls != 1 {
		t.Errorf("nine days: %d calls, %d repeats", r.Calls, r.Repeats.Calls)
	}
}

// analyticsManyHours writes calls in more hours than one rollup refresh
// rebuilds at once, twice: the second time every hour changes again.
func analyticsManyHours(t *testing.T, s AnalyticsBackend) {
	ctx := context.Background()
	const hours = 60
	for round := range 2 {
		for h := range hours {
			id := fmt.Sprintf("m%d-%02d", round, h)
			start := kat(time.Duration(h)*time.Hour + time.Duration(10+30*round)*time.Minute)
			if err := s.CreateCall(ctx, parley.Call{ID: id, Channel: parley.ChannelTwilio, From: fmt.Sprintf("+1555%04d", h), StartedAt: start}); err != nil {
				t.Fatal(err)
			}
			if err := s.EndCall(ctx, id, start.Add(time.Minute), parley.OutcomeResolved, "bye"); err != nil {
				t.Fatal(err)
			}
		}
		r := kpis(t, s, KPIT0, kat(hours*time.Hour))
		if r.Calls != int64(hours*(round+1)) || r.Contained != r.Calls || len(r.Series) != hours || r.Repeats.Calls != int64(hours*round) {
			t.Fatalf("round %d: %d calls, %d contained, %d points, %d repeats", round, r.Calls, r.Contained, len(r.Series), r.Repeats.Calls)
		}
		for i, p := range r.Series {
			if p.Calls != int64(round+1) || !near(p.ContainmentRate, 1) {
				t.Fatalf("round %d: hour %d = %+v", round, i, p)
			}
		}
	}
}

// analyticsQueueEnd: the end of the queue (abandoned, callback, voicemail)
// is kept when later queue events (an offer withdrawn) follow it.
func analyticsQueueEnd(t *testing.T, s AnalyticsBackend) {
	ctx := context.Background()
	if err := s.CreateCall(ctx, parley.Call{ID: "q1", Channel: parley.ChannelWebRTC, StartedAt: KPIT0}); err != nil {
		t.Fatal(err)
	}
	for i, state := range []string{"queued", "offered", "abandoned", "withdrawn"} {
		if err := s.AppendEvent(ctx, parley.Event{CallID: "q1", At: kat(time.Duration(i) * time.Second), Kind: "queue",
			Data: jsonOf(t, map[string]any{"state": state})}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EndCall(ctx, "q1", kat(time.Minute), parley.OutcomeDropped, "line lost"); err != nil {
		t.Fatal(err)
	}
	r := kpis(t, s, KPIT0, kat(time.Hour))
	if r.AbandonedInQueue != 1 || r.Dropped != 1 || r.Abandoned != 0 || len(r.Review) != 1 {
		t.Errorf("abandoned in queue %d, dropped %d, abandoned %d, review %d; want 1, 1, 0, 1", r.AbandonedInQueue, r.Dropped, r.Abandoned, len(r.Review))
	}
}
