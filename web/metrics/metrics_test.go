package metrics_test

import (
	"compress/gzip"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/web/metrics"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp keeps one process-wide goroutine that refreshes the
		// cached Date header; it is started once and never stopped.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// fasthttp's worker-pool cleaner sleeps 10 s between sweeps and
		// exits on its next wake-up after Shutdown.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	)
}

// scrape serves m on a real listener, GETs /metrics like Prometheus does
// and parses the exposition text.
func scrape(t *testing.T, m *metrics.Metrics, header map[string]string) (map[string]*dto.MetricFamily, http.Header) {
	t.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/metrics", m.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Listener(ln) }()
	defer func() {
		if err := app.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("listener: %v", err)
		}
	}()

	req, err := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", resp.StatusCode)
	}
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams, resp.Header
}

// sample finds the metric of family name whose labels include want.
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("metric %s not exposed", name)
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("metric %s%v not exposed", name, want)
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return math.NaN()
}

func TestScrapeAfterCalls(t *testing.T) {
	m := metrics.New(nil)
	m.WatchStore(func() metrics.StoreCounters {
		return metrics.StoreCounters{Written: 40, Dropped: 2, Failed: 1, Pending: 3}
	})
	obs := m.Observer()

	// Two calls start; one moves to the queue, then both end.
	m.CallStarted(parley.ChannelTwilio, "ai")
	m.CallStarted(parley.ChannelWebRTC, "ai")
	m.CallStarted(parley.ChannelTwilio, "ai")
	m.CallPhase("ai", "queued")
	m.CallPhase("ai", "ai") // no-op
	m.QueueLength(1)
	m.QueueWait(12 * time.Second)
	m.CallEnded(parley.ChannelTwilio, parley.OutcomeEscalated, "queued", 90*time.Second)
	m.CallEnded(parley.ChannelWebRTC, parley.OutcomeResolved, "ai", 30*time.Second)

	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m.Turn(parley.Turn{Speaker: parley.SpeakerCaller, EndOfSpeech: t0, End: t0.Add(700 * time.Millisecond), FirstAudio: t0.Add(1200 * time.Millisecond)})
	m.Turn(parley.Turn{Speaker: parley.SpeakerCaller, EndOfSpeech: t0, End: t0.Add(650 * time.Millisecond), FirstAudio: t0.Add(80 * time.Millisecond)})
	m.Turn(parley.Turn{Speaker: parley.SpeakerCaller, DTMF: "1"}) // keypad: no latency
	m.Turn(parley.Turn{Speaker: parley.SpeakerAI, Interrupted: true})
	m.Turn(parley.Turn{Speaker: parley.SpeakerAI})
	m.Turn(parley.Turn{Speaker: parley.SpeakerAgent})

	m.StageLatency(metrics.StageSTT, 250*time.Millisecond)
	m.StageLatency(metrics.StageLLMFirstToken, 400*time.Millisecond)
	m.StageLatency(metrics.StageTTSFirstAudio, 30*time.Millisecond)
	m.StageLatency(metrics.StageTTSFirstAudio, -time.Second) // ignored

	m.Decision([]string{"low_confidence"}, false)
	m.Decision([]string{"asked_for_human", "frustration"}, true)
	m.Decision(nil, false)

	m.MediaStats(3, 5, 7)
	m.SessionStats(dialog.Stats{FramesDropped: 2, DigitsDropped: 1, BargeIns: 4, Fillers: 1, ASRFailures: 2, TTSFailures: 1})
	m.ProviderError("openai", "llm")
	m.ProviderError("openai", "llm")
	m.ProviderError("sphinx", "stt")

	obs.OnEvent(dialog.Event{Kind: dialog.EventSpeechStart})
	obs.OnEvent(dialog.Event{Kind: dialog.EventBargeIn})
	obs.OnEvent(dialog.Event{Kind: dialog.EventIgnored, Text: "blip"})
	obs.OnEvent(dialog.Event{Kind: dialog.EventIgnored, Text: "something new"})
	obs.OnEvent(dialog.Event{Kind: dialog.EventIgnored, Text: "noise"})
	obs.OnEvent(dialog.Event{Kind: dialog.EventState, State: dialog.StateThinking}) // not counted

	fams, _ := scrape(t, m, nil)

	counters := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"parley_active_calls", map[string]string{"phase": "ai"}, 1},
		{"parley_active_calls", map[string]string{"phase": "queued"}, 0},
		{"parley_calls_started_total", map[string]string{"channel": "twilio"}, 2},
		{"parley_calls_started_total", map[string]string{"channel": "webrtc"}, 1},
		{"parley_calls_total", map[string]string{"channel": "twilio", "outcome": "escalated"}, 1},
		{"parley_calls_total", map[string]string{"channel": "webrtc", "outcome": "resolved"}, 1},
		{"parley_turns_total", map[string]string{"speaker": "caller"}, 3},
		{"parley_turns_total", map[string]string{"speaker": "ai"}, 2},
		{"parley_turns_total", map[string]string{"speaker": "agent"}, 1},
		{"parley_turns_interrupted_total", nil, 1},
		{"parley_escalation_decisions_total", map[string]string{"decision": "stay"}, 2},
		{"parley_escalation_decisions_total", map[string]string{"decision": "transfer"}, 1},
		{"parley_escalation_reasons_total", map[string]string{"reason": "low_confidence", "decision": "stay"}, 1},
		{"parley_escalation_reasons_total", map[string]string{"reason": "asked_for_human", "decision": "transfer"}, 1},
		{"parley_escalation_reasons_total", map[string]string{"reason": "frustration", "decision": "transfer"}, 1},
		{"parley_queue_length", nil, 1},
		{"parley_playout_late_frames_total", nil, 3},
		{"parley_playout_dropped_frames_total", nil, 5},
		{"parley_inbound_dropped_frames_total", nil, 9},
		{"parley_inbound_dropped_digits_total", nil, 1},
		{"parley_dialog_events_total", map[string]string{"event": "barge_in"}, 5},
		{"parley_dialog_events_total", map[string]string{"event": "utterance"}, 1},
		{"parley_dialog_events_total", map[string]string{"event": "blip"}, 1},
		{"parley_dialog_events_total", map[string]string{"event": "ignored_other"}, 1},
		{"parley_dialog_events_total", map[string]string{"event": "filler"}, 1},
		{"parley_dialog_events_total", map[string]string{"event": "noise"}, 1},
		{"parley_dialog_failures_total", map[string]string{"stage": "stt"}, 2},
		{"parley_dialog_failures_total", map[string]string{"stage": "tts"}, 1},
		{"parley_provider_errors_total", map[string]string{"provider": "openai", "stage": "llm"}, 2},
		{"parley_provider_errors_total", map[string]string{"provider": "sphinx", "stage": "stt"}, 1},
		{"parley_store_writes_total", map[string]string{"result": "written"}, 40},
		{"parley_store_writes_total", map[string]string{"result": "dropped"}, 2},
		{"parley_store_writes_total", map[string]string{"result": "failed"}, 1},
		{"parley_store_pending_writes", nil, 3},
	}
	for _, c := range counters {
		if got := value(sample(t, fams, c.name, c.labels)); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if f := fams["parley_dialog_failures_total"]; len(f.GetMetric()) != 2 {
		t.Errorf("dialog failures: %d series, want 2 (zero counts are not created)", len(f.GetMetric()))
	}

	hists := []struct {
		stage      string
		count      uint64
		sum        float64
		le         float64 // an upper bound ...
		cumulative uint64  // ... and the observations at or below it
	}{
		{metrics.StageEndToEnd, 2, 1.28, 0.1, 1},
		{metrics.StageEndpointing, 2, 1.35, 0.5, 0},
		{metrics.StageSTT, 1, 0.25, 0.3, 1},
		{metrics.StageLLMFirstToken, 1, 0.4, 0.3, 0},
		{metrics.StageTTSFirstAudio, 1, 0.03, 0.025, 0},
	}
	for _, h := range hists {
		got := sample(t, fams, "parley_stage_latency_seconds", map[string]string{"stage": h.stage}).GetHistogram()
		if got.GetSampleCount() != h.count || math.Abs(got.GetSampleSum()-h.sum) > 1e-9 {
			t.Errorf("%s: count %d sum %v, want %d %v", h.stage, got.GetSampleCount(), got.GetSampleSum(), h.count, h.sum)
		}
		found := false
		for _, b := range got.GetBucket() {
			if b.GetUpperBound() == h.le {
				found = true
				if b.GetCumulativeCount() != h.cumulative {
					t.Errorf("%s le=%v: %d, want %d", h.stage, h.le, b.GetCumulativeCount(), h.cumulative)
				}
			}
		}
		if !found {
			t.Errorf("%s: no bucket le=%v", h.stage, h.le)
		}
	}
	if qw := fams["parley_queue_wait_seconds"].GetMetric()[0].GetHistogram(); qw.GetSampleCount() != 1 || qw.GetSampleSum() != 12 {
		t.Errorf("queue wait: count %d sum %v", qw.GetSampleCount(), qw.GetSampleSum())
	}
	if cd := fams["parley_call_duration_seconds"].GetMetric()[0].GetHistogram(); cd.GetSampleCount() != 2 || cd.GetSampleSum() != 120 {
		t.Errorf("call duration: count %d sum %v", cd.GetSampleCount(), cd.GetSampleSum())
	}
}

func TestScrapeFresh(t *testing.T) {
	// Every latency stage exists from the first scrape; the store is only
	// reported once watched.
	m := metrics.New(nil)
	fams, hdr := scrape(t, m, map[string]string{"Accept-Encoding": "gzip"})
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q", ct)
	}
	for _, s := range metrics.Stages {
		if n := sample(t, fams, "parley_stage_latency_seconds", map[string]string{"stage": s}).GetHistogram().GetSampleCount(); n != 0 {
			t.Errorf("%s: %d observations on a fresh registry", s, n)
		}
	}
	if _, ok := fams["parley_store_writes_total"]; ok {
		t.Error("store writes exposed before WatchStore")
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "parley_") {
			t.Errorf("metric %s lacks the parley_ prefix", name)
		}
		if f.GetHelp() == "" {
			t.Errorf("metric %s has no help", name)
		}
	}
	m.WatchStore(func() metrics.StoreCounters { return metrics.StoreCounters{Dropped: 9} })
	m.WatchStore(nil)
	fams, _ = scrape(t, m, nil)
	if _, ok := fams["parley_store_writes_total"]; ok {
		t.Error("store writes exposed after WatchStore(nil)")
	}
}

func TestOpenMetricsNegotiation(t *testing.T) {
	m := metrics.New(nil)
	m.CallStarted(parley.ChannelTwilio, "ai")
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/metrics", m.Handler())
	req, err := http.NewRequest(http.MethodGet, "/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("content type %q", ct)
	}
	if !strings.Contains(string(body), `parley_calls_started_total{channel="twilio"} 1`) || !strings.HasSuffix(string(body), "# EOF\n") {
		t.Errorf("openmetrics body:\n%s", body)
	}
}

func TestRegistererSharing(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.ProviderError("flite", "tts")
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range fams {
		if f.GetName() == "parley_provider_errors_total" {
			found = true
		}
	}
	if !found {
		t.Error("metrics not registered with the given registry")
	}
	if m.Gatherer() != reg {
		t.Error("Gatherer is not the given registry")
	}
	defer func() {
		if recover() == nil {
			t.Error("registering twice did not panic")
		}
	}()
	metrics.New(reg)
}

func BenchmarkTurn(b *testing.B) {
	m := metrics.New(nil)
	t0 := time.Now()
	turn := parley.Turn{Speaker: parley.SpeakerCaller, EndOfSpeech: t0, End: t0.Add(700 * time.Millisecond), FirstAudio: t0.Add(900 * time.Millisecond)}
	b.ReportAllocs()
	for b.Loop() {
		m.Turn(turn)
	}
}

func BenchmarkDecision(b *testing.B) {
	m := metrics.New(nil)
	reasons := []string{"low_confidence", "frustration"}
	b.ReportAllocs()
	for b.Loop() {
		m.Decision(reasons, false)
	}
}

func BenchmarkStageLatency(b *testing.B) {
	m := metrics.New(nil)
	b.ReportAllocs()
	for b.Loop() {
		m.StageLatency(metrics.StageSTT, 180*time.Millisecond)
	}
}

func BenchmarkCallLifecycle(b *testing.B) {
	m := metrics.New(nil)
	b.ReportAllocs()
	for b.Loop() {
		m.CallStarted(parley.ChannelTwilio, "ai")
		m.CallEnded(parley.ChannelTwilio, parley.OutcomeResolved, "ai", time.Minute)
	}
}

func BenchmarkObserver(b *testing.B) {
	o := metrics.New(nil).Observer()
	e := dialog.Event{Kind: dialog.EventBargeIn}
	b.ReportAllocs()
	for b.Loop() {
		o.OnEvent(e)
	}
}
