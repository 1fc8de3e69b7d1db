package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-ai/parley"
)

var _ parley.Analytics = (*Store)(nil)

// refreshLockKey names the advisory lock held while one node rebuilds the
// KPI rollups ("parkpi" in ASCII).
const refreshLockKey int64 = 0x7061726b7069

// stmt is one statement with its arguments.
type stmt struct {
	sql  string
	args []any
}

// repeatStmt links a new call to the latest call from the same number in
// the RepeatWindow before it; ok is false for calls without a number.
func repeatStmt(c parley.Call) (stmt, bool) {
	if c.From == "" {
		return stmt{}, false
	}
	start := ts(c.StartedAt)
	return stmt{`UPDATE calls SET repeat_of = p.id, repeat_intent = p.intent
		FROM (SELECT id, intent FROM calls WHERE from_number = $2 AND started_at >= $4 AND started_at < $3 AND id <> $1
			ORDER BY started_at DESC LIMIT 1) AS p
		WHERE calls.id = $1`, []any{c.ID, c.From, start, ts(c.StartedAt.Add(-parley.RepeatWindow))}}, true
}

// understoodSQL is how one caller turn counts for the KPIs: only turns
// where something was said or keyed; lowSQL: the recognizer or the
// understanding was unsure about a request in scope (as escalation does).
const understoodSQL = `speaker = 'caller' AND signals IS NOT NULL AND (text <> '' OR dtmf <> '')`

var lowSQL = fmt.Sprintf(`(coalesce((signals->>'asr_confidence')::float8, 0) < %g
	OR coalesce((signals->>'nlu_confidence')::float8, 0) < %g)
	AND NOT coalesce((signals->>'out_of_scope')::boolean, false)`, parley.LowASRConfidence, parley.LowNLUConfidence)

var finishCallSQL = `UPDATE calls SET
	intent = coalesce((SELECT signals->>'intent' FROM turns
		WHERE call_id = $1 AND speaker = 'caller' AND coalesce(signals->>'intent', '') <> ''
		ORDER BY seq LIMIT 1), ''),
	caller_turns = (SELECT count(*) FROM turns WHERE call_id = $1 AND ` + understoodSQL + `),
	low_turns = (SELECT count(*) FROM turns WHERE call_id = $1 AND ` + understoodSQL + ` AND ` + lowSQL + `),
	repeat_intent = CASE WHEN repeat_of IS NULL THEN NULL
		ELSE coalesce((SELECT p.intent FROM calls AS p WHERE p.id = calls.repeat_of), repeat_intent) END
WHERE id = $1`

var callIntentsSQL = `INSERT INTO call_intents (call_id, started_at, intent, turns, low_turns, nlu_sum)
SELECT $1, (SELECT started_at FROM calls WHERE id = $1), coalesce(signals->>'intent', ''),
	count(*), count(*) FILTER (WHERE ` + lowSQL + `), coalesce(sum(coalesce((signals->>'nlu_confidence')::float8, 0)), 0)
FROM turns WHERE call_id = $1 AND ` + understoodSQL + `
GROUP BY 3`

// finishStmts fill the KPI columns of ended call id from its turns.
func finishStmts(id string) []stmt {
	return []stmt{
		{finishCallSQL, []any{id}},
		{`DELETE FROM call_intents WHERE call_id = $1`, []any{id}},
		{callIntentsSQL, []any{id}},
	}
}

// factStmts copy what event e tells the KPIs onto its call's row.
func factStmts(e parley.Event, f parley.CallFacts) []stmt {
	var out []stmt
	if f.Escalated {
		reasons := f.Reasons
		if reasons == nil {
			reasons = []string{}
		}
		out = append(out, stmt{`WITH first AS (
				UPDATE calls SET escalated_at = $2 WHERE id = $1 AND escalated_at IS NULL RETURNING id, started_at)
			INSERT INTO escalation_reasons (call_id, started_at, reason)
			SELECT first.id, first.started_at, r FROM first, unnest($3::text[]) AS r
			ON CONFLICT DO NOTHING`, []any{e.CallID, ts(f.EscalatedAt), reasons}})
	}
	if !f.ConnectedAt.IsZero() {
		var tth, bin, wait any
		if f.TimeToHumanMS >= 0 {
			tth, bin = f.TimeToHumanMS, int32(parley.TTHBin(f.TimeToHumanMS))
		}
		if f.QueueWaitMS >= 0 {
			wait = f.QueueWaitMS
		}
		out = append(out, stmt{`UPDATE calls SET
			connected_at = coalesce(connected_at, $1),
			agent_id = CASE WHEN connected_at IS NULL THEN $2 ELSE agent_id END,
			tth_ms = CASE WHEN connected_at IS NULL THEN $3::bigint ELSE tth_ms END,
			tth_bin = CASE WHEN connected_at IS NULL THEN $4::integer ELSE tth_bin END,
			queue_wait_ms = CASE WHEN connected_at IS NULL THEN $5::bigint ELSE queue_wait_ms END
			WHERE id = $6`, []any{ts(f.ConnectedAt), f.AgentID, tth, bin, wait, e.CallID}})
	}
	if f.QueueState != "" {
		// The queue's end (abandoned, callback, voicemail) is not overwritten by a
		// late offer withdrawal.
		out = append(out, stmt{`UPDATE calls SET queue_state = $1 WHERE id = $2 AND queue_state NOT IN ('abandoned', 'callback', 'voicemail')`,
			[]any{f.QueueState, e.CallID}})
	}
	if f.CSAT != 0 {
		out = append(out, stmt{`UPDATE calls SET csat = $1 WHERE id = $2`, []any{int16(f.CSAT), e.CallID}})
	}
	return out
}

// execAll runs stmts on db, wrapping errors with what.
func execAll(ctx context.Context, db execer, what string, stmts []stmt) error {
	for _, st := range stmts {
		if _, err := db.Exec(ctx, st.sql, st.args...); err != nil {
			return fmt.Errorf("postgres: %s: kpis: %w", what, err)
		}
	}
	return nil
}

// The aggregates below count the calls started in [$1, $2) by hour; the
// rollup tables hold their results for whole hours, with the same columns.

// msSQL is an interval in whole milliseconds (stored times are whole
// milliseconds, so this is exact).
func msSQL(interval string) string {
	return `(extract(epoch FROM (` + interval + `)) * 1000)::bigint`
}

var kpiCallsSQL = `SELECT kpi_hour_of(started_at) AS hour,
	count(*), count(*) FILTER (WHERE ended), count(*) FILTER (WHERE contained), count(*) FILTER (WHERE esc),
	count(*) FILTER (WHERE outcome = 'abandoned'), count(*) FILTER (WHERE queue_state = 'abandoned' OR (outcome = 'abandoned' AND esc)),
	count(*) FILTER (WHERE outcome = 'callback'), count(*) FILTER (WHERE outcome = 'voicemail'),
	count(*) FILTER (WHERE outcome = 'dropped'), count(*) FILTER (WHERE outcome = 'failed'),
	count(*) FILTER (WHERE ended),
	coalesce(sum(greatest(` + msSQL(`least(coalesce(escalated_at, ended_at), ended_at) - started_at`) + `, 0)) FILTER (WHERE ended), 0)::bigint,
	count(*) FILTER (WHERE ended AND connected_at IS NOT NULL),
	coalesce(sum(greatest(` + msSQL(`ended_at - connected_at`) + `, 0)) FILTER (WHERE ended AND connected_at IS NOT NULL), 0)::bigint,
	count(*) FILTER (WHERE contained),
	coalesce(sum(greatest(` + msSQL(`ended_at - started_at`) + `, 0)) FILTER (WHERE contained), 0)::bigint,
	count(tth_ms), coalesce(sum(tth_ms), 0)::bigint, count(queue_wait_ms), coalesce(sum(queue_wait_ms), 0)::bigint,
	count(csat), coalesce(sum(csat), 0)::bigint,
	count(*) FILTER (WHERE csat = 1), count(*) FILTER (WHERE csat = 2), count(*) FILTER (WHERE csat = 3),
	count(*) FILTER (WHERE csat = 4), count(*) FILTER (WHERE csat = 5),
	count(repeat_intent)
FROM (SELECT started_at, ended_at, outcome, escalated_at, connected_at, tth_ms, queue_wait_ms, queue_state, csat, repeat_intent,
		ended, esc, ended AND outcome = 'resolved' AND NOT esc AS contained
	FROM (SELECT *, (outcome <> '' AND ended_at IS NOT NULL) AS ended, (escalated_at IS NOT NULL OR outcome = 'escalated') AS esc
		FROM calls WHERE started_at >= $1 AND started_at < $2) AS c) AS c
GROUP BY 1`

const kpiIntentsSQL = `SELECT hour, intent, sum(turns)::bigint, sum(low_turns)::bigint, sum(nlu_sum)::float8,
	sum(calls)::bigint, sum(escalated)::bigint, sum(repeats)::bigint FROM (
	SELECT kpi_hour_of(started_at) AS hour, intent, turns, low_turns, nlu_sum, 0 AS calls, 0 AS escalated, 0 AS repeats
		FROM call_intents WHERE started_at >= $1 AND started_at < $2
	UNION ALL
	SELECT kpi_hour_of(started_at), intent, 0, 0, 0, 1, (escalated_at IS NOT NULL OR outcome = 'escalated')::int, 0
		FROM calls WHERE started_at >= $1 AND started_at < $2 AND outcome <> '' AND ended_at IS NOT NULL
	UNION ALL
	SELECT kpi_hour_of(started_at), repeat_intent, 0, 0, 0, 0, 0, 1
		FROM calls WHERE started_at >= $1 AND started_at < $2 AND repeat_intent IS NOT NULL) AS u
GROUP BY 1, 2`

const kpiReasonsSQL = `SELECT kpi_hour_of(started_at), reason, count(*) FROM escalation_reasons
WHERE started_at >= $1 AND started_at < $2 GROUP BY 1, 2`

const kpiTTHSQL = `SELECT kpi_hour_of(started_at), tth_bin, count(*) FROM calls
WHERE started_at >= $1 AND started_at < $2 AND tth_bin IS NOT NULL GROUP BY 1, 2`

// reviewSQL lists calls to review; its condition is calls_review's.
const reviewSQL = `SELECT id, started_at, from_number, outcome, intent, coalesce(csat, 0)::int, low_turns::bigint,
	escalated_at IS NOT NULL OR outcome = 'escalated'
FROM calls
WHERE started_at >= $1 AND started_at < $2
	AND (csat <= 2 OR low_turns >= 2 OR queue_state = 'abandoned' OR outcome IN ('failed', 'dropped')
		OR (outcome = 'abandoned' AND escalated_at IS NOT NULL))
ORDER BY started_at DESC LIMIT $3`

const hour = time.Hour

// refreshHours is how many dirty hours one refresh transaction rebuilds.
const refreshHours = 24

// RefreshKPIs rebuilds the hourly rollups of the hours whose calls changed
// since the last refresh. KPIs calls it; a server may also call it
// periodically. One node refreshes at a time (an advisory lock); the
// others wait for it.
func (s *Store) RefreshKPIs(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: refresh kpis: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, refreshLockKey); err != nil {
		return fmt.Errorf("postgres: refresh kpis: lock: %w", err)
	}
	defer func() {
		// A canceled ctx must not leave the lock on a pooled connection.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, refreshLockKey); err != nil {
			_ = conn.Conn().Close(uctx) // closing the session drops the lock
		}
	}()
	for {
		more, err := refreshSome(ctx, conn.Conn())
		if err != nil || !more {
			return err
		}
	}
}

// refreshSome rebuilds up to refreshHours dirty hours in one transaction
// and reports whether more are left. The transaction reads one snapshot:
// the dirty marks it deletes are exactly those of the writes it counted.
func refreshSome(ctx context.Context, conn *pgx.Conn) (more bool, err error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return false, fmt.Errorf("postgres: refresh kpis: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if err := smallQueries(ctx, tx); err != nil {
		return false, err
	}
	rows, err := tx.Query(ctx, `SELECT DISTINCT hour FROM kpi_dirty ORDER BY hour LIMIT $1`, refreshHours+1)
	if err != nil {
		return false, fmt.Errorf("postgres: refresh kpis: %w", err)
	}
	hours, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return false, fmt.Errorf("postgres: refresh kpis: %w", err)
	}
	if len(hours) == 0 {
		return false, nil
	}
	if len(hours) > refreshHours {
		hours, more = hours[:refreshHours], true
	}
	for _, r := range hourRanges(hours) {
		if err := rebuildHours(ctx, tx, r[0], r[1]); err != nil {
			return false, err
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM kpi_dirty WHERE hour <= $1`, hours[len(hours)-1]); err != nil {
		return false, fmt.Errorf("postgres: refresh kpis: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("postgres: refresh kpis: commit: %w", err)
	}
	return more, nil
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

func hourStart(h int64) time.Time { return time.Unix(h*3600, 0).UTC() }

// rebuildHours recomputes the rollups of hours first..last from the calls.
func rebuildHours(ctx context.Context, tx pgx.Tx, first, last int64) error {
	lo, hi := hourStart(first), hourStart(last+1)
	for _, st := range []struct{ table, query string }{
		{"kpi_hour", kpiCallsSQL},
		{"kpi_hour_intent", kpiIntentsSQL},
		{"kpi_hour_reason", kpiReasonsSQL},
		{"kpi_hour_tth", kpiTTHSQL},
	} {
		if _, err := tx.Exec(ctx, `DELETE FROM `+st.table+` WHERE hour >= $1 AND hour <= $2`, first, last); err != nil {
			return fmt.Errorf("postgres: refresh kpis: %s: %w", st.table, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+st.table+` `+st.query, lo, hi); err != nil {
			return fmt.Errorf("postgres: refresh kpis: %s: %w", st.table, err)
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
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return parley.KPIReport{}, fmt.Errorf("postgres: kpis: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only; nothing to keep
	if err := smallQueries(ctx, tx); err != nil {
		return parley.KPIReport{}, err
	}
	a := parley.NewKPIAggregate()
	from, to := store0(q.From), store0(q.To)
	firstFull := parley.HourOf(from.Add(hour - time.Millisecond)) // whole hours [firstFull, endFull)
	endFull := parley.HourOf(to)
	raw := [][2]time.Time{{from, to}}
	if firstFull < endFull {
		raw = [][2]time.Time{{from, hourStart(firstFull)}, {hourStart(endFull), to}}
		if err := readAll(ctx, tx, a, rollupQueries, firstFull, endFull); err != nil {
			return parley.KPIReport{}, err
		}
	}
	for _, r := range raw {
		if r[0].Before(r[1]) {
			if err := readAll(ctx, tx, a, rawQueries, r[0], r[1]); err != nil {
				return parley.KPIReport{}, err
			}
		}
	}
	if a.Review, err = review(ctx, tx, from, to, q.ReviewLimit()); err != nil {
		return parley.KPIReport{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return parley.KPIReport{}, fmt.Errorf("postgres: kpis: %w", err)
	}
	return parley.NewKPIReport(q, a), nil
}

// smallQueries tunes the transaction for the KPI queries, which each read
// at most some thousands of rows by index: no JIT compilation (their many
// aggregates make the planner's estimate look worth compiling, which costs
// hundreds of milliseconds) and no parallel workers (starting them costs
// more than the scan).
func smallQueries(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0`); err != nil {
		return fmt.Errorf("postgres: kpis: %w", err)
	}
	return nil
}

// store0 is t as the store keeps times: whole milliseconds, UTC.
func store0(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

// kpiQueries are the four reads of a report, each giving rows of (hour,
// [key,] counters...) for its arguments $1 and $2.
type kpiQueries struct{ calls, intents, reasons, tth string }

var (
	rawQueries    = kpiQueries{kpiCallsSQL, kpiIntentsSQL, kpiReasonsSQL, kpiTTHSQL}
	rollupQueries = kpiQueries{
		calls:   `SELECT * FROM kpi_hour WHERE hour >= $1 AND hour < $2`,
		intents: `SELECT * FROM kpi_hour_intent WHERE hour >= $1 AND hour < $2`,
		reasons: `SELECT * FROM kpi_hour_reason WHERE hour >= $1 AND hour < $2`,
		tth:     `SELECT * FROM kpi_hour_tth WHERE hour >= $1 AND hour < $2`,
	}
)

// readAll adds what the queries give for [lo, hi) to a.
func readAll(ctx context.Context, tx pgx.Tx, a *parley.KPIAggregate, qs kpiQueries, lo, hi any) error {
	var (
		hour   int64
		key    string
		bin    int32
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
		{qs.tth, []any{&hour, &bin, &n}, func() { a.TTH[int(bin)] += n }},
	}
	for _, st := range steps {
		rows, err := tx.Query(ctx, st.query, lo, hi)
		if err != nil {
			return fmt.Errorf("postgres: kpis: %w", err)
		}
		for rows.Next() {
			if err := rows.Scan(st.dest...); err != nil {
				rows.Close()
				return fmt.Errorf("postgres: kpis: %w", err)
			}
			st.add()
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: kpis: %w", err)
		}
	}
	return nil
}

func review(ctx context.Context, tx pgx.Tx, from, to time.Time, limit int) ([]parley.ReviewCall, error) {
	rows, err := tx.Query(ctx, reviewSQL, from, to, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: kpis: review: %w", err)
	}
	defer rows.Close()
	out := []parley.ReviewCall{}
	for rows.Next() {
		var (
			c       parley.ReviewCall
			outcome string
			csat    int32
		)
		if err := rows.Scan(&c.ID, &c.StartedAt, &c.From, &outcome, &c.Intent, &csat, &c.LowTurns, &c.Escalated); err != nil {
			return nil, fmt.Errorf("postgres: kpis: review: %w", err)
		}
		c.StartedAt, c.Outcome, c.CSAT = c.StartedAt.UTC(), parley.Outcome(outcome), int(csat)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: kpis: review: %w", err)
	}
	return out, nil
}
