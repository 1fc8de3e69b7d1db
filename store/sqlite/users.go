package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store"
)

var _ parley.UserStore = (*Store)(nil)

const userColumns = `id, name, role, skills, password_hash, created_at`

// CreateUser stores u; a taken ID or name wraps store.ErrDuplicate.
func (s *Store) CreateUser(ctx context.Context, u parley.User) error {
	if err := store.CheckUser(u); err != nil {
		return fmt.Errorf("sqlite: create user: %w", err)
	}
	skills := u.Skills
	if skills == nil {
		skills = []string{}
	}
	js, err := json.Marshal(skills)
	if err != nil {
		return fmt.Errorf("sqlite: create user %s: skills: %w", u.Name, err)
	}
	_, err = s.write.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		u.ID, u.Name, string(u.Role), string(js), u.PasswordHash, u.CreatedAt.UnixMilli())
	switch {
	case err == nil:
		return nil
	case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY), isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE):
		return fmt.Errorf("sqlite: create user %s: %w", u.Name, store.ErrDuplicate)
	}
	return fmt.Errorf("sqlite: create user %s: %w", u.Name, err)
}

// UserByName returns the user called name; ErrNotFound when there is none.
func (s *Store) UserByName(ctx context.Context, name string) (parley.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return parley.User{}, fmt.Errorf("sqlite: user %q: %w", name, parley.ErrNotFound)
	}
	if err != nil {
		return parley.User{}, fmt.Errorf("sqlite: user %q: %w", name, err)
	}
	return u, nil
}

// UserByID returns the user with that ID; ErrNotFound when there is none.
func (s *Store) UserByID(ctx context.Context, id string) (parley.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return parley.User{}, fmt.Errorf("sqlite: user id %s: %w", id, parley.ErrNotFound)
	}
	if err != nil {
		return parley.User{}, fmt.Errorf("sqlite: user id %s: %w", id, err)
	}
	return u, nil
}

// ListUsers returns every user ordered by name.
func (s *Store) ListUsers(ctx context.Context) ([]parley.User, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	defer rows.Close()
	users := []parley.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	return users, nil
}

// DeleteUser removes the user called name and, through the foreign key,
// every session of theirs; ErrNotFound when there is no such user.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	res, err := s.write.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("sqlite: delete user %q: %w", name, err)
	}
	return affected(res, "delete user "+fmt.Sprintf("%q", name))
}

// CreateSession stores a session of an existing user; an unknown user
// wraps ErrNotFound and a reused token hash wraps store.ErrDuplicate.
func (s *Store) CreateSession(ctx context.Context, sess parley.Session) error {
	if err := store.CheckSession(sess); err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	_, err := s.write.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?)`, sess.TokenHash, sess.UserID, sess.CSRF, sess.CreatedAt.UnixMilli(), sess.ExpiresAt.UnixMilli())
	switch {
	case err == nil:
		return nil
	case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
		return fmt.Errorf("sqlite: create session of user %s: %w", sess.UserID, parley.ErrNotFound)
	case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY):
		return fmt.Errorf("sqlite: create session of user %s: %w", sess.UserID, store.ErrDuplicate)
	}
	return fmt.Errorf("sqlite: create session of user %s: %w", sess.UserID, err)
}

// SessionByTokenHash returns the session stored under hash, expired or not.
func (s *Store) SessionByTokenHash(ctx context.Context, hash string) (parley.Session, error) {
	sess := parley.Session{TokenHash: hash}
	var created, expires int64
	err := s.read.QueryRowContext(ctx, `SELECT user_id, csrf, created_at, expires_at FROM sessions WHERE token_hash = ?`, hash).
		Scan(&sess.UserID, &sess.CSRF, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		// The hash is a credential's fingerprint: keep it out of messages.
		return parley.Session{}, fmt.Errorf("sqlite: session: %w", parley.ErrNotFound)
	}
	if err != nil {
		return parley.Session{}, fmt.Errorf("sqlite: session: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC()
	return sess, nil
}

// TouchSession moves a session's expiry; ErrNotFound when it is gone.
func (s *Store) TouchSession(ctx context.Context, hash string, expiresAt time.Time) error {
	if expiresAt.IsZero() {
		return errors.New("sqlite: touch session: zero expiry")
	}
	res, err := s.write.ExecContext(ctx, `UPDATE sessions SET expires_at = ? WHERE token_hash = ?`, expiresAt.UnixMilli(), hash)
	if err != nil {
		return fmt.Errorf("sqlite: touch session: %w", err)
	}
	return affected(res, "touch session")
}

// DeleteSession removes one session; ErrNotFound when it is already gone.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	res, err := s.write.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, hash)
	if err != nil {
		return fmt.Errorf("sqlite: delete session: %w", err)
	}
	return affected(res, "delete session")
}

// DeleteExpiredSessions removes the sessions expired at now.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired sessions: %w", err)
	}
	return int(n), nil
}

// ForgetNumber deletes every call from or to number; turns, events and
// their full-text entries go with them (foreign keys and triggers).
func (s *Store) ForgetNumber(ctx context.Context, number string) (int, error) {
	if number == "" {
		return 0, errors.New("sqlite: forget number: empty number")
	}
	res, err := s.write.ExecContext(ctx, `DELETE FROM calls WHERE from_number = ? OR to_number = ?`, number, number)
	if err != nil {
		return 0, fmt.Errorf("sqlite: forget number: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: forget number: %w", err)
	}
	return int(n), nil
}

// ForgetBefore deletes every call that started before t; turns, events and
// their full-text entries go with them.
func (s *Store) ForgetBefore(ctx context.Context, t time.Time) (int, error) {
	if t.IsZero() {
		return 0, errors.New("sqlite: forget before: no time given")
	}
	res, err := s.write.ExecContext(ctx, `DELETE FROM calls WHERE started_at < ?`, t.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("sqlite: forget before: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: forget before: %w", err)
	}
	return int(n), nil
}

// affected turns "no row changed" into ErrNotFound.
func affected(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s: %w", what, parley.ErrNotFound)
	}
	return nil
}

func scanUser(r rowScanner) (parley.User, error) {
	var (
		u             parley.User
		role, skills  string
		createdMillis int64
	)
	if err := r.Scan(&u.ID, &u.Name, &role, &skills, &u.PasswordHash, &createdMillis); err != nil {
		return parley.User{}, err
	}
	u.Role = parley.Role(role)
	u.CreatedAt = time.UnixMilli(createdMillis).UTC()
	if err := json.Unmarshal([]byte(skills), &u.Skills); err != nil {
		return parley.User{}, fmt.Errorf("user %s: skills: %w", u.Name, err)
	}
	if len(u.Skills) == 0 {
		u.Skills = nil
	}
	return u, nil
}
