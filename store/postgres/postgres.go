// Package postgres is parley's parley.Store on PostgreSQL (12 or newer),
// for running several parley nodes on one database. It is the only package
// that imports pgx.
//
// Transcripts are searched through a generated tsvector column (english
// configuration: stemming, stop words) with a GIN index. Every node runs
// the embedded migrations at Open under a transaction-scoped advisory
// lock, so nodes starting together apply each migration exactly once. See
// package store for the behaviour every backend shares.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateLockKey names parley's advisory lock ("parley" in ASCII), held
// while one node migrates so that the others wait instead of racing it.
const migrateLockKey int64 = 0x7061726c6579

// PostgreSQL error codes the store turns into parley errors.
const (
	codeForeignKeyViolation = "23503"
	codeUniqueViolation     = "23505"
)

// Store is a parley.Store on a pgx connection pool. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

var (
	_ parley.Store  = (*Store)(nil)
	_ store.Batcher = (*Store)(nil)
)

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string, with pgx's pool_* options), checks it answers, and
// brings its schema up to date.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message quotes the string, and redacting a password from a
		// malformed one is guesswork; say what is wrong without echoing it.
		return nil, errors.New("postgres: open: cannot parse the connection string (not shown: it may hold a password)")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", describe(cfg), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", describe(cfg), err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// describe names a database for error messages without its password.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// migrate applies the embedded migrations the database has not seen, in
// one transaction under an advisory lock.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := store.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("postgres: migrate: create schema_migrations: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("postgres: migrate: read versions: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("postgres: migrate: read versions: %w", err)
	}
	applied := make(map[int]bool, len(versions))
	for _, v := range versions {
		applied[int(v)] = true
	}
	pending, err := store.Pending(ms, applied)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	for _, m := range pending {
		// No arguments: pgx sends the file with the simple protocol, which
		// runs every statement in it.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("postgres: migrate %04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return fmt.Errorf("postgres: migrate %04d_%s: record: %w", m.Version, m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: commit: %w", err)
	}
	return nil
}

const insertCallSQL = `INSERT INTO calls (id, channel, from_number, to_number, started_at, ended_at, outcome, reason, node)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

const insertTurnSQL = `INSERT INTO turns (call_id, seq, speaker, text, intended, interrupted, dtmf,
	start_at, end_at, end_of_speech, first_audio, signals)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`

// execer is what a turn insert needs: the pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// CreateCall stores c and the turns it carries in one transaction.
func (s *Store) CreateCall(ctx context.Context, c parley.Call) error {
	if err := store.CheckCall(c); err != nil {
		return fmt.Errorf("postgres: create call: %w", err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: create call %s: begin: %w", c.ID, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	_, err = tx.Exec(ctx, insertCallSQL, c.ID, string(c.Channel), c.From, c.To,
		ts(c.StartedAt), ts(c.EndedAt), string(c.Outcome), c.Reason, c.Node)
	if err := callError(c.ID, err); err != nil {
		return err
	}
	if st, ok := repeatStmt(c); ok {
		if err := execAll(ctx, tx, "create call "+c.ID, []stmt{st}); err != nil {
			return err
		}
	}
	for _, t := range c.Turns {
		t.CallID = c.ID
		if err := insertTurn(ctx, tx, t); err != nil {
			return err
		}
	}
	if c.Outcome != "" {
		if err := execAll(ctx, tx, "create call "+c.ID, finishStmts(c.ID)); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: create call %s: commit: %w", c.ID, err)
	}
	return nil
}

// EndCall records the end of call id; ErrNotFound when there is no such
// call. It also fills the call's KPI columns from its turns.
func (s *Store) EndCall(ctx context.Context, id string, endedAt time.Time, outcome parley.Outcome, reason string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, endCallSQL, ts(endedAt), string(outcome), reason, id)
		if err := endError(id, tag, err); err != nil {
			return err
		}
		return execAll(ctx, tx, "end call "+id, finishStmts(id))
	})
}

const endCallSQL = `UPDATE calls SET ended_at = $1, outcome = $2, reason = $3 WHERE id = $4`

func endError(id string, tag pgconn.CommandTag, err error) error {
	if err != nil {
		return fmt.Errorf("postgres: end call %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: end call %s: %w", id, parley.ErrNotFound)
	}
	return nil
}

func callError(id string, err error) error {
	switch {
	case err == nil:
		return nil
	case pgCode(err) == codeUniqueViolation:
		return fmt.Errorf("postgres: create call %s: %w", id, store.ErrDuplicate)
	}
	return fmt.Errorf("postgres: create call %s: %w", id, err)
}

// AppendTurn stores one turn of an existing call.
func (s *Store) AppendTurn(ctx context.Context, t parley.Turn) error {
	if err := store.CheckTurn(t); err != nil {
		return fmt.Errorf("postgres: append turn: %w", err)
	}
	return insertTurn(ctx, s.pool, t)
}

func insertTurn(ctx context.Context, db execer, t parley.Turn) error {
	args, err := turnArgs(t)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, insertTurnSQL, args...)
	return turnError(t, err)
}

// turnArgs are the insertTurnSQL arguments for t.
func turnArgs(t parley.Turn) ([]any, error) {
	sig, err := store.EncodeSignals(t.Signals)
	if err != nil {
		return nil, fmt.Errorf("postgres: append turn %d to call %s: %w", t.Seq, t.CallID, err)
	}
	var sigArg any
	if sig != nil {
		sigArg = sig
	}
	return []any{t.CallID, t.Seq, string(t.Speaker), t.Text, t.Intended, t.Interrupted, t.DTMF,
		ts(t.Start), ts(t.End), ts(t.EndOfSpeech), ts(t.FirstAudio), sigArg}, nil
}

// turnError wraps the result of inserting t.
func turnError(t parley.Turn, err error) error {
	switch {
	case err == nil:
		return nil
	case pgCode(err) == codeForeignKeyViolation:
		return fmt.Errorf("postgres: append turn %d to call %s: %w", t.Seq, t.CallID, parley.ErrNotFound)
	case pgCode(err) == codeUniqueViolation:
		return fmt.Errorf("postgres: append turn %d to call %s: %w", t.Seq, t.CallID, store.ErrDuplicate)
	}
	return fmt.Errorf("postgres: append turn %d to call %s: %w", t.Seq, t.CallID, err)
}

// AppendEvent stores one event of an existing call.
func (s *Store) AppendEvent(ctx context.Context, e parley.Event) error {
	if err := store.CheckEvent(e); err != nil {
		return fmt.Errorf("postgres: append event: %w", err)
	}
	f, ok := parley.FactsOf(e)
	if !ok {
		_, err := s.pool.Exec(ctx, insertEventSQL, eventArgs(e)...)
		return eventError(e, err)
	}
	// What the event tells the KPIs goes onto the call in the same transaction.
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertEventSQL, eventArgs(e)...); err != nil {
			return eventError(e, err)
		}
		return execAll(ctx, tx, "append "+e.Kind+" event to call "+e.CallID, factStmts(e, f))
	})
}

const insertEventSQL = `INSERT INTO events (call_id, at, kind, data) VALUES ($1, $2, $3, $4)`

func eventArgs(e parley.Event) []any {
	var data any
	if len(e.Data) > 0 {
		data = []byte(e.Data)
	}
	return []any{e.CallID, ts(e.At), e.Kind, data}
}

func eventError(e parley.Event, err error) error {
	switch {
	case err == nil:
		return nil
	case pgCode(err) == codeForeignKeyViolation:
		return fmt.Errorf("postgres: append %s event to call %s: %w", e.Kind, e.CallID, parley.ErrNotFound)
	}
	return fmt.Errorf("postgres: append %s event to call %s: %w", e.Kind, e.CallID, err)
}

// WriteBatch applies ws in order in one transaction, all or none, sending
// every statement in one round trip; it is how store.Async commits a burst
// of turns with one WAL flush.
func (s *Store) WriteBatch(ctx context.Context, ws []store.Write) error {
	b := &pgx.Batch{}
	// check[i] turns the result of the i-th queued statement into an error.
	var check []func(pgconn.CommandTag, error) error
	// queueKPI queues statements that keep the KPI columns in step.
	queueKPI := func(what string, sts ...stmt) {
		for _, st := range sts {
			b.Queue(st.sql, st.args...)
			check = append(check, func(_ pgconn.CommandTag, err error) error {
				if err != nil {
					return fmt.Errorf("postgres: %s: kpis: %w", what, err)
				}
				return nil
			})
		}
	}
	for i, w := range ws {
		switch {
		case w.CreateCall != nil:
			c := *w.CreateCall
			if err := store.CheckCall(c); err != nil {
				return fmt.Errorf("postgres: create call: %w", err)
			}
			b.Queue(insertCallSQL, c.ID, string(c.Channel), c.From, c.To,
				ts(c.StartedAt), ts(c.EndedAt), string(c.Outcome), c.Reason, c.Node)
			check = append(check, func(_ pgconn.CommandTag, err error) error { return callError(c.ID, err) })
			if st, ok := repeatStmt(c); ok {
				queueKPI("create call "+c.ID, st)
			}
			for _, t := range c.Turns {
				t.CallID = c.ID
				args, err := turnArgs(t)
				if err != nil {
					return err
				}
				b.Queue(insertTurnSQL, args...)
				check = append(check, func(_ pgconn.CommandTag, err error) error { return turnError(t, err) })
			}
			if c.Outcome != "" {
				queueKPI("create call "+c.ID, finishStmts(c.ID)...)
			}
		case w.EndCall != nil:
			e := *w.EndCall
			b.Queue(endCallSQL, ts(e.EndedAt), string(e.Outcome), e.Reason, e.ID)
			check = append(check, func(tag pgconn.CommandTag, err error) error { return endError(e.ID, tag, err) })
			queueKPI("end call "+e.ID, finishStmts(e.ID)...)
		case w.AppendTurn != nil:
			t := *w.AppendTurn
			if err := store.CheckTurn(t); err != nil {
				return fmt.Errorf("postgres: append turn: %w", err)
			}
			args, err := turnArgs(t)
			if err != nil {
				return err
			}
			b.Queue(insertTurnSQL, args...)
			check = append(check, func(_ pgconn.CommandTag, err error) error { return turnError(t, err) })
		case w.AppendEvent != nil:
			e := *w.AppendEvent
			if err := store.CheckEvent(e); err != nil {
				return fmt.Errorf("postgres: append event: %w", err)
			}
			b.Queue(insertEventSQL, eventArgs(e)...)
			check = append(check, func(_ pgconn.CommandTag, err error) error { return eventError(e, err) })
			if f, ok := parley.FactsOf(e); ok {
				queueKPI("append "+e.Kind+" event to call "+e.CallID, factStmts(e, f)...)
			}
		default:
			return fmt.Errorf("postgres: write batch: write %d is empty", i)
		}
	}
	if len(check) == 0 {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: write batch: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	br := tx.SendBatch(ctx, b)
	for _, chk := range check {
		tag, err := br.Exec()
		if err := chk(tag, err); err != nil {
			br.Close()
			return err
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("postgres: write batch: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: write batch: commit: %w", err)
	}
	return nil
}

const callColumns = `id, channel, from_number, to_number, started_at, ended_at, outcome, reason, node`

// GetCall returns call id with its turns in seq order; both queries go in
// one round trip.
func (s *Store) GetCall(ctx context.Context, id string) (parley.Call, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT `+callColumns+` FROM calls WHERE id = $1`, id)
	b.Queue(`SELECT seq, speaker, text, intended, interrupted, dtmf,
		start_at, end_at, end_of_speech, first_audio, signals
		FROM turns WHERE call_id = $1 ORDER BY seq`, id)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()

	c, err := scanCall(br.QueryRow())
	if errors.Is(err, pgx.ErrNoRows) {
		return parley.Call{}, fmt.Errorf("postgres: get call %s: %w", id, parley.ErrNotFound)
	}
	if err != nil {
		return parley.Call{}, fmt.Errorf("postgres: get call %s: %w", id, err)
	}
	rows, err := br.Query()
	if err != nil {
		return parley.Call{}, fmt.Errorf("postgres: get call %s: turns: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		t := parley.Turn{CallID: id}
		var (
			speaker                 string
			start, end, eos, firstA *time.Time
			sig                     []byte
		)
		if err := rows.Scan(&t.Seq, &speaker, &t.Text, &t.Intended, &t.Interrupted, &t.DTMF,
			&start, &end, &eos, &firstA, &sig); err != nil {
			return parley.Call{}, fmt.Errorf("postgres: get call %s: turns: %w", id, err)
		}
		t.Speaker = parley.Speaker(speaker)
		t.Start, t.End, t.EndOfSpeech, t.FirstAudio = utc(start), utc(end), utc(eos), utc(firstA)
		if t.Signals, err = store.DecodeSignals(sig); err != nil {
			return parley.Call{}, fmt.Errorf("postgres: get call %s: turn %d: %w", id, t.Seq, err)
		}
		c.Turns = append(c.Turns, t)
	}
	if err := rows.Err(); err != nil {
		return parley.Call{}, fmt.Errorf("postgres: get call %s: turns: %w", id, err)
	}
	return c, nil
}

// Events returns the events of call callID in time order (insertion order
// for equal times); ErrNotFound when there is no such call.
func (s *Store) Events(ctx context.Context, callID string) ([]parley.Event, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT EXISTS (SELECT 1 FROM calls WHERE id = $1)`, callID)
	b.Queue(`SELECT at, kind, data FROM events WHERE call_id = $1 ORDER BY at, id`, callID)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()

	var exists bool
	if err := br.QueryRow().Scan(&exists); err != nil {
		return nil, fmt.Errorf("postgres: events of call %s: %w", callID, err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("postgres: events of call %s: %w", callID, err)
	}
	defer rows.Close()
	evs := []parley.Event{}
	for rows.Next() {
		e := parley.Event{CallID: callID}
		var data []byte
		if err := rows.Scan(&e.At, &e.Kind, &data); err != nil {
			return nil, fmt.Errorf("postgres: events of call %s: %w", callID, err)
		}
		e.At = e.At.UTC()
		if len(data) > 0 {
			e.Data = data
		}
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: events of call %s: %w", callID, err)
	}
	if !exists {
		return nil, fmt.Errorf("postgres: events of call %s: %w", callID, parley.ErrNotFound)
	}
	return evs, nil
}

// ListCalls returns the calls matching q, newest first, without turns.
func (s *Store) ListCalls(ctx context.Context, q parley.CallQuery) ([]parley.Call, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if !q.From.IsZero() {
		where = append(where, "started_at >= "+arg(ts(q.From)))
	}
	if !q.To.IsZero() {
		where = append(where, "started_at < "+arg(ts(q.To)))
	}
	if q.Number != "" {
		n := arg(q.Number)
		where = append(where, "(from_number = "+n+" OR to_number = "+n+")")
	}
	if q.Outcome != "" {
		where = append(where, "outcome = "+arg(string(q.Outcome)))
	}
	if q.Text != "" {
		terms := store.SearchTerms(q.Text)
		if len(terms) == 0 {
			return []parley.Call{}, nil // nothing searchable: no transcript can match
		}
		// Each word may be in any turn of the call. A word PostgreSQL
		// itself drops (its stop list can differ from store's) is skipped
		// rather than matching nothing.
		for _, term := range terms {
			p := arg(term)
			where = append(where, `(numnode(plainto_tsquery('english', `+p+`)) = 0 OR id IN (
				SELECT call_id FROM turns WHERE text_search @@ plainto_tsquery('english', `+p+`)))`)
		}
	}
	query := `SELECT ` + callColumns + ` FROM calls`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	limit, offset := store.Page(q)
	query += ` ORDER BY started_at DESC, id DESC LIMIT ` + arg(limit) + ` OFFSET ` + arg(offset)

	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list calls: %w", err)
	}
	defer rows.Close()
	calls := []parley.Call{}
	for rows.Next() {
		c, err := scanCall(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list calls: %w", err)
		}
		calls = append(calls, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list calls: %w", err)
	}
	return calls, nil
}

// Close closes the pool, waiting for connections in use to be released.
// It is safe to call more than once.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

func scanCall(r pgx.Row) (parley.Call, error) {
	var (
		c                parley.Call
		channel, outcome string
		ended            *time.Time
	)
	if err := r.Scan(&c.ID, &channel, &c.From, &c.To, &c.StartedAt, &ended, &outcome, &c.Reason, &c.Node); err != nil {
		return parley.Call{}, err
	}
	c.Channel, c.Outcome = parley.Channel(channel), parley.Outcome(outcome)
	c.StartedAt = c.StartedAt.UTC()
	c.EndedAt = utc(ended)
	return c, nil
}

// ts is how a time is stored: truncated to the millisecond, or NULL when unset.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return store.Millis(t)
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
