package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters. They are written into every
// hash, so raising them later only affects new passwords.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8
	SaltLen uint32 // bytes of random salt per password
	KeyLen  uint32 // bytes of derived key
}

// DefaultParams follow RFC 9106's second recommended option (64 MiB, three
// passes), with four lanes: about 100 ms on one server core.
var DefaultParams = Params{Memory: 64 * 1024, Time: 3, Threads: 4, SaltLen: 16, KeyLen: 32}

// Password length bounds. The upper one stops a megabyte "password" from
// being hashed; argon2 would take it, but nobody types it.
const (
	MinPasswordLen = 10   // characters
	MaxPasswordLen = 1024 // bytes
)

// Bounds a stored hash's parameters must respect before VerifyPassword
// spends memory and time on it.
const (
	maxMemory  = 1 << 21 // KiB: 2 GiB
	maxTime    = 64
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 128
)

var b64 = base64.RawStdEncoding

// CheckPassword reports why pw is not acceptable as a new password, or nil.
func CheckPassword(pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return errors.New("password is not valid UTF-8")
	case utf8.RuneCountInString(pw) < MinPasswordLen:
		return fmt.Errorf("password is shorter than %d characters", MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return fmt.Errorf("password is longer than %d bytes", MaxPasswordLen)
	}
	return nil
}

// HashPassword hashes pw with argon2id, DefaultParams and a fresh random
// salt, in the PHC string format "$argon2id$v=19$m=65536,t=3,p=4$salt$hash".
func HashPassword(pw string) (string, error) {
	return HashPasswordWith(pw, DefaultParams)
}

// HashPasswordWith is HashPassword with chosen parameters (tests use cheap ones).
func HashPasswordWith(pw string, p Params) (string, error) {
	if err := p.check(); err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	if len(pw) > MaxPasswordLen {
		return "", fmt.Errorf("auth: hash password: longer than %d bytes", MaxPasswordLen)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: hash password: salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches hash, comparing in constant
// time. A malformed hash, or one whose parameters are out of bounds,
// matches nothing.
func VerifyPassword(hash, pw string) bool {
	p, salt, key, err := decodeHash(hash)
	if err != nil || len(pw) > MaxPasswordLen {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1
}

func (p Params) check() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("argon2 time %d outside 1..%d", p.Time, maxTime)
	case p.Threads < 1:
		return errors.New("argon2 needs at least one thread")
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("argon2 memory %d KiB outside %d..%d", p.Memory, 8*uint32(p.Threads), maxMemory)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("salt length %d outside %d..%d", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("key length %d outside %d..%d", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// decodeHash parses "$argon2id$v=19$m=M,t=T,p=P$salt$key".
func decodeHash(s string) (Params, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, errors.New("not an argon2id hash")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Params{}, nil, nil, fmt.Errorf("unsupported argon2 version %q", parts[2])
	}
	var p Params
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return Params{}, nil, nil, errors.New("want m=,t=,p= parameters")
	}
	for i, want := range []string{"m", "t", "p"} {
		k, v, ok := strings.Cut(fields[i], "=")
		if !ok || k != want {
			return Params{}, nil, nil, fmt.Errorf("parameter %d: want %s=", i+1, want)
		}
		bits := 32
		if want == "p" {
			bits = 8
		}
		n, err := strconv.ParseUint(v, 10, bits)
		if err != nil {
			return Params{}, nil, nil, fmt.Errorf("parameter %s: %w", want, err)
		}
		switch want {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			p.Threads = uint8(n)
		}
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return Params{}, nil, nil, fmt.Errorf("salt: %w", err)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil {
		return Params{}, nil, nil, fmt.Errorf("key: %w", err)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.check(); err != nil {
		return Params{}, nil, nil, err
	}
	return p, salt, key, nil
}
