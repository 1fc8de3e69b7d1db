package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-ai/parley/switchboard"
	"github.com/parley-ai/parley/web/metrics"
)

// mixerCollector exports the bridges' mixer counters (every conference,
// live and ended) on /metrics: operators see late mix cycles, and
// `parley bench bridges` reads them from a server in another process.
type mixerCollector struct {
	sb                      *switchboard.Switchboard
	cycles, late, starved   *prometheus.Desc
	dropped, frames, errors *prometheus.Desc
}

// registerMixerMetrics adds the mixer counters of sb to reg.
func registerMixerMetrics(reg prometheus.Registerer, sb *switchboard.Switchboard) {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "mixer", name), help, nil, nil)
	}
	reg.MustRegister(&mixerCollector{
		sb:      sb,
		cycles:  d("cycles_total", "20 ms mix cycles run by the calls' conferences."),
		late:    d("late_cycles_total", "Mix cycles run late, to catch up after a tick came more than a frame late."),
		starved: d("starved_total", "Times a party's input ran dry past concealment and went back to buffering."),
		dropped: d("dropped_samples_total", "Input samples dropped because a party's buffer was full."),
		frames:  d("frames_total", "Mixed frames written to parties."),
		errors:  d("write_errors_total", "Mixed frames a party's writer refused."),
	})
}

func (c *mixerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cycles, c.late, c.starved, c.dropped, c.frames, c.errors} {
		ch <- d
	}
}

func (c *mixerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.sb.MixerStats()
	for _, m := range []struct {
		d *prometheus.Desc
		v uint64
	}{{c.cycles, st.Mixes}, {c.late, st.JumpMixes}, {c.starved, st.Restarts}, {c.dropped, st.Dropped}, {c.frames, st.Frames}, {c.errors, st.WriteErrors}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v))
	}
}
