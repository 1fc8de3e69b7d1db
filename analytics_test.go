package parley

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

func TestFactsOf(t *testing.T) {
	at := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	ev := func(kind, data string) Event {
		return Event{CallID: "c", At: at, Kind: kind, Data: json.RawMessage(data)}
	}
	tests := []struct {
		name string
		e    Event
		ok   bool
		want CallFacts
	}{
		{"transfer decision", ev("decision", `{"transfer":true,"reasons":["asked_for_human","asked_for_human","",  "frustration"],"score":1.5}`), true,
			CallFacts{Escalated: true, EscalatedAt: at, Reasons: []string{"asked_for_human", "frustration"}, TimeToHumanMS: -1, QueueWaitMS: -1}},
		{"stay with the AI", ev("decision", `{"transfer":false,"reasons":["low_confidence"]}`), false, CallFacts{}},
		{"transfer with times", ev("transfer", `{"agent_id":"u1","reasons":["human_only_intent"],"decided_at":"2026-03-14T09:59:00Z",
			"connected_at":"2026-03-14T09:59:45.5Z","time_to_human_ms":45500,"queue_wait_ms":30000}`), true,
			CallFacts{Escalated: true, EscalatedAt: at.Add(-time.Minute), Reasons: []string{"human_only_intent"},
				ConnectedAt: at.Add(-14500 * time.Millisecond), AgentID: "u1", TimeToHumanMS: 45500, QueueWaitMS: 30000}},
		{"transfer without durations", ev("transfer", `{"agent_id":"u1","decided_at":"2026-03-14T09:59:00Z","connected_at":"2026-03-14T09:59:30Z"}`), true,
			CallFacts{Escalated: true, EscalatedAt: at.Add(-time.Minute), Reasons: []string{}, ConnectedAt: at.Add(-30 * time.Second),
				AgentID: "u1", TimeToHumanMS: 30000, QueueWaitMS: -1}},
		{"transfer without times", ev("transfer", `{"agent_id":"u1"}`), true,
			CallFacts{Escalated: true, EscalatedAt: at, Reasons: []string{}, ConnectedAt: at, AgentID: "u1", TimeToHumanMS: -1, QueueWaitMS: -1}},
		{"queue", ev("queue", `{"state":"abandoned","position":3}`), true, CallFacts{QueueState: "abandoned", TimeToHumanMS: -1, QueueWaitMS: -1}},
		{"queue without state", ev("queue", `{}`), false, CallFacts{}},
		{"csat", ev("csat", `{"score":4}`), true, CallFacts{CSAT: 4, TimeToHumanMS: -1, QueueWaitMS: -1}},
		{"csat out of range", ev("csat", `{"score":6}`), false, CallFacts{}},
		{"csat not whole", ev("csat", `{"score":2.5}`), false, CallFacts{}},
		{"bad json", ev("transfer", `{`), false, CallFacts{}},
		{"other kind", ev("status", `{"state":"abandoned"}`), false, CallFacts{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := FactsOf(tc.e)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("facts = %+v\nwant    %+v", got, tc.want)
			}
		})
	}
}

func TestTTHPercentiles(t *testing.T) {
	h := map[int]int64{}
	var values []int64
	for i := int64(1); i <= 1000; i++ {
		ms := i * 97 // 97 ms .. 97 s
		values = append(values, ms)
		h[TTHBin(ms)]++
	}
	for _, p := range []struct {
		p    float64
		want int64
	}{{0.5, values[499]}, {0.95, values[949]}} {
		got := tthPercentile(h, p.p)
		if math.Abs(got-float64(p.want)) > 0.025*float64(p.want) {
			t.Errorf("p%v = %v, want %d ± 2.5 %%", 100*p.p, got, p.want)
		}
	}
	if got := tthPercentile(map[int]int64{}, 0.5); got != 0 {
		t.Errorf("empty histogram: %v", got)
	}
	if TTHBin(0) != 0 || TTHBin(1) != 1 || TTHBin(-5) != 0 {
		t.Errorf("bins of 0, 1, -5: %d %d %d", TTHBin(0), TTHBin(1), TTHBin(-5))
	}
}

func TestNewKPIReportSeries(t *testing.T) {
	from := time.Date(2026, 3, 14, 22, 30, 0, 0, time.UTC)
	a := NewKPIAggregate()
	a.AddHour(HourOf(from), KPICounts{Calls: 2, Ended: 2, Contained: 1})
	a.AddHour(HourOf(from.Add(3*time.Hour)), KPICounts{Calls: 4, Ended: 4, Escalated: 1})
	a.AddHour(HourOf(from.Add(3*time.Hour)), KPICounts{Calls: 1})
	a.Reasons["low_confidence"] = 1
	a.Reasons["gone"] = 0 // a reason whose calls were forgotten
	r := NewKPIReport(KPIQuery{From: from, To: from.Add(4 * time.Hour)}, a)
	if r.Step != "hour" || len(r.Series) != 5 || !r.Series[0].Start.Equal(from.Truncate(time.Hour)) {
		t.Fatalf("series = %+v", r.Series)
	}
	if p := r.Series[3]; p.Calls != 5 || p.Ended != 4 || p.EscalationRate != 0.25 {
		t.Errorf("fourth hour = %+v", p)
	}
	if r.Calls != 7 || r.ContainmentRate != 1.0/6 || len(r.EscalationReasons) != 1 || r.EscalationReasons[0].Share != 1 {
		t.Errorf("report = %+v", r)
	}
	d := NewKPIReport(KPIQuery{From: from, To: from.Add(4 * time.Hour), Step: 24 * time.Hour}, a)
	if d.Step != "day" || len(d.Series) != 2 || d.Series[0].Calls != 2 || d.Series[1].Calls != 5 {
		t.Errorf("daily = %+v", d.Series)
	}
}
