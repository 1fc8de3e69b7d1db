package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/parley-ai/parley"
)

var _ parley.Analytics = (*Store)(nil)

// sqlExecer runs a statement on the writer or in a transaction.
type sqlExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// sqlQuerier reads on a connection pool or in a transaction.
type sqlQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// prepared is an sqlExecer that runs the store's hot statements (those of
// prepareHot) prepared, bound to the transaction; SQLite then parses them,
// and compiles the triggers they fire, once per connection instead of once
// per call. Other statements run as they are.
type prepared struct {
	tx    *sql.Tx
	hot   map[string]*sql.Stmt
	bound map[*sql.Stmt]*sql.Stmt
}

func (s *Store) prepared(tx *sql.Tx) *prepared {
	return &prepared{tx: tx, hot: s.hot, bound: map[*sql.Stmt]*sql.Stmt{}}
}

// stmt is st bound to the transaction.
func (p *prepared) stmt(ctx context.Context, st *sql.Stmt) *sql.Stmt {
	b := p.bound[st]
	if b == nil {
		b = p.tx.StmtContext(ctx, st)
		p.bound[st] = b
	}
	return b
}

// ExecContext runs query, prepared when it is a hot one.
func (p *prepared) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st, ok := p.hot[query]; ok {
		return p.stmt(ctx, st).ExecContext(ctx, args...)
	}
	return p.tx.ExecContext(ctx, query, args...)
}

// hotSQL are the statements every call runs.
var hotSQL = []string{insertCallSQL, endCallSQL, markRepeatSQL, finishCallSQL, deleteIntentsSQL, callIntentsSQL,
	escalateSQL, reasonSQL, transferSQL, queueStateSQL, csatSQL}

// prepareHot prepares hotSQL on the writer.
func prepareHot(ctx context.Context, w *sql.DB) (map[string]*sql.Stmt, error) {
	hot := make(map[string]*sql.Stmt, len(hotSQL))
	for _, q := range hotSQL {
		st, err := w.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range hot {
				st.Close()
			}
			return nil, fmt.Errorf("sqlite: prepare %.40q...: %w", q, err)
		}
		hot[q] = st
	}
	return hot, nil
}

// markRepeatSQL links a new call to the latest call from the same number
// in the RepeatWindow before it (?1 id, ?2 number, ?3 start, ?4 window start).
const markRepeatSQL = `UPDATE calls SET repeat_of = p.id, repeat_intent = p.intent
FROM (SELECT id, intent FROM calls WHERE from_number = ?2 AND started_at >= ?4 AND started_at < ?3 AND id != ?1
	ORDER BY started_at DESC LIMIT 1) AS p
WHERE calls.id = ?1`

// markRepeat records whether c repeats an earlier contact.
func markRepeat(ctx context.Context, db sqlExecer, c parley.Call) error {
	if c.From == "" {
		return nil
	}
	start := c.StartedAt.UnixMilli()
	if _, err := db.ExecContext(ctx, markRepeatSQL, c.ID, c.From, start, start-parley.RepeatWindow.Milliseconds()); err != nil {
		return fmt.Errorf("sqlite: create call %s: repeat contact: %w", c.ID, err)
	}
	return nil
}

// understoodSQL is how one caller turn counts for the KPIs: only turns
// where something was said or keyed; low when the recognizer or the
// understanding was unsure about a request in scope (as escalation does).
const understoodSQL = `speaker = 'caller' AND signals IS NOT NULL AND (text != '' OR dtmf != '')`

var lowSQL = fmt.Sprintf(`(coalesce(json_extract(signals, '$.asr_confidence'), 0) < %g
	OR coalesce(json_extract(signals, '$.nlu_confidence'), 0) < %g)
	AND NOT coalesce(json_extract(signals, '$.out_of_scope'), 0)`, parley.LowASRConfidence, parley.LowNLUConfidence)

// finishCallSQL copies what the turns of an ended call tell the KPIs onto
// its row: its first intent, how many caller turns were not understood,
// and the intent of the call it repeats (known by now).
var finishCallSQL = `UPDATE calls SET
	intent = coalesce((SELECT json_extract(signals, '$.intent') FROM turns
		WHERE call_id = ?1 AND speaker = 'caller' AND coalesce(json_extract(signals, '$.intent'), '') != ''
		ORDER BY seq LIMIT 1), ''),
	caller_turns = (SELECT count(*) FROM turns WHERE call_id = ?1 AND ` + understoodSQL + `),
	low_turns = (SELECT count(*) FROM turns WHERE call_id = ?1 AND ` + understoodSQL + ` AND ` + lowSQL + `),
	repeat_intent = CASE WHEN repeat_of IS NULL THEN NULL
		ELSE coalesce((SELECT p.intent FROM calls AS p WHERE p.id = calls.repeat_of), repeat_intent) END
WHERE id = ?1`

var callIntentsSQL = `INSERT INTO call_intents (call_id, started_at, intent, turns, low_turns, nlu_sum)
SELECT ?1, (SELECT started_at FROM calls WHERE id = ?1), coalesce(json_extract(signals, '$.intent'), ''),
	count(*), sum(` + lowSQL + `), total(coalesce(json_extract(signals, '$.nlu_confidence'), 0))
FROM turns WHERE call_id = ?1 AND ` + understoodSQL + `
GROUP BY 3`

const deleteIntentsSQL = `DELETE FROM call_intents WHERE call_id = ?`

// finishCall fills the KPI columns of an ended call from its turns.
func finishCall(ctx context.Context, db sqlExecer, id string) error {
	if _, err := db.ExecContext(ctx, finishCallSQL, id); err != nil {
		return fmt.Errorf("sqlite: end call %s: kpis: %w", id, err)
	}
	if _, err := db.ExecContext(ctx, deleteIntentsSQL, id); err != nil {
		return fmt.Errorf("sqlite: end call %s: kpis: %w", id, err)
	}
	if _, err := db.ExecContext(ctx, callIntentsSQL, id); err != nil {
		return fmt.Errorf("sqlite: end call %s: kpis: %w", id, err)
	}
	return nil
}

// Statements of applyFacts.
const (
	escalateSQL = `UPDATE calls SET escalated_at = ? WHERE id = ? AND escalated_at IS NULL`
	reasonSQL   = `INSERT OR IGNORE INTO escalation_reasons (call_id, started_at, reason)
		SELECT id, started_at, ? FROM calls WHERE id = ?`
	transferSQL = `UPDATE calls SET
		connected_at = coalesce(connected_at, ?1),
		agent_id = CASE WHEN connected_at IS NULL THEN ?2 ELSE agent_id END,
		tth_ms = CASE WHEN connected_at IS NULL THEN ?3 ELSE tth_ms END,
		tth_bin = CASE WHEN connected_at IS NULL THEN ?4 ELSE tth_bin END,
		queue_wait_ms = CASE WHEN connected_at IS NULL THEN ?5 ELSE queue_wait_ms END
		WHERE id = ?6`
	queueStateSQL = `UPDATE calls SET queue_state = ? WHERE id = ? AND queue_state NOT IN ('abandoned', 'callback', 'voicemail')`
	csatSQL       = `UPDATE calls SET csat = ? WHERE id = ?`
)

// applyFacts copies what event e tells the KPIs onto its call's row.
func applyFacts(ctx context.Context, db sqlExecer, e parley.Event, f parley.CallFacts) error {
	wrap := func(err error) error {
		return fmt.Errorf("sqlite: append %s event to call %s: kpis: %w", e.Kind, e.CallID, err)
	}
	if f.Escalated {
		res, err := db.ExecContext(ctx, escalateSQL, f.EscalatedAt.UnixMilli(), e.CallID)
		if err != nil {
			return wrap(err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return wrap(err)
		} else if n == 1 {
			for _, r := range f.Reasons {
				if _, err := db.ExecContext(ctx, reasonSQL, r, e.CallID); err != nil {
					return wrap(err)
				}
			}
		}
	}
	if !f.ConnectedAt.IsZero() {
		var tth, bin, wait any
		if f.TimeToHumanMS >= 0 {
			tth, bin = f.TimeToHumanMS, parley.TTHBin(f.TimeToHumanMS)
		}
		if f.QueueWaitMS >= 0 {
			wait = f.QueueWaitMS
		}
		if _, err := db.ExecContext(ctx, transferSQL, f.ConnectedAt.UnixMilli(), f.AgentID, tth, bin, wait, e.CallID); err != nil {
			return wrap(err)
		}
	}
	if f.QueueState != "" {
		if _, err := db.ExecContext(ctx, queueStateSQL, f.QueueState, e.CallID); err != nil {
			return wrap(err)
		}
	}
	if f.CSAT != 0 {
		if _, err := db.ExecContext(ctx, csatSQL, f.CSAT, e.CallID); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// The aggregates below count the calls started in [?1, ?2) (unix ms) by
// hour; the rollup tables hold their results for whole hours, with the
// same columns.

// kpiCallsSQL: parley.KPICounts by hour.
const kpiCallsSQL = `SELECT started_at / 3600000 AS hour,
	count(*), sum(ended), sum(contained), sum(esc),
	sum(outcome = 'abandoned'), sum(queue_state = 'abandoned' OR (outcome = 'abandoned' AND esc)),
	sum(outcome = 'callback'), sum(outcome = 'voicemail'),
	sum(outcome = 'dropped'), sum(outcome = 'failed'),
	sum(ended), sum(CASE WHEN ended THEN max(coalesce(min(escalated_at, ended_at), ended_at) - started_at, 0) ELSE 0 END),
	sum(ended AND connected_at IS NOT NULL), sum(CASE WHEN ended AND connected_at IS NOT NULL THEN max(ended_at - connected_at, 0) ELSE 0 END),
	sum(contained), sum(CASE WHEN contained THEN max(ended_at - started_at, 0) ELSE 0 END),
	count(tth_ms), coalesce(sum(tth_ms), 0), count(queue_wait_ms), coalesce(sum(queue_wait_ms), 0),
	count(csat), coalesce(sum(csat), 0), sum(csat IS 1), sum(csat IS 2), sum(csat IS 3), sum(csat IS 4), sum(csat IS 5),
	sum(repeat_intent IS NOT NULL)
FROM (SELECT started_at, ended_at, outcome, escalated_at, connected_at, tth_ms, queue_wait_ms, queue_state, csat, repeat_intent,
		ended, esc, ended AND outcome = 'resolved' AND NOT esc AS contained
	FROM (SELECT *, (outcome != '' AND ended_at IS NOT NULL) AS ended, (escalated_at IS NOT NULL OR outcome = 'escalated') AS esc
		FROM calls WHERE started_at >= ?1 AND started_at < ?2))
GROUP BY hour`

// kpiIntentsSQL: parley.IntentCounts by hour and intent.
const kpiIntentsSQL = `SELECT hour, intent, sum(turns), sum(low_turns), total(nlu_sum), sum(calls), sum(escalated), sum(repeats) FROM (
	SELECT started_at / 3600000 AS hour, intent, turns, low_turns, nlu_sum, 0 AS calls, 0 AS escalated, 0 AS repeats
		FROM call_intents WHERE started_at >= ?1 AND started_at < ?2
	UNION ALL
	SELECT started_at / 3600000, intent, 0, 0, 0, 1, escalated_at IS NOT NULL OR outcome = 'escalated', 0
		FROM calls WHERE started_at >= ?1 AND started_at < ?2 AND outcome != '' AND ended_at IS NOT NULL
	UNION ALL
	SELECT started_at / 3600000, repeat_intent, 0, 0, 0, 0, 0, 1
		FROM calls WHERE started_at >= ?1 AND started_at < ?2 AND repeat_intent IS NOT NULL)
GROUP BY hour, intent`

// kpiReasonsSQL: escalated calls by hour and reason.
const kpiReasonsSQL = `SELECT started_at / 3600000, reason, count(*) FROM escalation_reasons
WHERE started_at >= ?1 AND started_at < ?2 GROUP BY 1, 2`

// kpiTTHSQL: the time-to-human histogram by hour.
const kpiTTHSQL = `SELECT started_at / 3600000, tth_bin, count(*) FROM calls
WHERE started_at >= ?1 AND started_at < ?2 AND tth_bin IS NOT NULL GROUP BY 1, 2`

// reviewSQL lists calls to review; its condition is calls_review's.
const reviewSQL = `SELECT id, started_at, from_number, outcome, intent, coalesce(csat, 0), low_turns,
	escalated_at IS NOT NULL OR outcome = 'escalated'
FROM calls INDEXED BY calls_review
WHERE started_at >= ?1 AND started_at < ?2
	AND (csat <= 2 OR low_turns >= 2 OR queue_state = 'abandoned' OR outcome IN ('failed', 'dropped')
		OR (outcome = 'abandoned' AND escalated_at IS NOT NULL))
ORDER BY started_at DESC LIMIT ?3`

const hourMS = 3_600_000

// refreshHours is how many dirty hours one refresh transaction rebuilds,
// so that a long refresh never holds the writer for long (at a million
// calls a month, six hours of them take about a quarter of a second).
const refreshHours = 6

// RefreshKPIs rebuilds the hourly rollups of the hours whose calls changed
// since the last refresh. KPIs calls it; a server may also call it
// periodically to keep reports quick after bursts of writes.
func (s *Store) RefreshKPIs(ctx context.Context) error {
	for {
		more, err := s.refreshSome(ctx)
		if err != nil || !more {
			return err
		}
	}
}

// refreshSome rebuilds up to refreshHours dirty hours in one transaction
// and reports whether more are left.
func (s *Store) refreshSome(ctx context.Context) (more bool, err error) {
	err = s.inTx(ctx, "refresh kpis", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT hour FROM kpi_dirty ORDER BY hour LIMIT ?`, refreshHours+1)
		if err != nil {
			return fmt.Errorf("sqlite: refresh kpis: %w", err)
		}
		var hours []int64
		for rows.Next() {
			var h int64
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: refresh kpis: %w", err)
			}
			hours = append(hours, h)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: refresh kpis: %w", err)
		}
		if len(hours) > refreshHours {
			hours, more = hours[:refreshHours], true
		}
		for _, r := range hourRanges(hours) {
			if err := rebuildHours(ctx, tx, r[0], r[1]); err != nil {
				return err
			}
		}
		if len(hours) > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM kpi_dirty WHERE hour <= ?`, hours[len(hours)-1]); err != nil {
				return fmt.Errorf("sqlite: refresh kpis: %w", err)
			}
		}
		return nil
	})
	return more, err
}

// hourRanges groups sorted hours into runs [first, last].
func hourRanges(hours []int64) [][2]int64 {
	var out [][2]int64
	for _, h := range hours {
		if n := len(out); n > 0 && out[n-1][1] == h-1 {
			out[n-1][1] = h
			continue
		}
		out = append(out, [2]int64{h, h})
	}
	return out
}

// rebuildHours recomputes the rollups of hours first..last from the calls.
func rebuildHours(ctx context.Context, tx *sql.Tx, first, last int64) error {
	lo, hi := first*hourMS, (last+1)*hourMS
	for _, st := range []struct{ table, query string }{
		{"kpi_hour", kpiCallsSQL},
		{"kpi_hour_intent", kpiIntentsSQL},
		{"kpi_hour_reason", kpiReasonsSQL},
		{"kpi_hour_tth", kpiTTHSQL},
	} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+st.table+` WHERE hour >= ? AND hour <= ?`, first, last); err != nil {
			return fmt.Errorf("sqlite: refresh kpis: %s: %w", st.table, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+st.table+` `+st.query, lo, hi); err != nil {
			return fmt.Errorf("sqlite: refresh kpis: %s: %w", st.table, err)
		}
	}
	return nil
}

// KPIs reports on the calls started in [q.From, q.To): whole hours from
// the rollups (brought up to date first), the rest from the calls.
func (s *Store) KPIs(ctx context.Context, q parley.KPIQuery) (parley.KPIReport, error) {
	if err := q.Check(); err != nil {
		return parley.KPIReport{}, err
	}
	if err := s.RefreshKPIs(ctx); err != nil {
		return parley.KPIReport{}, err
	}
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return parley.KPIReport{}, fmt.Errorf("sqlite: kpis: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to keep
	a := parley.NewKPIAggregate()
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	firstFull := (from + hourMS - 1) / hourMS // whole hours [firstFull, endFull)
	endFull := to / hourMS
	raw := [][2]int64{{from, to}}
	if firstFull < endFull {
		raw = [][2]int64{{from, firstFull * hourMS}, {endFull * hourMS, to}}
		if err := readAll(ctx, tx, a, rollupQueries, firstFull, endFull); err != nil {
			return parley.KPIReport{}, err
		}
	}
	for _, r := range raw {
		if r[0] < r[1] {
			if err := readAll(ctx, tx, a, rawQueries, r[0], r[1]); err != nil {
				return parley.KPIReport{}, err
			}
		}
	}
	if a.Review, err = review(ctx, tx, from, to, q.ReviewLimit()); err != nil {
		return parley.KPIReport{}, err
	}
	return parley.NewKPIReport(q, a), nil
}

// kpiQueries are the four reads of a report, each giving rows of (hour,
// [key,] counters...) for its arguments ?1 and ?2.
type kpiQueries struct{ calls, intents, reasons, tth string }

var (
	rawQueries    = kpiQueries{kpiCallsSQL, kpiIntentsSQL, kpiReasonsSQL, kpiTTHSQL}
	rollupQueries = kpiQueries{
		calls:   `SELECT * FROM kpi_hour WHERE hour >= ?1 AND hour < ?2`,
		intents: `SELECT * FROM kpi_hour_intent WHERE hour >= ?1 AND hour < ?2`,
		reasons: `SELECT * FROM kpi_hour_reason WHERE hour >= ?1 AND hour < ?2`,
		tth:     `SELECT * FROM kpi_hour_tth WHERE hour >= ?1 AND hour < ?2`,
	}
)

// readAll adds what the queries give for [lo, hi) to a.
func readAll(ctx context.Context, db sqlQuerier, a *parley.KPIAggregate, qs kpiQueries, lo, hi int64) error {
	var (
		hour   int64
		key    string
		bin    int
		n      int64
		counts parley.KPICounts
		ic     parley.IntentCounts
	)
	steps := []struct {
		query string
		dest  []any
		add   func()
	}{
		{qs.calls, append([]any{&hour}, counts.Fields()...), func() { a.AddHour(hour, counts) }},
		{qs.intents, append([]any{&hour, &key}, ic.Fields()...), func() { a.AddIntent(key, ic) }},
		{qs.reasons, []any{&hour, &key, &n}, func() { a.Reasons[key] += n }},
		{qs.tth, []any{&hour, &bin, &n}, func() { a.TTH[bin] += n }},
	}
	for _, st := range steps {
		rows, err := db.QueryContext(ctx, st.query, lo, hi)
		if err != nil {
			return fmt.Errorf("sqlite: kpis: %w", err)
		}
		for rows.Next() {
			if err := rows.Scan(st.dest...); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: kpis: %w", err)
			}
			st.add()
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: kpis: %w", err)
		}
	}
	return nil
}

func review(ctx context.Context, db sqlQuerier, from, to int64, limit int) ([]parley.ReviewCall, error) {
	rows, err := db.QueryContext(ctx, reviewSQL, from, to, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: kpis: review: %w", err)
	}
	defer rows.Close()
	out := []parley.ReviewCall{}
	for rows.Next() {
		var (
			c       parley.ReviewCall
			started int64
			outcome string
			csat    int
		)
		if err := rows.Scan(&c.ID, &started, &c.From, &outcome, &c.Intent, &csat, &c.LowTurns, &c.Escalated); err != nil {
			return nil, fmt.Errorf("sqlite: kpis: review: %w", err)
		}
		c.StartedAt, c.Outcome, c.CSAT = time.UnixMilli(started).UTC(), parley.Outcome(outcome), csat
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: kpis: review: %w", err)
	}
	return out, nil
}
