package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// maxLoginBody bounds the login JSON; a name and a password fit easily.
const maxLoginBody = 4 << 10

// maxNameLen mirrors the store's limit on login names.
const maxNameLen = 64

// LoginRequest is the body of POST /api/login.
type LoginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// ParseLogin decodes and checks a login body: one JSON object with a
// non-empty name and password and nothing else, within size bounds. Its
// errors are safe to show the client (they never echo the password).
func ParseLogin(body []byte) (LoginRequest, error) {
	if len(body) > maxLoginBody {
		return LoginRequest{}, fmt.Errorf("login body is larger than %d bytes", maxLoginBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req LoginRequest
	if err := dec.Decode(&req); err != nil {
		return LoginRequest{}, errors.New(`login body must be JSON {"name": "...", "password": "..."}`)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return LoginRequest{}, errors.New("login body has data after the JSON object")
	}
	switch {
	case req.Name == "" || req.Password == "":
		return LoginRequest{}, errors.New("name and password are required")
	case len(req.Name) > maxNameLen || !utf8.ValidString(req.Name):
		return LoginRequest{}, fmt.Errorf("name must be valid UTF-8 of at most %d bytes", maxNameLen)
	case len(req.Password) > MaxPasswordLen:
		return LoginRequest{}, fmt.Errorf("password is longer than %d bytes", MaxPasswordLen)
	}
	return req, nil
}
