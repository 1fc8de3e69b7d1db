package parley

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sort"
	"time"
)

// Analytics computes the call-center KPIs of a period from the store.
// store/sqlite and store/postgres implement it.
//
// Both keep per-hour rollups of every counter below, refreshed from the
// calls of the hours that changed since the last query, so a report over
// a million calls reads a few thousand rows; the parts of the period that
// are not whole hours are counted from the calls themselves.
type Analytics interface {
	// KPIs reports on the calls started in [q.From, q.To).
	KPIs(ctx context.Context, q KPIQuery) (KPIReport, error)
}

// Thresholds below which a caller turn counts as not understood; they are
// escalation.DefaultPolicy's, fixed here because the rollups are counted
// when calls end, not when a report is asked for.
const (
	LowNLUConfidence = 0.45
	LowASRConfidence = 0.35
)

// RepeatWindow is how soon a call from the same number counts as a repeat
// contact of the earlier one.
const RepeatWindow = 7 * 24 * time.Hour

// MaxKPIPeriod bounds a report's period (the series would be too long).
const MaxKPIPeriod = 3 * 366 * 24 * time.Hour

// KPIQuery selects the period of a report.
type KPIQuery struct {
	From time.Time // first call start included
	To   time.Time // calls started at or after To are not
	// Step of the time series: 0 picks an hour for periods up to three
	// days and a day (UTC) beyond; otherwise time.Hour or 24*time.Hour.
	Step time.Duration
	// Review is how many calls to list for review; 0 means 25, at most 200.
	Review int
}

// Check reports whether q is a usable period.
func (q KPIQuery) Check() error {
	switch {
	case q.From.IsZero() || q.To.IsZero():
		return errors.New("kpis: from and to are required")
	case !q.From.Before(q.To):
		return errors.New("kpis: from must be before to")
	case q.To.Sub(q.From) > MaxKPIPeriod:
		return errors.New("kpis: period longer than three years")
	case q.Step != 0 && q.Step != time.Hour && q.Step != 24*time.Hour:
		return errors.New("kpis: step must be an hour or a day")
	case q.Review < 0 || q.Review > 200:
		return errors.New("kpis: review must be 0 to 200")
	}
	return nil
}

// StepOf is the series step used for q.
func (q KPIQuery) StepOf() time.Duration {
	if q.Step != 0 {
		return q.Step
	}
	if q.To.Sub(q.From) <= 72*time.Hour {
		return time.Hour
	}
	return 24 * time.Hour
}

// ReviewLimit is how many calls to review q asks for.
func (q KPIQuery) ReviewLimit() int {
	if q.Review == 0 {
		return 25
	}
	return q.Review
}

// KPIReport is what supervisors see for a period. Rates are fractions of
// the calls that ended (live calls count in Calls only); averages and
// percentiles are in milliseconds and 0 when nothing was measured.
type KPIReport struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Step  string    `json:"step"` // "hour" or "day"
	Calls int64     `json:"calls"`
	Ended int64     `json:"ended"`
	// Contained calls were resolved by the AI without a human.
	Contained       int64   `json:"contained"`
	ContainmentRate float64 `json:"containment_rate"`
	// Escalated calls were decided for a human (whether one came or not).
	Escalated         int64         `json:"escalated"`
	EscalationRate    float64       `json:"escalation_rate"`
	EscalationReasons []ReasonCount `json:"escalation_reasons"`
	// AIHandleMS: start to the transfer decision, or to the end.
	AIHandleMS float64 `json:"ai_handle_ms"`
	// HumanHandleMS: agent connected to the end of the call.
	HumanHandleMS float64 `json:"human_handle_ms"`
	// AIResolutionMS: whole duration of the contained calls.
	AIResolutionMS float64          `json:"ai_resolution_ms"`
	TimeToHuman    TimeToHumanStats `json:"time_to_human"`
	QueueWaitMS    float64          `json:"queue_wait_ms"`
	// AbandonedInQueue hung up after being decided for a human, before one came.
	AbandonedInQueue int64        `json:"abandoned_in_queue"`
	Abandoned        int64        `json:"abandoned"`
	Callbacks        int64        `json:"callbacks"`  // calls that ended asking to be called back
	Voicemails       int64        `json:"voicemails"` // calls that ended in voicemail
	Dropped          int64        `json:"dropped"`
	Failed           int64        `json:"failed"`
	Repeats          RepeatStats  `json:"repeats"`
	CSAT             CSATStats    `json:"csat"`
	WorstIntents     []IntentStat `json:"worst_intents"`
	Series           []KPIPoint   `json:"series"`
	Review           []ReviewCall `json:"review"`
}

// ReasonCount is how many escalated calls gave one reason (a call may
// give several).
type ReasonCount struct {
	Reason string  `json:"reason"`
	Calls  int64   `json:"calls"`
	Share  float64 `json:"share"` // of the escalated calls
}

// TimeToHumanStats are decision-to-agent-audio times. The percentiles come
// from a histogram of 5 % wide bins, so they are within 2.5 % of exact.
type TimeToHumanStats struct {
	Count int64   `json:"count"`
	AvgMS float64 `json:"avg_ms"`
	P50MS float64 `json:"p50_ms"`
	P95MS float64 `json:"p95_ms"`
}

// RepeatStats counts calls from a number that had called in the
// RepeatWindow before, by the intent of that earlier call ("" when it
// had none).
type RepeatStats struct {
	Calls    int64         `json:"calls"`
	Rate     float64       `json:"rate"` // of all calls
	ByIntent []IntentCount `json:"by_intent"`
}

// IntentCount is a count for one intent.
type IntentCount struct {
	Intent string `json:"intent"`
	Calls  int64  `json:"calls"`
}

// CSATStats are the answers to the post-call survey (1 to 5).
type CSATStats struct {
	Responses    int64    `json:"responses"`
	Average      float64  `json:"average"`
	Distribution [5]int64 `json:"distribution"` // index 0 counts score 1
}

// IntentStat is how well the caller turns of one intent were understood,
// and how its calls went (calls by the call's first intent). WorstIntents
// lists the intents with caller turns, worst first: most low-confidence
// turns in proportion, then lowest mean NLU confidence.
type IntentStat struct {
	Intent             string  `json:"intent"`
	Turns              int64   `json:"turns"`
	MeanNLUConfidence  float64 `json:"mean_nlu_confidence"`
	LowConfidenceTurns int64   `json:"low_confidence_turns"`
	LowConfidenceShare float64 `json:"low_confidence_share"`
	Calls              int64   `json:"calls"`
	Escalated          int64   `json:"escalated"`
}

// KPIPoint is one step of the time series.
type KPIPoint struct {
	Start           time.Time `json:"start"`
	Calls           int64     `json:"calls"`
	Ended           int64     `json:"ended"`
	Contained       int64     `json:"contained"`
	Escalated       int64     `json:"escalated"`
	ContainmentRate float64   `json:"containment_rate"`
	EscalationRate  float64   `json:"escalation_rate"`
}

// ReviewCall is a call worth a supervisor's look, newest first: a low
// survey score (2 or less), two or more caller turns not understood, a
// caller who gave up waiting for a human, or a failed or dropped call.
type ReviewCall struct {
	ID        string    `json:"id"`
	StartedAt time.Time `json:"started_at"`
	From      string    `json:"from"`
	Outcome   Outcome   `json:"outcome"`
	Intent    string    `json:"intent"`
	CSAT      int       `json:"csat,omitempty"`
	LowTurns  int64     `json:"low_confidence_turns"`
	Escalated bool      `json:"escalated"`
}

// KPICounts are the additive counters of a set of calls (one hour of
// them, in the stores' rollups). Durations are sums in milliseconds over
// the N calls that have them.
type KPICounts struct {
	Calls, Ended, Contained, Escalated                   int64
	Abandoned, AbandonedInQueue, Callbacks, Voicemails   int64
	Dropped, Failed                                      int64
	AIHandleN, AIHandleMS, HumanHandleN, HumanHandleMS   int64
	AIResolutionN, AIResolutionMS                        int64
	TimeToHumanN, TimeToHumanMS, QueueWaitN, QueueWaitMS int64
	CSATN, CSATSum                                       int64
	CSAT                                                 [5]int64
	Repeats                                              int64
}

// Fields are pointers to k's counters in the column order of the stores'
// hourly rollups and of their queries (for Scan).
func (k *KPICounts) Fields() []any {
	return []any{&k.Calls, &k.Ended, &k.Contained, &k.Escalated,
		&k.Abandoned, &k.AbandonedInQueue, &k.Callbacks, &k.Voicemails, &k.Dropped, &k.Failed,
		&k.AIHandleN, &k.AIHandleMS, &k.HumanHandleN, &k.HumanHandleMS, &k.AIResolutionN, &k.AIResolutionMS,
		&k.TimeToHumanN, &k.TimeToHumanMS, &k.QueueWaitN, &k.QueueWaitMS,
		&k.CSATN, &k.CSATSum, &k.CSAT[0], &k.CSAT[1], &k.CSAT[2], &k.CSAT[3], &k.CSAT[4], &k.Repeats}
}

// Add adds o to k.
func (k *KPICounts) Add(o KPICounts) {
	k.Calls += o.Calls
	k.Ended += o.Ended
	k.Contained += o.Contained
	k.Escalated += o.Escalated
	k.Abandoned += o.Abandoned
	k.AbandonedInQueue += o.AbandonedInQueue
	k.Callbacks += o.Callbacks
	k.Voicemails += o.Voicemails
	k.Dropped += o.Dropped
	k.Failed += o.Failed
	k.AIHandleN += o.AIHandleN
	k.AIHandleMS += o.AIHandleMS
	k.HumanHandleN += o.HumanHandleN
	k.HumanHandleMS += o.HumanHandleMS
	k.AIResolutionN += o.AIResolutionN
	k.AIResolutionMS += o.AIResolutionMS
	k.TimeToHumanN += o.TimeToHumanN
	k.TimeToHumanMS += o.TimeToHumanMS
	k.QueueWaitN += o.QueueWaitN
	k.QueueWaitMS += o.QueueWaitMS
	k.CSATN += o.CSATN
	k.CSATSum += o.CSATSum
	for i := range k.CSAT {
		k.CSAT[i] += o.CSAT[i]
	}
	k.Repeats += o.Repeats
}

// IntentCounts are the additive counters of one intent: its caller turns
// (by each turn's intent), its calls (by the call's first intent) and the
// repeat contacts that followed its calls.
type IntentCounts struct {
	Turns, LowTurns           int64
	NLUSum                    float64
	Calls, Escalated, Repeats int64
}

// Fields are pointers to c's counters in the column order of the stores'
// rollups and queries.
func (c *IntentCounts) Fields() []any {
	return []any{&c.Turns, &c.LowTurns, &c.NLUSum, &c.Calls, &c.Escalated, &c.Repeats}
}

// Add adds o to c.
func (c *IntentCounts) Add(o IntentCounts) {
	c.Turns += o.Turns
	c.LowTurns += o.LowTurns
	c.NLUSum += o.NLUSum
	c.Calls += o.Calls
	c.Escalated += o.Escalated
	c.Repeats += o.Repeats
}

// KPIAggregate gathers what a store read for a period; NewKPIReport turns
// it into the report. The zero value is not ready: use NewKPIAggregate.
type KPIAggregate struct {
	Hours   map[int64]*KPICounts     // by hour since the Unix epoch
	Intents map[string]*IntentCounts // by intent
	Reasons map[string]int64         // escalated calls by reason
	TTH     map[int]int64            // time-to-human histogram by TTHBin
	Review  []ReviewCall
}

// NewKPIAggregate returns an empty aggregate.
func NewKPIAggregate() *KPIAggregate {
	return &KPIAggregate{Hours: map[int64]*KPICounts{}, Intents: map[string]*IntentCounts{},
		Reasons: map[string]int64{}, TTH: map[int]int64{}}
}

// AddHour adds the counters of hour h (hours since the Unix epoch).
func (a *KPIAggregate) AddHour(h int64, k KPICounts) {
	c := a.Hours[h]
	if c == nil {
		c = &KPICounts{}
		a.Hours[h] = c
	}
	c.Add(k)
}

// AddIntent adds counters of an intent.
func (a *KPIAggregate) AddIntent(intent string, k IntentCounts) {
	c := a.Intents[intent]
	if c == nil {
		c = &IntentCounts{}
		a.Intents[intent] = c
	}
	c.Add(k)
}

// HourOf is the rollup hour of a call start: whole hours since the epoch.
func HourOf(t time.Time) int64 { return floorDiv(t.UnixMilli(), 3_600_000) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// tthGrowth is the width of a time-to-human histogram bin.
const tthGrowth = 1.05

// TTHBin is the histogram bin of a time to human of ms milliseconds: bin
// b holds [1.05^(b-1), 1.05^b) ms, bin 0 everything under a millisecond.
func TTHBin(ms int64) int {
	if ms < 1 {
		return 0
	}
	return int(math.Floor(math.Log(float64(ms))/math.Log(tthGrowth))) + 1
}

// tthBinMid is the geometric middle of bin b, in milliseconds.
func tthBinMid(b int) float64 {
	if b <= 0 {
		return 0
	}
	return math.Pow(tthGrowth, float64(b)-0.5)
}

// NewKPIReport builds the report of q from what the store aggregated.
func NewKPIReport(q KPIQuery, a *KPIAggregate) KPIReport {
	step := q.StepOf()
	r := KPIReport{From: q.From.UTC(), To: q.To.UTC(), Step: "hour", Review: a.Review,
		EscalationReasons: []ReasonCount{}, WorstIntents: []IntentStat{}, Series: []KPIPoint{}}
	if step != time.Hour {
		r.Step = "day"
	}
	if r.Review == nil {
		r.Review = []ReviewCall{}
	}
	var tot KPICounts
	// The series, with empty steps too, from the step holding From.
	stepH := int64(step / time.Hour)
	first := floorDiv(HourOf(q.From), stepH) * stepH
	last := floorDiv(HourOf(q.To.Add(-time.Millisecond)), stepH) * stepH
	points := make(map[int64]*KPIPoint)
	for s := first; s <= last; s += stepH {
		p := KPIPoint{Start: time.UnixMilli(s * 3_600_000).UTC()}
		r.Series = append(r.Series, p)
	}
	for i := range r.Series {
		points[first+int64(i)*stepH] = &r.Series[i]
	}
	for h, k := range a.Hours {
		tot.Add(*k)
		if p := points[floorDiv(h, stepH)*stepH]; p != nil {
			p.Calls += k.Calls
			p.Ended += k.Ended
			p.Contained += k.Contained
			p.Escalated += k.Escalated
		}
	}
	for i := range r.Series {
		p := &r.Series[i]
		p.ContainmentRate, p.EscalationRate = ratio(p.Contained, p.Ended), ratio(p.Escalated, p.Ended)
	}
	r.Calls, r.Ended, r.Contained, r.Escalated = tot.Calls, tot.Ended, tot.Contained, tot.Escalated
	r.ContainmentRate, r.EscalationRate = ratio(tot.Contained, tot.Ended), ratio(tot.Escalated, tot.Ended)
	r.AIHandleMS = ratio(tot.AIHandleMS, tot.AIHandleN)
	r.HumanHandleMS = ratio(tot.HumanHandleMS, tot.HumanHandleN)
	r.AIResolutionMS = ratio(tot.AIResolutionMS, tot.AIResolutionN)
	r.QueueWaitMS = ratio(tot.QueueWaitMS, tot.QueueWaitN)
	r.AbandonedInQueue, r.Abandoned = tot.AbandonedInQueue, tot.Abandoned
	r.Callbacks, r.Voicemails, r.Dropped, r.Failed = tot.Callbacks, tot.Voicemails, tot.Dropped, tot.Failed
	r.TimeToHuman = TimeToHumanStats{Count: tot.TimeToHumanN, AvgMS: ratio(tot.TimeToHumanMS, tot.TimeToHumanN),
		P50MS: tthPercentile(a.TTH, 0.50), P95MS: tthPercentile(a.TTH, 0.95)}
	r.CSAT = CSATStats{Responses: tot.CSATN, Average: ratio(tot.CSATSum, tot.CSATN), Distribution: tot.CSAT}

	for reason, n := range a.Reasons {
		if n > 0 {
			r.EscalationReasons = append(r.EscalationReasons, ReasonCount{Reason: reason, Calls: n, Share: ratio(n, tot.Escalated)})
		}
	}
	sort.Slice(r.EscalationReasons, func(i, j int) bool {
		x, y := r.EscalationReasons[i], r.EscalationReasons[j]
		return x.Calls > y.Calls || (x.Calls == y.Calls && x.Reason < y.Reason)
	})

	r.Repeats = RepeatStats{Calls: tot.Repeats, Rate: ratio(tot.Repeats, tot.Calls), ByIntent: []IntentCount{}}
	for intent, c := range a.Intents {
		if c.Repeats > 0 {
			r.Repeats.ByIntent = append(r.Repeats.ByIntent, IntentCount{Intent: intent, Calls: c.Repeats})
		}
		if c.Turns > 0 && intent != "" {
			r.WorstIntents = append(r.WorstIntents, IntentStat{Intent: intent, Turns: c.Turns,
				MeanNLUConfidence: c.NLUSum / float64(c.Turns), LowConfidenceTurns: c.LowTurns,
				LowConfidenceShare: ratio(c.LowTurns, c.Turns), Calls: c.Calls, Escalated: c.Escalated})
		}
	}
	sort.Slice(r.Repeats.ByIntent, func(i, j int) bool {
		x, y := r.Repeats.ByIntent[i], r.Repeats.ByIntent[j]
		return x.Calls > y.Calls || (x.Calls == y.Calls && x.Intent < y.Intent)
	})
	sort.Slice(r.WorstIntents, func(i, j int) bool {
		x, y := r.WorstIntents[i], r.WorstIntents[j]
		if x.LowConfidenceShare != y.LowConfidenceShare {
			return x.LowConfidenceShare > y.LowConfidenceShare
		}
		if x.MeanNLUConfidence != y.MeanNLUConfidence {
			return x.MeanNLUConfidence < y.MeanNLUConfidence
		}
		return x.Intent < y.Intent
	})
	if len(r.WorstIntents) > 10 {
		r.WorstIntents = r.WorstIntents[:10]
	}
	return r
}

func ratio[T int64 | float64](a, b T) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// tthPercentile is the p-th percentile (nearest rank) of histogram h, as
// the middle of its bin.
func tthPercentile(h map[int]int64, p float64) float64 {
	var n int64
	bins := make([]int, 0, len(h))
	for b, c := range h {
		if c > 0 {
			n += c
			bins = append(bins, b)
		}
	}
	if n == 0 {
		return 0
	}
	sort.Ints(bins)
	rank := int64(math.Ceil(p * float64(n)))
	rank = max(rank, 1)
	var seen int64
	for _, b := range bins {
		seen += h[b]
		if seen >= rank {
			return math.Round(tthBinMid(b))
		}
	}
	return math.Round(tthBinMid(bins[len(bins)-1]))
}

// CallFacts is what one event tells the KPIs about its call; the stores
// copy it onto the call's row when the event is appended.
type CallFacts struct {
	// Escalated is set by a transfer decision or a transfer: when, and why.
	Escalated   bool
	EscalatedAt time.Time
	Reasons     []string
	// Set by a transfer (agent audio connected).
	ConnectedAt   time.Time
	AgentID       string
	TimeToHumanMS int64 // -1 when unknown
	QueueWaitMS   int64 // -1 when unknown
	// QueueState is the state of a queue event.
	QueueState string
	// CSAT is a survey score 1..5, 0 when none.
	CSAT int
}

// transferData is the data of a "transfer" event.
type transferData struct {
	AgentID       string    `json:"agent_id"`
	Agent         string    `json:"agent"`
	Reasons       []string  `json:"reasons"`
	DecidedAt     time.Time `json:"decided_at"`
	QueuedAt      time.Time `json:"queued_at"`
	OfferedAt     time.Time `json:"offered_at"`
	AcceptedAt    time.Time `json:"accepted_at"`
	ConnectedAt   time.Time `json:"connected_at"`
	TimeToHumanMS *int64    `json:"time_to_human_ms"`
	QueueWaitMS   *int64    `json:"queue_wait_ms"`
}

// FactsOf reads what event e tells the KPIs: "decision" (an
// escalation.Decision with transfer true), "transfer" (written when an
// agent's audio connects: agent_id, reasons, decided_at, connected_at,
// time_to_human_ms, queue_wait_ms), "queue" ({"state": ...}) and "csat"
// ({"score": 1..5}). ok is false for events that tell nothing (other
// kinds, a decision to stay with the AI, data that does not parse, a
// survey score outside 1..5).
func FactsOf(e Event) (f CallFacts, ok bool) {
	f.TimeToHumanMS, f.QueueWaitMS = -1, -1
	switch e.Kind {
	case "decision":
		var d struct {
			Transfer bool     `json:"transfer"`
			Reasons  []string `json:"reasons"`
		}
		if json.Unmarshal(e.Data, &d) != nil || !d.Transfer {
			return f, false
		}
		f.Escalated, f.EscalatedAt, f.Reasons = true, e.At, dedupe(d.Reasons)
		return f, true
	case "transfer":
		var d transferData
		if json.Unmarshal(e.Data, &d) != nil {
			return f, false
		}
		f.Escalated, f.EscalatedAt, f.Reasons = true, d.DecidedAt, dedupe(d.Reasons)
		if f.EscalatedAt.IsZero() {
			f.EscalatedAt = e.At
		}
		f.ConnectedAt, f.AgentID = d.ConnectedAt, d.AgentID
		if f.ConnectedAt.IsZero() {
			f.ConnectedAt = e.At
		}
		switch {
		case d.TimeToHumanMS != nil && *d.TimeToHumanMS >= 0:
			f.TimeToHumanMS = *d.TimeToHumanMS
		case !d.DecidedAt.IsZero() && !f.ConnectedAt.Before(d.DecidedAt):
			f.TimeToHumanMS = f.ConnectedAt.Sub(d.DecidedAt).Milliseconds()
		}
		if d.QueueWaitMS != nil && *d.QueueWaitMS >= 0 {
			f.QueueWaitMS = *d.QueueWaitMS
		}
		return f, true
	case "queue":
		var d struct {
			State string `json:"state"`
		}
		if json.Unmarshal(e.Data, &d) != nil || d.State == "" || len(d.State) > 32 {
			return f, false
		}
		f.QueueState = d.State
		return f, true
	case "csat":
		var d struct {
			Score json.Number `json:"score"`
		}
		if json.Unmarshal(e.Data, &d) != nil {
			return f, false
		}
		n, err := d.Score.Int64()
		if err != nil || n < 1 || n > 5 {
			return f, false
		}
		f.CSAT = int(n)
		return f, true
	}
	return f, false
}

// dedupe drops empty and repeated reasons, keeping the order.
func dedupe(rs []string) []string {
	out := make([]string, 0, len(rs))
	seen := make(map[string]bool, len(rs))
	for _, r := range rs {
		if r != "" && len(r) <= 64 && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}
