package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store"
)

var _ parley.UserStore = (*Store)(nil)

const userColumns = `id, name, role, skills, password_hash, created_at`

// CreateUser stores u; a taken ID or name wraps store.ErrDuplicate.
func (s *Store) CreateUser(ctx context.Context, u parley.User) error {
	if err := store.CheckUser(u); err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	skills := u.Skills
	if skills == nil {
		skills = []string{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		u.ID, u.Name, string(u.Role), skills, u.PasswordHash, store.Millis(u.CreatedAt))
	switch {
	case err == nil:
		return nil
	case pgCode(err) == codeUniqueViolation:
		return fmt.Errorf("postgres: create user %s: %w", u.Name, store.ErrDuplicate)
	}
	return fmt.Errorf("postgres: create user %s: %w", u.Name, err)
}

// UserByName returns the user called name; ErrNotFound when there is none.
func (s *Store) UserByName(ctx context.Context, name string) (parley.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return parley.User{}, fmt.Errorf("postgres: user %q: %w", name, parley.ErrNotFound)
	}
	if err != nil {
		return parley.User{}, fmt.Errorf("postgres: user %q: %w", name, err)
	}
	return u, nil
}

// UserByID returns the user with that ID; ErrNotFound when there is none.
func (s *Store) UserByID(ctx context.Context, id string) (parley.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return parley.User{}, fmt.Errorf("postgres: user id %s: %w", id, parley.ErrNotFound)
	}
	if err != nil {
		return parley.User{}, fmt.Errorf("postgres: user id %s: %w", id, err)
	}
	return u, nil
}

// ListUsers returns every user ordered by name.
func (s *Store) ListUsers(ctx context.Context) ([]parley.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	defer rows.Close()
	users := []parley.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	return users, nil
}

// DeleteUser removes the user called name and, through the foreign key,
// every session of theirs; ErrNotFound when there is no such user.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE name = $1`, name)
	return affected(tag, err, fmt.Sprintf("delete user %q", name))
}

// CreateSession stores a session of an existing user; an unknown user
// wraps ErrNotFound and a reused token hash wraps store.ErrDuplicate.
func (s *Store) CreateSession(ctx context.Context, sess parley.Session) error {
	if err := store.CheckSession(sess); err != nil {
		return fmt.Errorf("postgres: create session: %w", err)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, sess.TokenHash, sess.UserID, sess.CSRF, store.Millis(sess.CreatedAt), store.Millis(sess.ExpiresAt))
	switch {
	case err == nil:
		return nil
	case pgCode(err) == codeForeignKeyViolation:
		return fmt.Errorf("postgres: create session of user %s: %w", sess.UserID, parley.ErrNotFound)
	case pgCode(err) == codeUniqueViolation:
		return fmt.Errorf("postgres: create session of user %s: %w", sess.UserID, store.ErrDuplicate)
	}
	return fmt.Errorf("postgres: create session of user %s: %w", sess.UserID, err)
}

// SessionByTokenHash returns the session stored under hash, expired or not.
func (s *Store) SessionByTokenHash(ctx context.Context, hash string) (parley.Session, error) {
	sess := parley.Session{TokenHash: hash}
	err := s.pool.QueryRow(ctx, `SELECT user_id, csrf, created_at, expires_at FROM sessions WHERE token_hash = $1`, hash).
		Scan(&sess.UserID, &sess.CSRF, &sess.CreatedAt, &sess.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		// The hash is a credential's fingerprint: keep it out of messages.
		return parley.Session{}, fmt.Errorf("postgres: session: %w", parley.ErrNotFound)
	}
	if err != nil {
		return parley.Session{}, fmt.Errorf("postgres: session: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = sess.CreatedAt.UTC(), sess.ExpiresAt.UTC()
	return sess, nil
}

// TouchSession moves a session's expiry; ErrNotFound when it is gone.
func (s *Store) TouchSession(ctx context.Context, hash string, expiresAt time.Time) error {
	if expiresAt.IsZero() {
		return errors.New("postgres: touch session: zero expiry")
	}
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET expires_at = $1 WHERE token_hash = $2`, store.Millis(expiresAt), hash)
	return affected(tag, err, "touch session")
}

// DeleteSession removes one session; ErrNotFound when it is already gone.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, hash)
	return affected(tag, err, "delete session")
}

// DeleteExpiredSessions removes the sessions expired at now.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, store.Millis(now))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// ForgetNumber deletes every call from or to number; turns and events go
// with them through ON DELETE CASCADE.
func (s *Store) ForgetNumber(ctx context.Context, number string) (int, error) {
	if number == "" {
		return 0, errors.New("postgres: forget number: empty number")
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM calls WHERE from_number = $1 OR to_number = $1`, number)
	if err != nil {
		return 0, fmt.Errorf("postgres: forget number: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// ForgetBefore deletes every call that started before t; turns and events
// go with them through ON DELETE CASCADE.
func (s *Store) ForgetBefore(ctx context.Context, t time.Time) (int, error) {
	if t.IsZero() {
		return 0, errors.New("postgres: forget before: no time given")
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM calls WHERE started_at < $1`, t)
	if err != nil {
		return 0, fmt.Errorf("postgres: forget before: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// affected wraps err, and turns "no row changed" into ErrNotFound.
func affected(tag pgconn.CommandTag, err error, what string) error {
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: %s: %w", what, parley.ErrNotFound)
	}
	return nil
}

func scanUser(r pgx.Row) (parley.User, error) {
	var (
		u    parley.User
		role string
	)
	if err := r.Scan(&u.ID, &u.Name, &role, &u.Skills, &u.PasswordHash, &u.CreatedAt); err != nil {
		return parley.User{}, err
	}
	u.Role = parley.Role(role)
	u.CreatedAt = u.CreatedAt.UTC()
	if len(u.Skills) == 0 {
		u.Skills = nil
	}
	return u, nil
}
