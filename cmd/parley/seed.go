package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/configs"
	"github.com/parley-ai/parley/dialog/kb"
	"github.com/parley-ai/parley/store"
	"github.com/parley-ai/parley/store/postgres"
	"github.com/parley-ai/parley/store/sqlite"
)

const seedUsage = `usage: parley bench seed --calls N [--store postgres://... | --data-dir DIR] [--days D] [--seed S]
Writes N made-up calls (turns, escalation decisions, queue, transfers,
surveys, repeat callers) spread over the D days before now, then times the
KPI query over them and prints {"calls", "seed_s", "rollup_s", "kpi_ms", ...}.`

// seedBatch is how many calls go into one write transaction.
const seedBatch = 500

// seedResult is what bench seed prints.
type seedResult struct {
	Calls int    `json:"calls"`
	Store string `json:"store"` // "sqlite" or "postgres"
	// Writers is how many write transactions ran at once.
	Writers int     `json:"writers"`
	SeedS   float64 `json:"seed_s"`
	// RollupS is the first rebuild of the hourly KPI rollups over every
	// seeded hour (a server does it little by little as calls come in).
	RollupS float64 `json:"rollup_s"`
	// KPIMS is the median of the timed KPI queries over the whole period
	// (rollups up to date), KPIMaxMS the slowest.
	KPIMS    float64 `json:"kpi_ms"`
	KPIMaxMS float64 `json:"kpi_max_ms"`
	KPIRuns  int     `json:"kpi_runs"`
	// From and To are the seeded period, the one the KPI query covers.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// A few numbers of the report, to see the data is plausible.
	ContainmentRate float64 `json:"containment_rate"`
	EscalationRate  float64 `json:"escalation_rate"`
	RepeatRate      float64 `json:"repeat_rate"`
	TTHP50MS        float64 `json:"time_to_human_p50_ms"`
}

// runBenchSeed is "parley bench seed".
func runBenchSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, seedUsage); fs.PrintDefaults() }
	n := fs.Int("calls", 1000, "calls to write")
	storeURL := fs.String("store", "", "PostgreSQL URL (postgres://...); empty: SQLite in --data-dir")
	dataDir := fs.String("data-dir", "", "directory of the SQLite file parley.db (default ./data)")
	days := fs.Int("days", 30, "the calls are spread over this many days before now")
	runs := fs.Int("runs", 5, "how many times to time the KPI query")
	seed := fs.Uint64("seed", 1, "random seed (the same seed writes the same calls, with new IDs)")
	writers := fs.Int("writers", 0, "concurrent write transactions (default: 1 on SQLite, which has one writer, 4 on PostgreSQL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("bench seed: unexpected argument %q", fs.Arg(0))
	}
	if *n < 1 || *n > 50_000_000 || *days < 1 || *days > 3*365 || *runs < 1 || *runs > 100 || *writers < 0 || *writers > 64 {
		return errors.New("bench seed: --calls 1-50000000, --days 1-1095, --runs 1-100, --writers 0-64")
	}
	if *storeURL != "" && *dataDir != "" {
		return errors.New("bench seed: give --store or --data-dir, not both")
	}
	st, kind, err := openSeedStore(ctx, *storeURL, *dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	an, ok := st.(parley.Analytics)
	if !ok {
		return fmt.Errorf("bench seed: store %T computes no KPIs", st)
	}
	g, err := newSeeder(*seed)
	if err != nil {
		return err
	}
	to := time.Now().UTC().Truncate(time.Hour)
	from := to.Add(-time.Duration(*days) * 24 * time.Hour)
	if *writers == 0 {
		*writers = 1
		if kind == "postgres" {
			*writers = 4
		}
	}
	res := seedResult{Calls: *n, Store: kind, Writers: *writers, From: from, To: to, KPIRuns: *runs}

	start := time.Now()
	if err := g.write(ctx, st, *n, *writers, from, to, stderr); err != nil {
		return err
	}
	res.SeedS = seedRound(time.Since(start).Seconds())

	if r, ok := st.(interface{ RefreshKPIs(context.Context) error }); ok {
		start = time.Now()
		if err := r.RefreshKPIs(ctx); err != nil {
			return fmt.Errorf("bench seed: %w", err)
		}
		res.RollupS = seedRound(time.Since(start).Seconds())
	}
	var times []float64
	var rep parley.KPIReport
	for range *runs {
		start = time.Now()
		rep, err = an.KPIs(ctx, parley.KPIQuery{From: from, To: to})
		if err != nil {
			return fmt.Errorf("bench seed: %w", err)
		}
		times = append(times, float64(time.Since(start).Microseconds())/1000)
	}
	sort.Float64s(times)
	res.KPIMS, res.KPIMaxMS = seedRound(times[len(times)/2]), seedRound(times[len(times)-1])
	res.ContainmentRate, res.EscalationRate = seedRound(rep.ContainmentRate), seedRound(rep.EscalationRate)
	res.RepeatRate, res.TTHP50MS = seedRound(rep.Repeats.Rate), rep.TimeToHuman.P50MS
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

func seedRound(v float64) float64 { return math.Round(v*1000) / 1000 }

// openSeedStore opens PostgreSQL at url, or SQLite in dir.
func openSeedStore(ctx context.Context, url, dir string) (parley.Store, string, error) {
	if url != "" {
		if !strings.HasPrefix(url, "postgres") {
			return nil, "", errors.New("bench seed: --store must be a postgres:// URL")
		}
		st, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, "", fmt.Errorf("bench seed: %w", err)
		}
		return st, "postgres", nil
	}
	if dir == "" {
		dir = "data"
	}
	st, err := sqlite.Open(filepath.Join(dir, "parley.db"))
	if err != nil {
		return nil, "", fmt.Errorf("bench seed: %w", err)
	}
	return st, "sqlite", nil
}

// seedIntent is an intent of the sample knowledge base with how callers
// ask for it and how well the assistant tends to understand it.
type seedIntent struct {
	name     string
	examples []string
	human    bool    // human-only: always escalated
	clarity  float64 // mean NLU confidence of its caller turns
	weight   float64 // how often callers ask for it
}

// seeder makes up calls; it is deterministic for a seed, except for the
// call IDs, which are new on every run.
type seeder struct {
	rnd     *mrand.Rand
	intents []seedIntent
	cum     []float64 // cumulative intent weights
	prefix  string    // call ID prefix of this run
	recent  []recentCaller
	nextNum int
}

type recentCaller struct {
	number string
	at     time.Time
}

func newSeeder(seed uint64) (*seeder, error) {
	base, err := kb.LoadFS(configs.KB())
	if err != nil {
		return nil, fmt.Errorf("bench seed: knowledge base: %w", err)
	}
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("bench seed: %w", err)
	}
	g := &seeder{rnd: mrand.New(mrand.NewPCG(seed, 0x5eed)), prefix: "SD" + hex.EncodeToString(id[:])}
	var total float64
	for _, in := range base.Intents {
		if len(in.Examples) == 0 {
			continue
		}
		si := seedIntent{name: in.Name, examples: in.Examples, human: in.Human,
			clarity: 0.55 + 0.4*g.rnd.Float64(), weight: math.Exp(2 * g.rnd.NormFloat64() * 0.6)}
		g.intents = append(g.intents, si)
		total += si.weight
		g.cum = append(g.cum, total)
	}
	if len(g.intents) == 0 {
		return nil, errors.New("bench seed: the knowledge base has no intents")
	}
	return g, nil
}

func (g *seeder) intent() *seedIntent {
	x := g.rnd.Float64() * g.cum[len(g.cum)-1]
	i := sort.SearchFloat64s(g.cum, x)
	return &g.intents[min(i, len(g.intents)-1)]
}

// lognormal returns a duration with the given median and spread.
func (g *seeder) lognormal(median time.Duration, sigma float64) time.Duration {
	return time.Duration(float64(median) * math.Exp(sigma*g.rnd.NormFloat64())).Round(time.Millisecond)
}

// startTimes are n call starts in [from, to), in order, busier by day.
func (g *seeder) startTimes(n int, from, to time.Time) []time.Time {
	out := make([]time.Time, 0, n)
	span := to.Sub(from)
	for len(out) < n {
		t := from.Add(time.Duration(g.rnd.Int64N(int64(span))))
		h := float64(t.Hour()) + float64(t.Minute())/60
		// Office hours peak around 11:00 and 15:00, quiet at night.
		load := 0.08 + math.Exp(-math.Pow((h-11)/2.5, 2)) + 0.8*math.Exp(-math.Pow((h-15)/2.5, 2))
		if g.rnd.Float64()*1.1 < load {
			out = append(out, t.Truncate(time.Millisecond))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// number is the caller of a call at t: one in eight called in the last
// few days already.
func (g *seeder) number(t time.Time) string {
	for len(g.recent) > 0 && t.Sub(g.recent[0].at) > 5*24*time.Hour {
		g.recent = g.recent[1:]
	}
	if len(g.recent) > 0 && g.rnd.IntN(8) == 0 {
		return g.recent[g.rnd.IntN(len(g.recent))].number
	}
	g.nextNum++
	num := fmt.Sprintf("+1555%07d", g.nextNum%10_000_000)
	if g.rnd.IntN(4) == 0 { // some will call again
		g.recent = append(g.recent, recentCaller{num, t})
	}
	return num
}

// write stores n calls in [from, to), seedBatch calls per transaction,
// with up to writers transactions at once. The calls are made in time
// order by this goroutine; with several writers, a caller's call in one
// batch may not yet see their call in a batch still being written, so a
// few repeat contacts at batch edges go uncounted.
func (g *seeder) write(ctx context.Context, st parley.Store, n, writers int, from, to time.Time, stderr io.Writer) error {
	starts := g.startTimes(n, from, to)
	b, batched := st.(store.Batcher)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []store.Write, writers)
	errc := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for ws := range batches {
				var err error
				if batched {
					if err = b.WriteBatch(ctx, ws); err != nil {
						err = fmt.Errorf("bench seed: %w", err)
					}
				} else {
					err = writeOneByOne(ctx, st, ws)
				}
				if err != nil {
					errc <- err
					cancel()
					for range batches { // let the producer finish
					}
					return
				}
			}
		})
	}
	produce := func() error {
		defer close(batches)
		var ws []store.Write
		last := time.Now()
		for i, t := range starts {
			ws = g.call(ws, fmt.Sprintf("%s%08d", g.prefix, i), t)
			if (i+1)%seedBatch == 0 || i == len(starts)-1 {
				select {
				case batches <- ws:
				case <-ctx.Done():
					return ctx.Err()
				}
				ws = nil
				if time.Since(last) > 10*time.Second {
					fmt.Fprintf(stderr, "bench seed: %d of %d calls\n", i+1, n)
					last = time.Now()
				}
			}
		}
		return nil
	}
	perr := produce()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	return perr
}

func writeOneByOne(ctx context.Context, st parley.Store, ws []store.Write) error {
	for _, w := range ws {
		var err error
		switch {
		case w.CreateCall != nil:
			err = st.CreateCall(ctx, *w.CreateCall)
		case w.EndCall != nil:
			err = st.EndCall(ctx, w.EndCall.ID, w.EndCall.EndedAt, w.EndCall.Outcome, w.EndCall.Reason)
		case w.AppendTurn != nil:
			err = st.AppendTurn(ctx, *w.AppendTurn)
		case w.AppendEvent != nil:
			err = st.AppendEvent(ctx, *w.AppendEvent)
		}
		if err != nil {
			return fmt.Errorf("bench seed: %w", err)
		}
	}
	return nil
}

// aiReplies are what the assistant says, by turn; the texts matter only
// for the transcript search.
var aiReplies = []string{
	"Thanks, I can help with that.",
	"Let me check that for you.",
	"Is there anything else I can help you with?",
	"I'm sorry, I didn't quite catch that. Could you say it another way?",
}

// call appends the writes of one made-up call started at t.
func (g *seeder) call(ws []store.Write, id string, t time.Time) []store.Write {
	in := g.intent()
	c := parley.Call{ID: id, Channel: parley.ChannelTwilio, From: g.number(t), To: "+18005550100", StartedAt: t}
	if g.rnd.IntN(10) == 0 {
		c.Channel = parley.ChannelWebRTC
	}
	now := t
	say := func(sp parley.Speaker, text string, d time.Duration, sig *parley.Signals) {
		tu := parley.Turn{Seq: len(c.Turns), Speaker: sp, Text: text, Start: now, End: now.Add(d), Signals: sig}
		if sp == parley.SpeakerCaller {
			tu.EndOfSpeech = tu.End
			tu.FirstAudio = tu.End.Add(g.lognormal(900*time.Millisecond, 0.3))
		}
		c.Turns = append(c.Turns, tu)
		now = tu.End.Add(g.lognormal(time.Second, 0.4))
	}
	say(parley.SpeakerAI, "Hello, thanks for calling Northwind Pay. How can I help?", 3*time.Second, nil)

	// How the conversation goes: understood, or not, or the caller wants a person.
	var reasons []string
	clarity := in.clarity
	if g.rnd.IntN(5) == 0 {
		clarity -= 0.35 // a noisy line, an accent the recognizer struggles with
	}
	callerTurns := 1 + g.rnd.IntN(3)
	low := 0
	for k := range callerTurns {
		nlu := math.Min(0.99, math.Max(0.02, clarity+0.15*g.rnd.NormFloat64()))
		asr := math.Min(0.99, math.Max(0.05, 0.85+0.1*g.rnd.NormFloat64()))
		if nlu < parley.LowNLUConfidence || asr < parley.LowASRConfidence {
			low++
		} else {
			low = 0
		}
		sig := &parley.Signals{Intent: in.name, ASRConfidence: seedRound(asr), NLUConfidence: seedRound(nlu),
			AITime: now.Sub(t), HumanOnly: in.human}
		if g.rnd.IntN(25) == 0 {
			sig.AskedForHuman = true
		}
		say(parley.SpeakerCaller, in.examples[g.rnd.IntN(len(in.examples))], g.lognormal(2500*time.Millisecond, 0.4), sig)
		switch {
		case in.human:
			reasons = []string{"human_only_intent"}
		case sig.AskedForHuman:
			reasons = []string{"asked_for_human"}
		case low >= 2:
			reasons = []string{"low_confidence"}
			if g.rnd.IntN(3) == 0 {
				reasons = append(reasons, "frustration")
			}
		}
		if reasons != nil {
			break
		}
		reply := aiReplies[min(k, len(aiReplies)-2)]
		if low > 0 {
			reply = aiReplies[len(aiReplies)-1]
		}
		say(parley.SpeakerAI, reply, g.lognormal(5*time.Second, 0.4), nil)
	}
	if reasons == nil && g.rnd.IntN(25) == 0 {
		reasons = []string{"going_in_circles"}
	}

	ws = append(ws, store.Write{CreateCall: &c})
	event := func(at time.Time, kind string, data any) {
		b, _ := json.Marshal(data) // maps and slices of strings: cannot fail
		ws = append(ws, store.Write{AppendEvent: &parley.Event{CallID: id, At: at, Kind: kind, Data: b}})
	}
	end := func(at time.Time, o parley.Outcome) {
		ws = append(ws, store.Write{EndCall: &store.CallEnd{ID: id, EndedAt: at, Outcome: o, Reason: "seeded"}})
		if o == parley.OutcomeResolved || o == parley.OutcomeEscalated {
			if g.rnd.IntN(10) < 3 { // three in ten answer the survey
				score := 5 - min(4, int(math.Abs(g.rnd.NormFloat64()*1.3)))
				if o == parley.OutcomeEscalated && g.rnd.IntN(3) == 0 {
					score = max(1, score-1)
				}
				event(at.Add(20*time.Second), "csat", map[string]any{"score": score})
			}
		}
	}

	r := g.rnd.Float64()
	switch {
	case reasons == nil && r < 0.93:
		end(now, parley.OutcomeResolved)
	case reasons == nil && r < 0.97:
		end(now, parley.OutcomeAbandoned) // hung up on the assistant
	case reasons == nil && r < 0.99:
		end(now, parley.OutcomeDropped)
	case reasons == nil:
		end(now, parley.OutcomeFailed)
	default:
		decided := now
		event(decided, "decision", map[string]any{"transfer": true, "reasons": reasons, "score": 1.2})
		event(decided.Add(time.Second), "queue", map[string]any{"state": "queued"})
		wait := g.lognormal(40*time.Second, 0.8)
		switch q := g.rnd.Float64(); {
		case q < 0.08: // gave up waiting
			at := decided.Add(wait + 30*time.Second)
			event(at, "queue", map[string]any{"state": "abandoned"})
			end(at, parley.OutcomeAbandoned)
		case q < 0.12:
			at := decided.Add(wait)
			event(at, "queue", map[string]any{"state": "callback"})
			event(at, "callback", map[string]any{"number": c.From})
			end(at.Add(5*time.Second), parley.OutcomeCallback)
		case q < 0.14:
			at := decided.Add(wait)
			dur := g.lognormal(25*time.Second, 0.4)
			event(at, "queue", map[string]any{"state": "voicemail"})
			event(at.Add(dur), "voicemail", map[string]any{"path": "voicemail/" + id + ".wav", "text": "please call me back", "duration_ms": dur.Milliseconds()})
			end(at.Add(dur), parley.OutcomeVoicemail)
		default:
			queued := decided.Add(time.Second)
			offered := queued.Add(wait)
			accepted := offered.Add(g.lognormal(3*time.Second, 0.5))
			connected := accepted.Add(g.lognormal(800*time.Millisecond, 0.3))
			agent := fmt.Sprintf("agent-%02d", g.rnd.IntN(40))
			event(connected, "transfer", map[string]any{"agent_id": agent, "agent": agent, "reasons": reasons,
				"decided_at": decided, "queued_at": queued, "offered_at": offered, "accepted_at": accepted, "connected_at": connected,
				"time_to_human_ms": connected.Sub(decided).Milliseconds(), "queue_wait_ms": offered.Sub(queued).Milliseconds()})
			at := connected.Add(g.lognormal(4*time.Minute, 0.6))
			event(at.Add(30*time.Second), "wrapup", map[string]any{"agent_id": agent, "disposition": "resolved", "notes": ""})
			end(at, parley.OutcomeEscalated)
		}
	}
	return ws
}
