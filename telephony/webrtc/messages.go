package webrtc

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Data-channel labels the page opens.
const (
	// DTMFLabel carries keypad digits: each text message is one or more of
	// 0-9 * # A-D.
	DTMFLabel = "dtmf"
	// ControlLabel carries JSON control messages both ways:
	// {"type":"hangup"} from the page, {"type":"hangup","reason":"..."}
	// from parley.
	ControlLabel = "control"
)

// maxDigitsPerMessage bounds one DTMF message (a pasted number).
const maxDigitsPerMessage = 32

// Control message types.
const controlHangup = "hangup"

// errMalformed marks a data-channel message that breaks the protocol.
var errMalformed = errors.New("webrtc: malformed data-channel message")

// parseDigits checks a DTMF message and returns its digits, upper-cased.
func parseDigits(msg []byte) ([]byte, error) {
	if len(msg) == 0 || len(msg) > maxDigitsPerMessage {
		return nil, fmt.Errorf("%w: dtmf message of %d bytes", errMalformed, len(msg))
	}
	out := make([]byte, len(msg))
	for i, c := range msg {
		switch {
		case c >= '0' && c <= '9', c == '*', c == '#', c >= 'A' && c <= 'D':
			out[i] = c
		case c >= 'a' && c <= 'd':
			out[i] = c - 'a' + 'A'
		default:
			return nil, fmt.Errorf("%w: %q is not a dtmf digit", errMalformed, c)
		}
	}
	return out, nil
}

// control is a message on the control channel.
type control struct {
	Type   string `json:"type"`
	Reason string `json:"reason,omitempty"`
}

// parseControl reads a control message; unknown types are errors.
func parseControl(msg []byte) (control, error) {
	var c control
	if err := json.Unmarshal(msg, &c); err != nil {
		return control{}, fmt.Errorf("%w: control: %w", errMalformed, err)
	}
	switch c.Type {
	case controlHangup:
		return c, nil
	}
	return control{}, fmt.Errorf("%w: control type %q", errMalformed, c.Type)
}

// callRequest is the body of POST /api/webrtc/call.
type callRequest struct {
	Type string `json:"type"` // "offer" or empty
	SDP  string `json:"sdp"`
}

// callResponse answers a call request.
type callResponse struct {
	Type   string `json:"type"` // "answer"
	SDP    string `json:"sdp"`
	CallID string `json:"call_id"`
}

// parseCallRequest decodes and checks a call request body, returning the
// offer SDP.
func parseCallRequest(body []byte) (string, error) {
	var r callRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return "", fmt.Errorf("request body is not {\"sdp\": ...} JSON: %w", err)
	}
	if dec.More() {
		return "", errors.New("request body has data after the JSON object")
	}
	if r.Type != "" && r.Type != "offer" {
		return "", fmt.Errorf("type %q: only an offer can start a call", r.Type)
	}
	if strings.TrimSpace(r.SDP) == "" {
		return "", errors.New("missing sdp")
	}
	return r.SDP, nil
}
