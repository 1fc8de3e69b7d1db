// Package metrics exposes parley's Prometheus metrics: live calls by phase,
// call outcomes, turns, per-stage latency, escalation decisions, the agent
// queue, media-path drops, provider errors and the store's write queue.
//
// Every method is meant to be called per call, per turn or per decision —
// never per 20 ms frame — and none of them allocates in steady state for
// label values already seen, so the media path pays nothing for metrics.
package metrics

import (
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
)

// Namespace prefixes every metric name.
const Namespace = "parley"

// Latency stages observed in parley_stage_latency_seconds. Using these names
// (rather than ad-hoc strings) keeps the label set small and dashboards stable.
const (
	// StageEndpointing is last voiced frame → the endpointer ending the turn.
	StageEndpointing = "endpointing"
	// StageSTT is end of the turn → final transcript.
	StageSTT = "stt"
	// StageLLMFirstToken is prompt sent → first token (or first sentence) of the reply.
	StageLLMFirstToken = "llm_first_token"
	// StageTTSFirstAudio is sentence sent to the synthesizer → its first audio.
	StageTTSFirstAudio = "tts_first_audio"
	// StageEndToEnd is the caller's last word → the first reply audio sent
	// to the caller (parley.Turn.Latency): the latency the caller feels.
	StageEndToEnd = "end_to_end"
)

// Stages lists the latency stages pre-registered at zero, so a dashboard
// shows every stage from the first scrape.
var Stages = []string{StageEndpointing, StageSTT, StageLLMFirstToken, StageTTSFirstAudio, StageEndToEnd}

// LatencyBuckets are the histogram buckets, in seconds, of the stage
// latencies: fine below 500 ms, where conversational latency is judged,
// and up to 5 s, beyond which a reply is simply too late.
var LatencyBuckets = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 3, 5}

// QueueWaitBuckets are the buckets, in seconds, of the time a caller waits
// for a human agent: from a few seconds up to the 10 minutes after which a
// callback is offered.
var QueueWaitBuckets = []float64{1, 2, 5, 10, 15, 30, 45, 60, 90, 120, 180, 300, 600}

// StoreCounters is what the store's asynchronous write queue reports
// (store.AsyncStats); metrics does not import the store package, so the
// wiring converts.
type StoreCounters struct {
	Written uint64 // writes applied
	Dropped uint64 // writes never applied (queue full, closed, drain deadline)
	Failed  uint64 // writes the database refused
	Pending int    // writes queued now
}

// Metrics holds parley's collectors. Build it once per process with New; its
// methods are safe for concurrent use.
type Metrics struct {
	gatherer prometheus.Gatherer

	activeCalls    *prometheus.GaugeVec
	callsStarted   *prometheus.CounterVec
	callsEnded     *prometheus.CounterVec
	callDuration   prometheus.Histogram
	turns          *prometheus.CounterVec
	interrupted    prometheus.Counter
	latency        *prometheus.HistogramVec
	decisions      *prometheus.CounterVec
	reasons        *prometheus.CounterVec
	queueLength    prometheus.Gauge
	queueWait      prometheus.Histogram
	timeToHuman    prometheus.Histogram
	playoutLate    prometheus.Counter
	playoutDropped prometheus.Counter
	inboundDropped prometheus.Counter
	digitsDropped  prometheus.Counter
	dialogEvents   *prometheus.CounterVec
	stageFailures  *prometheus.CounterVec
	providerErrors *prometheus.CounterVec

	// Hot label children, resolved once so Turn and StageLatency do no
	// label lookups for the common cases.
	callerTurns, aiTurns, agentTurns prometheus.Counter
	endToEnd, endpointing            prometheus.Observer
	transfer, stay                   prometheus.Counter

	store storeCollector
}

// New creates parley's metrics and registers them with reg. A nil reg means
// a fresh private registry (what tests and a single node's /metrics want);
// pass prometheus.DefaultRegisterer to add them to the process-wide one,
// which also carries the Go runtime and process collectors.
//
// New panics if reg already holds metrics of the same names, as
// prometheus.MustRegister does: that is a wiring mistake made at start-up,
// never a run-time condition.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{}
	switch r := reg.(type) {
	case nil:
		pr := prometheus.NewRegistry()
		reg, m.gatherer = pr, pr
	case prometheus.Gatherer:
		m.gatherer = r
	default:
		m.gatherer = prometheus.DefaultGatherer
	}
	m.activeCalls = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "active_calls",
		Help: "Calls in progress, by phase (ai, queued, briefing, bridged, wrapup, ending).",
	}, []string{"phase"})
	m.callsStarted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "calls_started_total",
		Help: "Calls answered, by channel.",
	}, []string{"channel"})
	m.callsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "calls_total",
		Help: "Calls ended, by channel and outcome.",
	}, []string{"channel", "outcome"})
	m.callDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "call_duration_seconds",
		Help:    "Duration of ended calls, answer to hang-up.",
		Buckets: []float64{5, 15, 30, 60, 120, 180, 300, 600, 900, 1800, 3600},
	})
	m.turns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "turns_total",
		Help: "Turns recorded, by speaker.",
	}, []string{"speaker"})
	m.interrupted = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "turns_interrupted_total",
		Help: "AI turns cut short by the caller barging in.",
	})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "stage_latency_seconds",
		Help:    "Latency per pipeline stage: endpointing, stt, llm_first_token, tts_first_audio, end_to_end.",
		Buckets: LatencyBuckets,
	}, []string{"stage"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "escalation_decisions_total",
		Help: "Escalation decisions taken after caller turns, by decision (transfer or stay).",
	}, []string{"decision"})
	m.reasons = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "escalation_reasons_total",
		Help: "Reasons given by escalation decisions, by reason and decision.",
	}, []string{"reason", "decision"})
	m.queueLength = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "queue_length",
		Help: "Callers waiting for a human agent.",
	})
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "queue_wait_seconds",
		Help:    "Time callers waited for a human agent (answered or not).",
		Buckets: QueueWaitBuckets,
	})
	m.timeToHuman = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "time_to_human_seconds",
		Help:    "From the transfer decision to the agent's audio connected.",
		Buckets: QueueWaitBuckets,
	})
	m.playoutLate = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "playout_late_frames_total",
		Help: "Outbound playout ticks that came more than a frame late.",
	})
	m.playoutDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "playout_dropped_frames_total",
		Help: "Outbound 20 ms frames dropped because the playout queue was full.",
	})
	m.inboundDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "inbound_dropped_frames_total",
		Help: "Inbound caller frames dropped because the dialog loop fell behind.",
	})
	m.digitsDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "inbound_dropped_digits_total",
		Help: "Keypad digits dropped because the dialog loop fell behind.",
	})
	m.dialogEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "dialog_events_total",
		Help: "Turn-taking events: utterances, barge_ins, blips, backchannels, noise, fillers.",
	}, []string{"event"})
	m.stageFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "dialog_failures_total",
		Help: "Failures the dialog loop recovered from, by stage (stt, llm, tts).",
	}, []string{"stage"})
	m.providerErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "provider_errors_total",
		Help: "Errors returned by speech and language providers, by provider and stage.",
	}, []string{"provider", "stage"})
	m.store.init()

	reg.MustRegister(m.activeCalls, m.callsStarted, m.callsEnded, m.callDuration, m.turns,
		m.interrupted, m.latency, m.decisions, m.reasons, m.queueLength, m.queueWait, m.timeToHuman,
		m.playoutLate, m.playoutDropped, m.inboundDropped, m.digitsDropped, m.dialogEvents,
		m.stageFailures, m.providerErrors, &m.store)

	m.callerTurns = m.turns.WithLabelValues(string(parley.SpeakerCaller))
	m.aiTurns = m.turns.WithLabelValues(string(parley.SpeakerAI))
	m.agentTurns = m.turns.WithLabelValues(string(parley.SpeakerAgent))
	for _, s := range Stages {
		m.latency.WithLabelValues(s)
	}
	m.endToEnd = m.latency.WithLabelValues(StageEndToEnd)
	m.endpointing = m.latency.WithLabelValues(StageEndpointing)
	m.transfer = m.decisions.WithLabelValues("transfer")
	m.stay = m.decisions.WithLabelValues("stay")
	return m
}

// Handler serves the metrics in the Prometheus exposition format (GET
// /metrics), negotiating text, OpenMetrics and gzip with the scraper.
func (m *Metrics) Handler() fiber.Handler {
	h := fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
	}))
	return func(c *fiber.Ctx) error {
		h(c.Context())
		return nil
	}
}

// Gatherer returns the registry the metrics are served from.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.gatherer }

// CallStarted counts an answered call and adds it to the active calls in
// phase (the switchboard's first phase, "ai").
func (m *Metrics) CallStarted(channel parley.Channel, phase string) {
	m.callsStarted.WithLabelValues(string(channel)).Inc()
	m.activeCalls.WithLabelValues(phase).Inc()
}

// CallPhase moves an active call from one phase to another (ai → queued →
// bridged …), so parley_active_calls shows where calls are now.
func (m *Metrics) CallPhase(from, to string) {
	if from == to {
		return
	}
	m.activeCalls.WithLabelValues(from).Dec()
	m.activeCalls.WithLabelValues(to).Inc()
}

// CallEnded counts an ended call by channel and outcome, removes it from
// the active calls of phase (the phase it was in last) and observes its
// duration (zero or negative durations are not observed).
func (m *Metrics) CallEnded(channel parley.Channel, outcome parley.Outcome, phase string, duration time.Duration) {
	m.callsEnded.WithLabelValues(string(channel), string(outcome)).Inc()
	m.activeCalls.WithLabelValues(phase).Dec()
	if duration > 0 {
		m.callDuration.Observe(duration.Seconds())
	}
}

// Turn counts a recorded turn and, for caller speech turns, observes the
// endpointing latency (End − EndOfSpeech) and the end-to-end response
// latency (FirstAudio − EndOfSpeech, parley.Turn.Latency).
func (m *Metrics) Turn(t parley.Turn) {
	switch t.Speaker {
	case parley.SpeakerCaller:
		m.callerTurns.Inc()
		if !t.EndOfSpeech.IsZero() {
			if d := t.End.Sub(t.EndOfSpeech); !t.End.IsZero() && d >= 0 {
				m.endpointing.Observe(d.Seconds())
			}
			if d := t.Latency(); d > 0 {
				m.endToEnd.Observe(d.Seconds())
			}
		}
	case parley.SpeakerAI:
		m.aiTurns.Inc()
		if t.Interrupted {
			m.interrupted.Inc()
		}
	case parley.SpeakerAgent:
		m.agentTurns.Inc()
	default:
		m.turns.WithLabelValues(string(t.Speaker)).Inc()
	}
}

// Decision counts one escalation decision and each of its reasons
// (escalation.Reason values as strings).
func (m *Metrics) Decision(reasons []string, transfer bool) {
	decision := "stay"
	if transfer {
		m.transfer.Inc()
		decision = "transfer"
	} else {
		m.stay.Inc()
	}
	for _, r := range reasons {
		m.reasons.WithLabelValues(r, decision).Inc()
	}
}

// StageLatency observes one latency of a pipeline stage (use the Stage
// constants). Negative durations are clock artefacts and are ignored.
func (m *Metrics) StageLatency(stage string, d time.Duration) {
	if d < 0 {
		return
	}
	switch stage {
	case StageEndToEnd:
		m.endToEnd.Observe(d.Seconds())
	case StageEndpointing:
		m.endpointing.Observe(d.Seconds())
	default:
		m.latency.WithLabelValues(stage).Observe(d.Seconds())
	}
}

// QueueLength sets the number of callers waiting for an agent.
func (m *Metrics) QueueLength(n int) { m.queueLength.Set(float64(n)) }

// QueueWait observes how long a caller waited for an agent, when the wait
// ends (answered, abandoned or sent to callback).
func (m *Metrics) QueueWait(d time.Duration) {
	if d >= 0 {
		m.queueWait.Observe(d.Seconds())
	}
}

// TimeToHuman observes a warm transfer: decision to the agent's audio connected.
func (m *Metrics) TimeToHuman(d time.Duration) {
	if d >= 0 {
		m.timeToHuman.Observe(d.Seconds())
	}
}

// MediaStats adds one call's media-path losses, reported once when the call
// ends: playout ticks that came late, outbound frames dropped because the
// playout queue was full, and inbound frames dropped because the dialog
// loop fell behind.
func (m *Metrics) MediaStats(late, dropped, inDropped uint64) {
	m.playoutLate.Add(float64(late))
	m.playoutDropped.Add(float64(dropped))
	m.inboundDropped.Add(float64(inDropped))
}

// SessionStats adds a finished dialog session's counters (dialog.Stats):
// inbound drops, turn-taking events and the failures the loop recovered
// from. Call it once per session, when Run has returned.
func (m *Metrics) SessionStats(st dialog.Stats) {
	m.inboundDropped.Add(float64(st.FramesDropped))
	m.digitsDropped.Add(float64(st.DigitsDropped))
	add := func(vec *prometheus.CounterVec, label string, n uint64) {
		if n > 0 {
			vec.WithLabelValues(label).Add(float64(n))
		}
	}
	add(m.dialogEvents, "utterance", st.Utterances)
	add(m.dialogEvents, "barge_in", st.BargeIns)
	add(m.dialogEvents, "blip", st.Blips)
	add(m.dialogEvents, "backchannel", st.Backchannels)
	add(m.dialogEvents, "noise", st.Noise)
	add(m.dialogEvents, "filler", st.Fillers)
	add(m.stageFailures, "stt", st.ASRFailures)
	add(m.stageFailures, "llm", st.NLUFailures)
	add(m.stageFailures, "tts", st.TTSFailures)
}

// ProviderError counts an error returned by a provider (e.g. "openai",
// "sphinx", "flite") at a stage ("stt", "llm", "tts").
func (m *Metrics) ProviderError(provider, stage string) {
	m.providerErrors.WithLabelValues(provider, stage).Inc()
}

// WatchStore makes every scrape read the store's write-queue counters from
// f (parley_store_writes_total{result}, parley_store_pending_writes). A
// later call replaces f; nil stops reporting them.
func (m *Metrics) WatchStore(f func() StoreCounters) {
	if f == nil {
		m.store.f.Store(nil)
		return
	}
	m.store.f.Store(&f)
}

// storeCollector reads the store's counters at scrape time, so the store
// needs no knowledge of metrics and no counter can drift from its source.
type storeCollector struct {
	f       atomic.Pointer[func() StoreCounters]
	writes  *prometheus.Desc
	pending *prometheus.Desc
}

func (c *storeCollector) init() {
	c.writes = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "store", "writes_total"),
		"Store writes handled by the asynchronous queue, by result (written, dropped, failed).",
		[]string{"result"}, nil)
	c.pending = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "store", "pending_writes"),
		"Store writes queued and not yet applied.", nil, nil)
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.writes
	ch <- c.pending
}

// Collect implements prometheus.Collector.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	fp := c.f.Load()
	if fp == nil {
		return
	}
	st := (*fp)()
	ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(st.Written), "written")
	ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(st.Dropped), "dropped")
	ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(st.Failed), "failed")
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(st.Pending))
}

// Observer counts a dialog session's live events as they happen; its
// OnEvent is meant for dialog.Hooks.OnEvent (chain it with other consumers).
// SessionStats gives the same totals at the end of a call; use one or the
// other for the turn-taking counters, not both.
type Observer struct {
	speechStart, bargeIn prometheus.Counter
	ignored              *prometheus.CounterVec
	ignoredCommon        [4]prometheus.Counter // blip, dtmf tone, backchannel, noise
	m                    *Metrics
}

// Observer returns an event observer sharing m's counters; one Observer may
// serve many sessions at once.
func (m *Metrics) Observer() *Observer {
	o := &Observer{
		speechStart: m.dialogEvents.WithLabelValues("utterance"),
		bargeIn:     m.dialogEvents.WithLabelValues("barge_in"),
		ignored:     m.dialogEvents,
		m:           m,
	}
	o.ignoredCommon[0] = m.dialogEvents.WithLabelValues("blip")
	o.ignoredCommon[1] = m.dialogEvents.WithLabelValues("dtmf_tone")
	o.ignoredCommon[2] = m.dialogEvents.WithLabelValues("backchannel")
	o.ignoredCommon[3] = m.dialogEvents.WithLabelValues("noise")
	return o
}

// OnEvent counts one dialog event: speech starts as utterances, barge-ins,
// and ignored speech by why it was ignored. It does not allocate.
func (o *Observer) OnEvent(e dialog.Event) {
	switch e.Kind {
	case dialog.EventSpeechStart:
		o.speechStart.Inc()
	case dialog.EventBargeIn:
		o.bargeIn.Inc()
	case dialog.EventIgnored:
		switch e.Text {
		case "blip":
			o.ignoredCommon[0].Inc()
		case "dtmf tone":
			o.ignoredCommon[1].Inc()
		case "backchannel":
			o.ignoredCommon[2].Inc()
		case "noise":
			o.ignoredCommon[3].Inc()
		default:
			// Free-text reasons would make an unbounded label set.
			o.ignored.WithLabelValues("ignored_other").Inc()
		}
	}
}
