package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/store"
)

// UserBackend is what UserContract tests: a parley.UserStore that can be closed.
type UserBackend interface {
	parley.UserStore
	Close() error
}

// UserContract checks that the stores made by open keep users and
// sessions as parley.UserStore documents. Like Contract, each subtest gets
// a new, empty store and closes it when it ends.
func UserContract(t *testing.T, open func(t *testing.T) UserBackend) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s UserBackend)
	}{
		{"UsersRoundTrip", contractUsersRoundTrip},
		{"CreateUserRejects", contractCreateUserRejects},
		{"DeleteUser", contractDeleteUser},
		{"Sessions", contractSessions},
		{"SessionRejects", contractSessionRejects},
		{"ExpiredSessions", contractExpiredSessions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.run(t, s)
		})
	}
}

func testUser(id, name string, role parley.Role, skills ...string) parley.User {
	return parley.User{ID: id, Name: name, Role: role, Skills: skills,
		PasswordHash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA", CreatedAt: at(time.Duration(len(name)) * time.Second)}
}

// storedUser is u as a store gives it back.
func storedUser(u parley.User) parley.User {
	u.CreatedAt = store.Millis(u.CreatedAt)
	if len(u.Skills) == 0 {
		u.Skills = nil
	}
	return u
}

func checkUser(t *testing.T, got, want parley.User) {
	t.Helper()
	want = storedUser(want)
	if !reflect.DeepEqual(got, want) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("user = %+v (%s), want %+v", got, got.CreatedAt.Location(), want)
	}
}

func mustCreateUser(t *testing.T, s parley.UserStore, u parley.User) {
	t.Helper()
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", u.Name, err)
	}
}

func contractUsersRoundTrip(t *testing.T, s UserBackend) {
	ctx := context.Background()
	users := []parley.User{
		testUser("u-3", "zoë", parley.RoleAdmin),
		testUser("u-1", "alice", parley.RoleAgent, "cards", "payments"),
		testUser("u-2", "Bob", parley.RoleSupervisor),
	}
	for _, u := range users {
		mustCreateUser(t, s, u)
	}
	for _, u := range users {
		got, err := s.UserByName(ctx, u.Name)
		if err != nil {
			t.Fatalf("UserByName(%s): %v", u.Name, err)
		}
		checkUser(t, got, u)
		got, err = s.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatalf("UserByID(%s): %v", u.ID, err)
		}
		checkUser(t, got, u)
	}
	list, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	var names []string
	for _, u := range list {
		names = append(names, u.Name)
	}
	// Byte order: upper case before lower case, whatever the database's collation.
	if want := []string{"Bob", "alice", "zoë"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("ListUsers names = %q, want %q", names, want)
	}
	if b, err := json.Marshal(list[1]); err != nil || string(b) != `{"id":"u-1","name":"alice","role":"agent","skills":["cards","payments"],"created_at":"2026-03-14T08:26:58.589Z"}` {
		t.Errorf("user JSON = %s, %v; the password hash must never be in it", b, err)
	}
	for _, name := range []string{"ALICE", "alice ", "nobody", ""} {
		if _, err := s.UserByName(ctx, name); !errors.Is(err, parley.ErrNotFound) {
			t.Errorf("UserByName(%q) = %v, want ErrNotFound (names are exact)", name, err)
		}
	}
	if _, err := s.UserByID(ctx, "u-nobody"); !errors.Is(err, parley.ErrNotFound) {
		t.Errorf("UserByID(unknown) = %v, want ErrNotFound", err)
	}
}

func contractCreateUserRejects(t *testing.T, s UserBackend) {
	ctx := context.Background()
	orig := testUser("u-1", "alice", parley.RoleAgent)
	mustCreateUser(t, s, orig)
	mod := func(f func(u *parley.User)) parley.User {
		u := testUser("u-new", "newbie", parley.RoleAgent)
		f(&u)
		return u
	}
	tests := []struct {
		name    string
		user    parley.User
		wantErr error // nil: any error
	}{
		{"duplicate name", mod(func(u *parley.User) { u.Name = "alice" }), store.ErrDuplicate},
		{"duplicate id", mod(func(u *parley.User) { u.ID = "u-1" }), store.ErrDuplicate},
		{"no id", mod(func(u *parley.User) { u.ID = "" }), nil},
		{"no name", mod(func(u *parley.User) { u.Name = "" }), nil},
		{"space in name", mod(func(u *parley.User) { u.Name = "new bie" }), nil},
		{"control character in name", mod(func(u *parley.User) { u.Name = "new\x00bie" }), nil},
		{"long name", mod(func(u *parley.User) { u.Name = fmt.Sprintf("%065d", 0) }), nil},
		{"unknown role", mod(func(u *parley.User) { u.Role = "root" }), nil},
		{"no password", mod(func(u *parley.User) { u.PasswordHash = "" }), nil},
		{"no creation time", mod(func(u *parley.User) { u.CreatedAt = time.Time{} }), nil},
		{"comma in skill", mod(func(u *parley.User) { u.Skills = []string{"cards,payments"} }), nil},
		{"empty skill", mod(func(u *parley.User) { u.Skills = []string{""} }), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CreateUser(ctx, tc.user)
			if err == nil {
				t.Fatalf("CreateUser(%+v) = nil, want an error", tc.user)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("CreateUser error %v does not wrap %v", err, tc.wantErr)
			}
		})
	}
	list, err := s.ListUsers(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("after rejected users ListUsers = %+v, %v; want only alice", list, err)
	}
	checkUser(t, list[0], orig)
}

func testSession(hash, userID string, expires time.Duration) parley.Session {
	return parley.Session{TokenHash: hash, UserID: userID, CSRF: "csrf-" + hash, CreatedAt: at(0), ExpiresAt: at(expires)}
}

func contractDeleteUser(t *testing.T, s UserBackend) {
	ctx := context.Background()
	mustCreateUser(t, s, testUser("u-1", "alice", parley.RoleAgent))
	mustCreateUser(t, s, testUser("u-2", "bob", parley.RoleAgent))
	for _, sess := range []parley.Session{testSession("h1", "u-1", time.Hour), testSession("h2", "u-1", time.Hour), testSession("h3", "u-2", time.Hour)} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if _, err := s.UserByName(ctx, "alice"); !errors.Is(err, parley.ErrNotFound) {
		t.Fatalf("deleted user: UserByName = %v, want ErrNotFound", err)
	}
	for _, h := range []string{"h1", "h2"} {
		if _, err := s.SessionByTokenHash(ctx, h); !errors.Is(err, parley.ErrNotFound) {
			t.Errorf("session %s of a deleted user: %v, want ErrNotFound", h, err)
		}
	}
	if _, err := s.SessionByTokenHash(ctx, "h3"); err != nil {
		t.Errorf("another user's session went too: %v", err)
	}
	if err := s.DeleteUser(ctx, "alice"); !errors.Is(err, parley.ErrNotFound) {
		t.Fatalf("DeleteUser twice = %v, want ErrNotFound", err)
	}
	// The name is free again.
	mustCreateUser(t, s, testUser("u-3", "alice", parley.RoleSupervisor))
}

func contractSessions(t *testing.T, s UserBackend) {
	ctx := context.Background()
	mustCreateUser(t, s, testUser("u-1", "alice", parley.RoleAgent))
	sess := testSession("0123abcd", "u-1", 12*time.Hour)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	want := sess
	want.CreatedAt, want.ExpiresAt = store.Millis(sess.CreatedAt), store.Millis(sess.ExpiresAt)
	got, err := s.SessionByTokenHash(ctx, sess.TokenHash)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("SessionByTokenHash = %+v, %v; want %+v", got, err, want)
	}
	later := at(13 * time.Hour)
	if err := s.TouchSession(ctx, sess.TokenHash, later); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	want.ExpiresAt = store.Millis(later)
	if got, err = s.SessionByTokenHash(ctx, sess.TokenHash); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after TouchSession = %+v, %v; want %+v", got, err, want)
	}
	if _, err := s.SessionByTokenHash(ctx, "0123ABCD"); !errors.Is(err, parley.ErrNotFound) {
		t.Fatalf("SessionByTokenHash(other case) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, sess.TokenHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := s.SessionByTokenHash(ctx, sess.TokenHash); !errors.Is(err, parley.ErrNotFound) {
		t.Fatalf("deleted session: %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, sess.TokenHash); !errors.Is(err, parley.ErrNotFound) {
		t.Fatalf("DeleteSession twice = %v, want ErrNotFound", err)
	}
	if err := s.TouchSession(ctx, sess.TokenHash, later); !errors.Is(err, parley.ErrNotFound) {
		t.Fatalf("TouchSession of a deleted session = %v, want ErrNotFound", err)
	}
}

func contractSessionRejects(t *testing.T, s UserBackend) {
	ctx := context.Background()
	mustCreateUser(t, s, testUser("u-1", "alice", parley.RoleAgent))
	if err := s.CreateSession(ctx, testSession("h1", "u-1", time.Hour)); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	mod := func(f func(s *parley.Session)) parley.Session {
		sess := testSession("h-new", "u-1", time.Hour)
		f(&sess)
		return sess
	}
	tests := []struct {
		name    string
		sess    parley.Session
		wantErr error
	}{
		{"unknown user", mod(func(s *parley.Session) { s.UserID = "u-nobody" }), parley.ErrNotFound},
		{"reused token hash", mod(func(s *parley.Session) { s.TokenHash = "h1" }), store.ErrDuplicate},
		{"no hash", mod(func(s *parley.Session) { s.TokenHash = "" }), nil},
		{"no user", mod(func(s *parley.Session) { s.UserID = "" }), nil},
		{"no csrf", mod(func(s *parley.Session) { s.CSRF = "" }), nil},
		{"no expiry", mod(func(s *parley.Session) { s.ExpiresAt = time.Time{} }), nil},
		{"expires before it starts", mod(func(s *parley.Session) { s.ExpiresAt = s.CreatedAt.Add(-time.Second) }), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CreateSession(ctx, tc.sess)
			if err == nil {
				t.Fatalf("CreateSession(%+v) = nil, want an error", tc.sess)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("CreateSession error %v does not wrap %v", err, tc.wantErr)
			}
		})
	}
	if _, err := s.SessionByTokenHash(ctx, "h-new"); !errors.Is(err, parley.ErrNotFound) {
		t.Fatalf("a rejected session was stored: %v", err)
	}
}

func contractExpiredSessions(t *testing.T, s UserBackend) {
	ctx := context.Background()
	mustCreateUser(t, s, testUser("u-1", "alice", parley.RoleAgent))
	for i, d := range []time.Duration{time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour} {
		if err := s.CreateSession(ctx, testSession(fmt.Sprintf("h%d", i), "u-1", d)); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
	// Expiry is inclusive: a session is dead at its ExpiresAt.
	n, err := s.DeleteExpiredSessions(ctx, at(2*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want 3", n, err)
	}
	for i, alive := range []bool{false, false, false, true} {
		_, err := s.SessionByTokenHash(ctx, fmt.Sprintf("h%d", i))
		if alive != (err == nil) {
			t.Errorf("session h%d: alive=%v, err=%v", i, alive, err)
		}
	}
	if n, err = s.DeleteExpiredSessions(ctx, at(2*time.Hour)); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredSessions again = %d, %v; want 0", n, err)
	}
}

func contractForgetNumber(t *testing.T, s parley.Store) {
	ctx := context.Background()
	listFixture(t, s)
	for _, id := range []string{"CA-balance", "CA-declined"} {
		if err := s.AppendEvent(ctx, parley.Event{CallID: id, At: at(0), Kind: "decision", Data: json.RawMessage(`{"stay":true}`)}); err != nil {
			t.Fatalf("AppendEvent: %v", err)
		}
	}
	if _, err := s.ForgetNumber(ctx, ""); err == nil {
		t.Fatal("ForgetNumber(\"\") = nil, want an error")
	}
	// +15550001 called twice; every trace of those calls goes, even from search.
	n, err := s.ForgetNumber(ctx, "+15550001")
	if err != nil || n != 2 {
		t.Fatalf("ForgetNumber(+15550001) = %d, %v; want 2", n, err)
	}
	for _, id := range []string{"CA-balance", "CA-declined"} {
		if _, err := s.GetCall(ctx, id); !errors.Is(err, parley.ErrNotFound) {
			t.Errorf("GetCall(%s) after forget = %v, want ErrNotFound", id, err)
		}
		if _, err := s.Events(ctx, id); !errors.Is(err, parley.ErrNotFound) {
			t.Errorf("Events(%s) after forget = %v, want ErrNotFound", id, err)
		}
	}
	tests := []struct {
		query parley.CallQuery
		want  []string
	}{
		{parley.CallQuery{}, []string{"CA-wallet", "CA-stolen"}},
		{parley.CallQuery{Text: "balance"}, nil},
		{parley.CallQuery{Text: "declined"}, nil},
		{parley.CallQuery{Text: "card"}, []string{"CA-wallet", "CA-stolen"}},
	}
	for _, tc := range tests {
		got, err := s.ListCalls(ctx, tc.query)
		if err != nil || !reflect.DeepEqual(callIDs(got), tc.want) {
			t.Errorf("ListCalls(%+v) after forget = %q, %v; want %q", tc.query, callIDs(got), err, tc.want)
		}
	}
	// A dialled number works too, and a number nobody used deletes nothing.
	if n, err := s.ForgetNumber(ctx, "+15558888"); err != nil || n != 1 {
		t.Fatalf("ForgetNumber(+15558888) = %d, %v; want 1 (CA-wallet)", n, err)
	}
	if n, err := s.ForgetNumber(ctx, "+15550001"); err != nil || n != 0 {
		t.Fatalf("ForgetNumber again = %d, %v; want 0", n, err)
	}
	// The remaining call keeps its transcript.
	if c, err := s.GetCall(ctx, "CA-stolen"); err != nil || len(c.Turns) != 2 {
		t.Fatalf("GetCall(CA-stolen) = %d turns, %v; want 2", len(c.Turns), err)
	}
}

func contractForgetBefore(t *testing.T, s parley.Store) {
	ctx := context.Background()
	listFixture(t, s)
	if _, err := s.ForgetBefore(ctx, time.Time{}); err == nil {
		t.Fatal("ForgetBefore(zero time) = nil, want an error")
	}
	// The fixture's calls start at 0, 1, 2 and 3 hours: the first two go.
	n, err := s.ForgetBefore(ctx, at(90*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("ForgetBefore(1h30) = %d, %v; want 2", n, err)
	}
	for _, id := range []string{"CA-balance", "CA-stolen"} {
		if _, err := s.GetCall(ctx, id); !errors.Is(err, parley.ErrNotFound) {
			t.Errorf("GetCall(%s) after retention = %v, want ErrNotFound", id, err)
		}
	}
	got, err := s.ListCalls(ctx, parley.CallQuery{})
	if err != nil || !reflect.DeepEqual(callIDs(got), []string{"CA-wallet", "CA-declined"}) {
		t.Fatalf("ListCalls after retention = %q, %v", callIDs(got), err)
	}
	if got, err := s.ListCalls(ctx, parley.CallQuery{Text: "balance"}); err != nil || len(got) != 0 {
		t.Fatalf("search finds a forgotten transcript: %q, %v", callIDs(got), err)
	}
}
