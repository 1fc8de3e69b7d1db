// Package sqlite is parley's embedded parley.Store: one SQLite file in the
// data directory, driven by modernc.org/sqlite (pure Go, no cgo).
//
// The database runs in WAL mode so that readers (supervisor consoles,
// exports) never block the writer and the writer never blocks them. All
// writes go through a single connection, which serialises them inside the
// process without SQLITE_BUSY retries; busy_timeout covers a second
// process (a CLI export) touching the same file. synchronous=NORMAL means a
// committed turn survives a crash of parley; only a power loss can take
// back the last few commits, and it never corrupts the file.
//
// Transcripts are indexed with FTS5 (porter stemmer over unicode61), which
// modernc's build includes. See package store for the behaviour every
// backend shares.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// busyTimeout is how long a statement waits for another process's lock.
const busyTimeout = 10 * time.Second

// Store is a parley.Store in one SQLite file. It is safe for concurrent use.
type Store struct {
	path  string
	write *sql.DB // exactly one connection: every write, in order
	read  *sql.DB // a few query_only connections for reads

	insertTurn  *sql.Stmt
	insertEvent *sql.Stmt
	hot         map[string]*sql.Stmt // prepared statements by text, see prepared

	closeOnce sync.Once
	closeErr  error
}

var (
	_ parley.Store  = (*Store)(nil)
	_ store.Batcher = (*Store)(nil)
)

// Open opens (creating if needed) the database file at path, creating its
// directory too, and brings its schema up to date before returning.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s := &Store{path: path}
	ctx := context.Background()

	w, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s.write = w
	if err := s.checkWAL(ctx); err != nil {
		return nil, errors.Join(err, w.Close())
	}
	if err := s.migrate(ctx); err != nil {
		return nil, errors.Join(err, w.Close())
	}
	if s.insertTurn, err = w.PrepareContext(ctx, insertTurnSQL); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: prepare turn insert: %w", err), w.Close())
	}
	if s.insertEvent, err = w.PrepareContext(ctx, insertEventSQL); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: prepare event insert: %w", err), w.Close())
	}
	if s.hot, err = prepareHot(ctx, w); err != nil {
		return nil, errors.Join(err, w.Close())
	}

	r, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open readers %s: %w", path, err), w.Close())
	}
	readers := min(max(runtime.GOMAXPROCS(0), 2), 8)
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	if err := r.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open readers %s: %w", path, err), r.Close(), w.Close())
	}
	s.read = r
	return s, nil
}

// dsn builds the modernc DSN for path. A "file:" URI keeps a '?' or '#'
// in the path from being read as the start of the parameters.
func dsn(path string, writer bool) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	p := fmt.Sprintf("file:%s?_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", esc, busyTimeout.Milliseconds())
	if writer {
		// BEGIN IMMEDIATE takes the write lock up front, so a transaction
		// never fails half-way on a lock upgrade.
		return p + "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	}
	return p + "&_pragma=query_only(1)"
}

// checkWAL confirms the file really is in WAL mode: on a file system that
// cannot share memory maps SQLite silently keeps the rollback journal, and
// readers would then block the writer.
func (s *Store) checkWAL(ctx context.Context) error {
	var mode string
	if err := s.write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: open %s: journal mode is %q, want wal", s.path, mode)
	}
	return nil
}

// migrate applies the embedded migrations the file has not seen, all in
// one IMMEDIATE transaction, so two processes starting together apply each
// migration once and a failure leaves the schema as it was.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := store.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("sqlite: migrate: create schema_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, tx)
	if err != nil {
		return err
	}
	pending, err := store.Pending(ms, applied)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	for _, m := range pending {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("sqlite: migrate %04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("sqlite: migrate %04d_%s: record: %w", m.Version, m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: migrate: commit: %w", err)
	}
	return nil
}

func appliedVersions(ctx context.Context, tx *sql.Tx) (map[int]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrate: read versions: %w", err)
	}
	defer rows.Close()
	applied := make(map[int]bool)
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("sqlite: migrate: read versions: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: migrate: read versions: %w", err)
	}
	return applied, nil
}

const insertCallSQL = `INSERT INTO calls (id, channel, from_number, to_number, started_at, ended_at, outcome, reason, node)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

const insertTurnSQL = `INSERT INTO turns (call_id, seq, speaker, text, intended, interrupted, dtmf,
	start_at, end_at, end_of_speech, first_audio, signals)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const insertEventSQL = `INSERT INTO events (call_id, at, kind, data) VALUES (?, ?, ?, ?)`

// CreateCall stores c and the turns it carries in one transaction.
func (s *Store) CreateCall(ctx context.Context, c parley.Call) error {
	return s.inTx(ctx, "create call "+c.ID, func(tx *sql.Tx) error { return s.createCall(ctx, s.prepared(tx), c) })
}

func (s *Store) createCall(ctx context.Context, tx *prepared, c parley.Call) error {
	if err := store.CheckCall(c); err != nil {
		return fmt.Errorf("sqlite: create call: %w", err)
	}
	if _, err := tx.ExecContext(ctx, insertCallSQL, c.ID, string(c.Channel), c.From, c.To,
		millis(c.StartedAt), millis(c.EndedAt), string(c.Outcome), c.Reason, c.Node); err != nil {
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			return fmt.Errorf("sqlite: create call %s: %w", c.ID, store.ErrDuplicate)
		}
		return fmt.Errorf("sqlite: create call %s: %w", c.ID, err)
	}
	if err := markRepeat(ctx, tx, c); err != nil {
		return err
	}
	if len(c.Turns) > 0 {
		stmt := tx.stmt(ctx, s.insertTurn)
		for _, t := range c.Turns {
			t.CallID = c.ID
			if err := execTurn(ctx, stmt, t); err != nil {
				return err
			}
		}
	}
	if c.Outcome != "" {
		return finishCall(ctx, tx, c.ID)
	}
	return nil
}

// inTx runs fn in a write transaction and commits it when fn succeeds.
func (s *Store) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s: begin: %w", what, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: %s: commit: %w", what, err)
	}
	return nil
}

// WriteBatch applies ws in order in one transaction, all or none; it is
// how store.Async commits a burst of turns with one WAL sync.
func (s *Store) WriteBatch(ctx context.Context, ws []store.Write) error {
	return s.inTx(ctx, "write batch", func(sqlTx *sql.Tx) error {
		tx := s.prepared(sqlTx)
		var turnStmt, eventStmt *sql.Stmt
		for i, w := range ws {
			var err error
			switch {
			case w.CreateCall != nil:
				err = s.createCall(ctx, tx, *w.CreateCall)
			case w.EndCall != nil:
				err = endCall(ctx, tx, w.EndCall.ID, w.EndCall.EndedAt, w.EndCall.Outcome, w.EndCall.Reason)
			case w.AppendTurn != nil:
				if turnStmt == nil {
					turnStmt = tx.stmt(ctx, s.insertTurn)
				}
				err = appendTurn(ctx, turnStmt, *w.AppendTurn)
			case w.AppendEvent != nil:
				if eventStmt == nil {
					eventStmt = tx.stmt(ctx, s.insertEvent)
				}
				err = appendEvent(ctx, tx, eventStmt, *w.AppendEvent)
			default:
				err = fmt.Errorf("sqlite: write batch: write %d is empty", i)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// EndCall records the end of call id; ErrNotFound when there is no such call.
// It also fills the call's KPI columns from its turns.
func (s *Store) EndCall(ctx context.Context, id string, endedAt time.Time, outcome parley.Outcome, reason string) error {
	return s.inTx(ctx, "end call "+id, func(tx *sql.Tx) error {
		return endCall(ctx, s.prepared(tx), id, endedAt, outcome, reason)
	})
}

const endCallSQL = `UPDATE calls SET ended_at = ?, outcome = ?, reason = ? WHERE id = ?`

func endCall(ctx context.Context, db sqlExecer, id string, endedAt time.Time, outcome parley.Outcome, reason string) error {
	res, err := db.ExecContext(ctx, endCallSQL, millis(endedAt), string(outcome), reason, id)
	if err != nil {
		return fmt.Errorf("sqlite: end call %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: end call %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: end call %s: %w", id, parley.ErrNotFound)
	}
	return finishCall(ctx, db, id)
}

// AppendTurn stores one turn of an existing call.
func (s *Store) AppendTurn(ctx context.Context, t parley.Turn) error {
	return appendTurn(ctx, s.insertTurn, t)
}

func appendTurn(ctx context.Context, stmt *sql.Stmt, t parley.Turn) error {
	if err := store.CheckTurn(t); err != nil {
		return fmt.Errorf("sqlite: append turn: %w", err)
	}
	return execTurn(ctx, stmt, t)
}

func execTurn(ctx context.Context, stmt *sql.Stmt, t parley.Turn) error {
	sig, err := store.EncodeSignals(t.Signals)
	if err != nil {
		return fmt.Errorf("sqlite: append turn %d to call %s: %w", t.Seq, t.CallID, err)
	}
	var sigArg any
	if sig != nil {
		sigArg = string(sig) // TEXT, not BLOB, in a STRICT table
	}
	interrupted := 0
	if t.Interrupted {
		interrupted = 1
	}
	_, err = stmt.ExecContext(ctx, t.CallID, t.Seq, string(t.Speaker), t.Text, t.Intended, interrupted, t.DTMF,
		millis(t.Start), millis(t.End), millis(t.EndOfSpeech), millis(t.FirstAudio), sigArg)
	switch {
	case err == nil:
		return nil
	case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
		return fmt.Errorf("sqlite: append turn %d to call %s: %w", t.Seq, t.CallID, parley.ErrNotFound)
	case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE):
		return fmt.Errorf("sqlite: append turn %d to call %s: %w", t.Seq, t.CallID, store.ErrDuplicate)
	}
	return fmt.Errorf("sqlite: append turn %d to call %s: %w", t.Seq, t.CallID, err)
}

// AppendEvent stores one event of an existing call, and copies what it
// tells the KPIs onto the call (parley.FactsOf) in the same transaction.
func (s *Store) AppendEvent(ctx context.Context, e parley.Event) error {
	if _, ok := parley.FactsOf(e); !ok {
		return appendEvent(ctx, s.write, s.insertEvent, e)
	}
	return s.inTx(ctx, "append "+e.Kind+" event", func(tx *sql.Tx) error {
		p := s.prepared(tx)
		return appendEvent(ctx, p, p.stmt(ctx, s.insertEvent), e)
	})
}

func appendEvent(ctx context.Context, db sqlExecer, stmt *sql.Stmt, e parley.Event) error {
	if err := store.CheckEvent(e); err != nil {
		return fmt.Errorf("sqlite: append event: %w", err)
	}
	var data any
	if len(e.Data) > 0 {
		data = string(e.Data)
	}
	_, err := stmt.ExecContext(ctx, e.CallID, millis(e.At), e.Kind, data)
	switch {
	case err == nil:
		if f, ok := parley.FactsOf(e); ok {
			return applyFacts(ctx, db, e, f)
		}
		return nil
	case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
		return fmt.Errorf("sqlite: append %s event to call %s: %w", e.Kind, e.CallID, parley.ErrNotFound)
	}
	return fmt.Errorf("sqlite: append %s event to call %s: %w", e.Kind, e.CallID, err)
}

const callColumns = `id, channel, from_number, to_number, started_at, ended_at, outcome, reason, node`

// GetCall returns call id with its turns in seq order, read from one snapshot.
func (s *Store) GetCall(ctx context.Context, id string) (parley.Call, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return parley.Call{}, fmt.Errorf("sqlite: get call %s: begin: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to keep
	c, err := scanCall(tx.QueryRowContext(ctx, `SELECT `+callColumns+` FROM calls WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return parley.Call{}, fmt.Errorf("sqlite: get call %s: %w", id, parley.ErrNotFound)
	}
	if err != nil {
		return parley.Call{}, fmt.Errorf("sqlite: get call %s: %w", id, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, speaker, text, intended, interrupted, dtmf,
		start_at, end_at, end_of_speech, first_audio, signals
		FROM turns WHERE call_id = ? ORDER BY seq`, id)
	if err != nil {
		return parley.Call{}, fmt.Errorf("sqlite: get call %s: turns: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		t := parley.Turn{CallID: id}
		var (
			speaker                 string
			interrupted             int
			start, end, eos, firstA sql.NullInt64
			sig                     sql.NullString
		)
		if err := rows.Scan(&t.Seq, &speaker, &t.Text, &t.Intended, &interrupted, &t.DTMF,
			&start, &end, &eos, &firstA, &sig); err != nil {
			return parley.Call{}, fmt.Errorf("sqlite: get call %s: turns: %w", id, err)
		}
		t.Speaker = parley.Speaker(speaker)
		t.Interrupted = interrupted != 0
		t.Start, t.End, t.EndOfSpeech, t.FirstAudio = fromMillis(start), fromMillis(end), fromMillis(eos), fromMillis(firstA)
		if sig.Valid {
			if t.Signals, err = store.DecodeSignals([]byte(sig.String)); err != nil {
				return parley.Call{}, fmt.Errorf("sqlite: get call %s: turn %d: %w", id, t.Seq, err)
			}
		}
		c.Turns = append(c.Turns, t)
	}
	if err := rows.Err(); err != nil {
		return parley.Call{}, fmt.Errorf("sqlite: get call %s: turns: %w", id, err)
	}
	return c, nil
}

// Events returns the events of call callID in time order (insertion order
// for equal times); ErrNotFound when there is no such call.
func (s *Store) Events(ctx context.Context, callID string) ([]parley.Event, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: events of call %s: begin: %w", callID, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to keep
	rows, err := tx.QueryContext(ctx, `SELECT at, kind, data FROM events WHERE call_id = ? ORDER BY at, id`, callID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events of call %s: %w", callID, err)
	}
	defer rows.Close()
	evs := []parley.Event{}
	for rows.Next() {
		e := parley.Event{CallID: callID}
		var (
			at   int64
			data sql.NullString
		)
		if err := rows.Scan(&at, &e.Kind, &data); err != nil {
			return nil, fmt.Errorf("sqlite: events of call %s: %w", callID, err)
		}
		e.At = time.UnixMilli(at).UTC()
		if data.Valid {
			e.Data = []byte(data.String)
		}
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: events of call %s: %w", callID, err)
	}
	if len(evs) == 0 {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM calls WHERE id = ?`, callID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("sqlite: events of call %s: %w", callID, parley.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: events of call %s: %w", callID, err)
		}
	}
	return evs, nil
}

// ListCalls returns the calls matching q, newest first, without turns.
func (s *Store) ListCalls(ctx context.Context, q parley.CallQuery) ([]parley.Call, error) {
	var (
		where []string
		args  []any
	)
	if !q.From.IsZero() {
		where, args = append(where, "started_at >= ?"), append(args, millis(q.From))
	}
	if !q.To.IsZero() {
		where, args = append(where, "started_at < ?"), append(args, millis(q.To))
	}
	if q.Number != "" {
		where, args = append(where, "(from_number = ? OR to_number = ?)"), append(args, q.Number, q.Number)
	}
	if q.Outcome != "" {
		where, args = append(where, "outcome = ?"), append(args, string(q.Outcome))
	}
	if q.Text != "" {
		terms := store.SearchTerms(q.Text)
		if len(terms) == 0 {
			return []parley.Call{}, nil // nothing searchable: no transcript can match
		}
		// Each word may be in any turn of the call, so each is its own
		// semi-join rather than one FTS query per turn.
		for _, term := range terms {
			where = append(where, `id IN (SELECT turns.call_id FROM turns_fts
				JOIN turns ON turns.id = turns_fts.rowid WHERE turns_fts MATCH ?)`)
			args = append(args, `"`+strings.ReplaceAll(term, `"`, `""`)+`"`)
		}
	}
	query := `SELECT ` + callColumns + ` FROM calls`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	limit, offset := store.Page(q)
	query += ` ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?`
	args = append(args, limit, offset)

	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list calls: %w", err)
	}
	defer rows.Close()
	calls := []parley.Call{}
	for rows.Next() {
		c, err := scanCall(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list calls: %w", err)
		}
		calls = append(calls, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list calls: %w", err)
	}
	return calls, nil
}

// Close closes the reader and writer connections; later calls return the
// first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		closers := []interface{ Close() error }{s.insertTurn, s.insertEvent}
		for _, st := range s.hot {
			closers = append(closers, st)
		}
		for _, c := range append(closers, s.read, s.write) {
			if err := c.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("sqlite: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

type rowScanner interface{ Scan(dest ...any) error }

func scanCall(r rowScanner) (parley.Call, error) {
	var (
		c                parley.Call
		channel, outcome string
		started          int64
		ended            sql.NullInt64
	)
	if err := r.Scan(&c.ID, &channel, &c.From, &c.To, &started, &ended, &outcome, &c.Reason, &c.Node); err != nil {
		return parley.Call{}, err
	}
	c.Channel, c.Outcome = parley.Channel(channel), parley.Outcome(outcome)
	c.StartedAt = time.UnixMilli(started).UTC()
	c.EndedAt = fromMillis(ended)
	return c, nil
}

// millis is how a time is stored: unix milliseconds, or NULL when unset.
func millis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMillis(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// isConstraint reports whether err is the SQLite extended result code want.
func isConstraint(err error, want int) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == want
}
