package store

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/parley-ai/parley"
)

// MaxUserName is the longest login name a backend accepts, in bytes.
const MaxUserName = 64

// CheckUserName reports why name cannot be a login name, or nil: it must
// be 1 to MaxUserName bytes of printable UTF-8 without spaces, so that it
// reads the same in logs, on the console and on the command line.
func CheckUserName(name string) error {
	switch {
	case name == "":
		return errors.New("user name is empty")
	case len(name) > MaxUserName:
		return fmt.Errorf("user name is longer than %d bytes", MaxUserName)
	case !utf8.ValidString(name):
		return errors.New("user name is not valid UTF-8")
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("user name %q has spaces or unprintable characters", name)
	}
	return nil
}

// CheckUser reports why u cannot be stored, or nil. Backends call it before
// touching the database so that both reject the same users with the same words.
func CheckUser(u parley.User) error {
	if u.ID == "" {
		return errors.New("user has no id")
	}
	if err := CheckUserName(u.Name); err != nil {
		return err
	}
	switch {
	case !u.Role.Valid():
		return fmt.Errorf("user %s: unknown role %q", u.Name, u.Role)
	case u.PasswordHash == "":
		return fmt.Errorf("user %s has no password hash", u.Name)
	case u.CreatedAt.IsZero():
		return fmt.Errorf("user %s has no creation time", u.Name)
	}
	for _, s := range u.Skills {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
			return fmt.Errorf("user %s: skill %q is empty or has commas, spaces or unprintable characters", u.Name, s)
		}
	}
	return nil
}

// CheckSession reports why s cannot be stored, or nil.
func CheckSession(s parley.Session) error {
	switch {
	case s.TokenHash == "":
		return errors.New("session has no token hash")
	case s.UserID == "":
		return errors.New("session has no user")
	case s.CSRF == "":
		return errors.New("session has no csrf token")
	case s.CreatedAt.IsZero() || s.ExpiresAt.IsZero():
		return errors.New("session has no creation or expiry time")
	case !s.ExpiresAt.After(s.CreatedAt):
		return errors.New("session expires before it starts")
	}
	return nil
}
