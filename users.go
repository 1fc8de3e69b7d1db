package parley

import (
	"context"
	"time"
)

// Role is what a console user may do. Roles are not ordered: a route lists
// every role it admits, so that adding a role never widens a route by accident.
type Role string

// Roles of console users.
const (
	RoleAgent      Role = "agent"      // takes transferred calls
	RoleSupervisor Role = "supervisor" // watches live calls and reads call history
	RoleAdmin      Role = "admin"      // manages users and configuration
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleAgent, RoleSupervisor, RoleAdmin:
		return true
	}
	return false
}

// User is a person who logs in to the agent or supervisor console.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"` // login name, unique
	Role Role   `json:"role"`
	// Skills route transferred calls to agents who can handle them ("cards", "payments").
	Skills []string `json:"skills,omitempty"`
	// PasswordHash is the encoded argon2id hash; it never leaves the server.
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
}

// Session is a logged-in browser. Only the SHA-256 of the session token is
// stored, so a copy of the database does not let anyone log in.
type Session struct {
	TokenHash string    // hex SHA-256 of the cookie's token
	UserID    string    // User.ID of whoever logged in
	CSRF      string    // token every state-changing request must echo in a header
	CreatedAt time.Time // login time
	ExpiresAt time.Time // the session is dead from this instant on
}

// UserStore keeps console users and their sessions. Implementations:
// store/sqlite and store/postgres. Lookups of what does not exist fail with
// an error wrapping ErrNotFound; deleting a user deletes their sessions.
type UserStore interface {
	// CreateUser stores a new user; a taken ID or name is an error.
	CreateUser(ctx context.Context, u User) error
	// UserByName returns the user who logs in as name.
	UserByName(ctx context.Context, name string) (User, error)
	// UserByID returns the user with that ID (a session's owner).
	UserByID(ctx context.Context, id string) (User, error)
	// ListUsers returns every user, ordered by name.
	ListUsers(ctx context.Context) ([]User, error)
	// DeleteUser removes the user called name and all their sessions.
	DeleteUser(ctx context.Context, name string) error
	// CreateSession stores a new session of an existing user.
	CreateSession(ctx context.Context, s Session) error
	// SessionByTokenHash returns the session whose token hashes to hash,
	// expired or not: expiry is the caller's decision.
	SessionByTokenHash(ctx context.Context, hash string) (Session, error)
	// TouchSession moves a session's expiry to expiresAt (sliding expiry).
	TouchSession(ctx context.Context, hash string, expiresAt time.Time) error
	// DeleteSession removes one session (logout).
	DeleteSession(ctx context.Context, hash string) error
	// DeleteExpiredSessions removes every session expired at now and
	// returns how many went.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
}
