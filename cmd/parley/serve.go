package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/configs"
	"github.com/parley-ai/parley/dialog"
	"github.com/parley-ai/parley/escalation"
	mwebrtc "github.com/parley-ai/parley/media/webrtc"
	"github.com/parley-ai/parley/redact"
	"github.com/parley-ai/parley/store"
	"github.com/parley-ai/parley/store/postgres"
	"github.com/parley-ai/parley/store/sqlite"
	"github.com/parley-ai/parley/switchboard"
	"github.com/parley-ai/parley/telephony/twilio"
	twebrtc "github.com/parley-ai/parley/telephony/webrtc"
	"github.com/parley-ai/parley/web"
	"github.com/parley-ai/parley/web/api"
	"github.com/parley-ai/parley/web/auth"
	"github.com/parley-ai/parley/web/console"
	"github.com/parley-ai/parley/web/dashboard"
	"github.com/parley-ai/parley/web/metrics"
)

// drainTimeout bounds how long a stopping server lets live calls finish.
const drainTimeout = 30 * time.Second

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (keys as in configs/default.yaml)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := configs.Load(*cfgPath, os.Getenv)
	if err != nil {
		return err
	}
	log := serverLogger(stderr, cfg.LogLevel)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv, err := newServer(ctx, cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	log.Info().Str("listen", ln.Addr().String()).Str("voice_webhook", cfg.PublicURL+twilio.VoicePath).Msg("parley is answering calls")
	return srv.serve(ctx, ln)
}

// pii is the redaction every server applies to stored turns and logs.
var pii = redact.New(redact.Policy{})

// serverLogger writes JSON logs, or readable ones on a terminal, with card
// numbers and similar removed from every string field.
func serverLogger(w io.Writer, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
		}
	}
	return zerolog.New(pii.LogWriter(w)).Level(lvl).With().Timestamp().Logger()
}

// server is one parley node: engines, store, switchboard and the HTTP app.
type server struct {
	cfg     *configs.Config
	log     zerolog.Logger
	eng     *engines
	base    parley.Store // the database
	store   *store.Async // non-blocking writes in front of it
	sb      *switchboard.Switchboard
	metrics *metrics.Metrics
	tw      *twilio.Server
	wr      *twebrtc.Server
	health  *web.Health
	// With PostgreSQL, the nodes share the desk and talk over the bus.
	bus  *postgres.Bus
	desk *postgres.Desk
}

func newServer(ctx context.Context, cfg *configs.Config, log zerolog.Logger) (*server, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	base, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	eng, err := newEngines(cfg, log)
	if err != nil {
		base.Close()
		return nil, err
	}
	s := &server{cfg: cfg, log: log, eng: eng, base: base}
	s.store = store.NewAsync(base, store.AsyncOptions{Log: log})
	// A registry per server: tests run several servers in one process.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = metrics.New(reg)
	s.metrics.WatchStore(func() metrics.StoreCounters {
		st := s.store.Stats()
		return metrics.StoreCounters{Written: st.Written, Dropped: st.Dropped, Failed: st.Failed, Pending: st.Pending}
	})
	engs, err := remoteEngines(cfg, eng.dialog(), eng.kb, s.store, log)
	if err != nil {
		s.close()
		return nil, err
	}
	early := cfg.Dialog.EarlyEndSilence
	if early == 0 {
		early = -1 // dialog.Config: negative turns early ends off
	}
	sess := dialog.Config{
		EarlyEndSilence:  early,
		EndSilence:       cfg.Dialog.EndSilence,
		DigitsEndSilence: cfg.Dialog.DigitsEndSilence,
		YesNoEndSilence:  cfg.Dialog.YesNoEndSilence,
		NoInputTimeout:   cfg.Dialog.NoInputTimeout,
		BargeInMinSpeech: cfg.Dialog.BargeInMinSpeech,
		MaxCallDuration:  cfg.Dialog.MaxCallDuration,
	}
	if cfg.LLM.Enabled() {
		// A remote model is slower than the knowledge base: the caller hears
		// "one moment" before the first-token deadline, never dead air.
		sess.FillerAfter = 800 * time.Millisecond
	}
	peer := mwebrtc.Config{
		LoopbackOnly: cfg.WebRTC.Loopback,
		NAT1To1IPs:   cfg.WebRTC.NATIPs,
		PortMin:      cfg.WebRTC.PortMin,
		PortMax:      cfg.WebRTC.PortMax,
		Codecs:       cfg.WebRTC.Codecs,
		Log:          log,
	}
	agentPeer := peer
	agentPeer.Codecs = cfg.WebRTC.AgentCodecs
	router, nodes, err := s.joinCluster(ctx)
	if err != nil {
		s.close()
		return nil, err
	}
	s.sb = switchboard.New(engs, switchboard.Options{
		Router:  router,
		Bus:     s.clusterBus(),
		Nodes:   nodes,
		Session: sess,
		Policy:  escalation.DefaultPolicy(),
		Store:   s.store,
		Log:     log,
		Redact:  pii,
		Metrics: s.metrics,
		Desk:    escalation.DeskOptions{OfferTimeout: cfg.Queue.OfferTimeout, SkillWait: cfg.Queue.SkillWait},
		Queue: switchboard.QueueOptions{
			MaxWait:        cfg.Queue.MaxWait,
			AnnounceEvery:  cfg.Queue.AnnounceEvery,
			VoicemailMax:   cfg.Queue.VoicemailMax,
			Dir:            cfg.DataDir,
			WhisperSummary: cfg.Queue.WhisperSummary,
			Assist:         cfg.Queue.Assist,
		},
		Recording:          recordingOptions(cfg),
		Survey:             surveyOptions(cfg),
		Node:               cfg.Node,
		Peer:               agentPeer,
		Intents:            intentInfo(eng.kb),
		NoHumanTranscripts: !cfg.Queue.Transcribe,
	})
	registerMixerMetrics(reg, s.sb) // parley_mixer_* (bench_metrics.go)
	if s.bus != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "cluster", Name: "updates_dropped_total",
			Help: "Live updates about this node's calls that could not be sent to the other nodes (the database lagged or failed).",
		}, func() float64 { return float64(s.sb.ForwardDropped()) }))
	}
	s.health = web.NewHealth(s.sb.Active)
	s.tw, err = twilio.NewServer(twilio.Config{
		PublicURL:  cfg.PublicURL,
		AuthToken:  cfg.Twilio.AuthToken,
		AccountSID: cfg.Twilio.AccountSID,
		APIBaseURL: cfg.Twilio.APIBaseURL,
		OnStatus:   s.onStatus,
	}, func(ctx context.Context, leg *twilio.Leg) { s.sb.Handle(ctx, leg) }, log)
	if err != nil {
		s.close()
		return nil, err
	}
	s.wr, err = twebrtc.NewServer(twebrtc.Config{Peer: peer}, func(ctx context.Context, leg *twebrtc.Leg) { s.sb.Handle(ctx, leg) }, log)
	if err != nil {
		s.tw.Close()
		s.close()
		return nil, fmt.Errorf("webrtc: %w", err)
	}
	return s, nil
}

// joinCluster, on PostgreSQL, connects this node to the others: the bus
// (LISTEN/NOTIFY) and the shared desk. On SQLite it returns nothing: one
// node, its desk in memory.
func (s *server) joinCluster(ctx context.Context) (func(escalation.DeskOptions) escalation.Router, func(context.Context) ([]string, error), error) {
	pg, ok := s.base.(*postgres.Store)
	if !ok {
		return nil, nil, nil
	}
	bus, err := pg.Bus(ctx, s.cfg.Node)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: %w", err)
	}
	s.bus = bus
	router := func(opt escalation.DeskOptions) escalation.Router {
		s.desk = pg.NewDesk(bus, opt, func(what string, err error) {
			s.log.Error().Err(err).Msg("cluster: " + what)
		})
		return s.desk
	}
	nodes := func(ctx context.Context) ([]string, error) {
		live, err := pg.Nodes(ctx, time.Now().Add(-nodeStaleAfter))
		ids := make([]string, 0, len(live))
		for id := range live {
			ids = append(ids, id)
		}
		return ids, err
	}
	return router, nodes, nil
}

// clusterBus is the bus as the switchboard takes it (nil on one node).
func (s *server) clusterBus() parley.Bus {
	if s.bus == nil {
		return nil
	}
	return s.bus
}

// openStore opens PostgreSQL when configured, else SQLite in the data dir.
func openStore(ctx context.Context, cfg *configs.Config) (parley.Store, error) {
	if strings.HasPrefix(cfg.Store, "postgres") {
		st, err := postgres.Open(ctx, cfg.Store)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return st, nil
	}
	st, err := sqlite.Open(filepath.Join(cfg.DataDir, "parley.db"))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return st, nil
}

// onStatus records Twilio's call status callbacks as call events.
func (s *server) onStatus(ev twilio.StatusEvent) {
	data, err := json.Marshal(ev)
	if err != nil {
		return
	}
	_ = s.store.AppendEvent(context.Background(), parley.Event{CallID: ev.CallSID, At: time.Now(), Kind: "status", Data: data})
}

// serve answers on ln until ctx ends, then drains: no new calls, live calls
// get drainTimeout to finish, then everything is closed in order.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	app := web.New(s.health, s.log)
	app.Get("/metrics", s.metrics.Handler())
	// Console accounts live in the database itself (logins are not on the
	// media path, so they skip the async writer).
	users, ok := s.base.(parley.UserStore)
	if !ok {
		return fmt.Errorf("store %T keeps no users", s.base)
	}
	a := auth.New(users, auth.Config{PublicURL: s.cfg.PublicURL, Log: s.log})
	a.Register(app)                                     // POST /api/login, POST /api/logout, GET /api/me
	api.Calls(s.store, a, s.log)(app)                   // GET /api/calls, GET /api/calls/:id (supervisors)
	api.Recordings(recordingsDir(s.cfg), a, s.log)(app) // GET /api/calls/:id/recording.wav (supervisors)
	api.FeedbackRoutes(s.store, a, s.log)(app)          // POST /api/calls/:id/feedback (supervisors: "misunderstood")
	if cl, ok := s.base.(parley.Cluster); ok {
		// Calls a previous run of this node left open end now, with their
		// transcripts; then the node beats its heart and ends the calls of
		// any node whose heart stopped.
		if n, err := cl.EndNodeCalls(ctx, s.cfg.Node, time.Now(), "node restarted"); err != nil {
			return fmt.Errorf("store: %w", err)
		} else if n > 0 {
			s.log.Warn().Int("calls", n).Msg("calls left open by this node's previous run ended as dropped")
		}
		go s.heartbeat(ctx, cl, ln.Addr().String())
	}
	if s.cfg.Recording.Enabled || s.cfg.TranscriptRetention > 0 {
		go s.sweepRetention(ctx)
	}
	s.tw.Register(app)
	s.wr.Register(app) // GET /call (the customer page), POST /api/webrtc/call
	// GET /agent and /supervisor, their APIs and live event stream.
	cons := console.Register(app, s.sb, a, s.log)
	defer cons.Close()
	an, ok := s.base.(parley.Analytics)
	if !ok {
		return fmt.Errorf("store %T computes no KPIs", s.base)
	}
	if err := dashboard.Register(app, a, an, s.log); err != nil { // GET /dashboard, GET /api/kpis (supervisors)
		return err
	}
	if r, ok := s.base.(interface{ RefreshKPIs(context.Context) error }); ok {
		// Hourly rollups kept fresh, so a dashboard opened after a long
		// time does not rebuild many hours in one request.
		go func() {
			t := time.NewTicker(time.Minute)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if err := r.RefreshKPIs(ctx); err != nil && ctx.Err() == nil {
						s.log.Warn().Err(err).Msg("kpis: refresh")
					}
				}
			}
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- app.Listener(ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	s.health.SetDraining()
	s.log.Info().Int("active_calls", s.sb.Active()).Msg("draining")
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	if derr := s.sb.Drain(dctx); derr != nil {
		s.log.Warn().Err(derr).Msg("drain: calls were cut off")
	}
	cancel()
	cons.Close() // end the consoles' event streams so the app can shut down
	s.tw.Close()
	s.wr.Close()
	if serr := app.ShutdownWithTimeout(5 * time.Second); serr != nil && err == nil {
		err = serr
	}
	s.close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (s *server) close() {
	if s.sb != nil {
		s.sb.Close()
	}
	if s.desk != nil {
		s.desk.Close()
	}
	if s.bus != nil {
		s.bus.Close()
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.log.Warn().Err(err).Msg("store: close")
		}
	}
	if s.base != nil {
		s.base.Close()
	}
	if s.eng != nil {
		s.eng.close()
	}
}

// recordingsDir is where call recordings are kept.
func recordingsDir(cfg *configs.Config) string { return filepath.Join(cfg.DataDir, "recordings") }

// recordingOptions turns recording on when configured.
func recordingOptions(cfg *configs.Config) switchboard.RecordingOptions {
	if !cfg.Recording.Enabled {
		return switchboard.RecordingOptions{}
	}
	return switchboard.RecordingOptions{Dir: recordingsDir(cfg), Announcement: cfg.Recording.Announcement, URL: api.RecordingURL}
}

// sweepRetention deletes recordings and transcripts past their retention,
// at start-up and every hour, until ctx ends.
func (s *server) sweepRetention(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if s.cfg.Recording.Enabled {
			n, err := switchboard.SweepRecordings(ctx, recordingsDir(s.cfg), s.cfg.Recording.Retention, time.Now())
			if err != nil && ctx.Err() == nil {
				s.log.Warn().Err(err).Msg("retention: recordings sweep failed")
			} else if n > 0 {
				s.log.Info().Int("deleted", n).Dur("retention", s.cfg.Recording.Retention).Msg("retention: recordings deleted")
			}
		}
		if r := s.cfg.TranscriptRetention; r > 0 {
			n, err := s.store.ForgetBefore(ctx, time.Now().Add(-r))
			if err != nil && ctx.Err() == nil {
				s.log.Warn().Err(err).Msg("retention: transcripts sweep failed")
			} else if n > 0 {
				s.log.Info().Int("calls", n).Dur("retention", r).Msg("retention: old calls deleted")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// surveyOptions turns the post-call survey on when configured.
func surveyOptions(cfg *configs.Config) switchboard.SurveyOptions {
	if !cfg.Survey.Enabled {
		return switchboard.SurveyOptions{}
	}
	return switchboard.SurveyOptions{Prompt: cfg.Survey.Prompt, Thanks: cfg.Survey.Thanks}
}

// Node liveness: a node beats every heartbeatEvery; one silent for
// nodeStaleAfter is taken for dead and its open calls are ended.
const (
	heartbeatEvery = 5 * time.Second
	nodeStaleAfter = 30 * time.Second
)

// heartbeat keeps this node alive in the store and reaps dead nodes until ctx ends.
func (s *server) heartbeat(ctx context.Context, cl parley.Cluster, addr string) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		now := time.Now()
		if err := cl.Heartbeat(ctx, s.cfg.Node, addr, now); err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("cluster: heartbeat failed")
		}
		dead, n, err := cl.ReapNodes(ctx, now.Add(-nodeStaleAfter), now)
		if err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("cluster: reaping dead nodes failed")
		} else if len(dead) > 0 {
			s.log.Warn().Strs("nodes", dead).Int("calls", n).Msg("cluster: nodes stopped; their open calls ended as dropped")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
