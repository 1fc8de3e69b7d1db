package webrtc

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pion/sdp/v3"
)

// pcmuPayloadType is PCMU's static RTP payload type (RFC 3551).
const pcmuPayloadType = 0

// MaxSDPSize bounds an offer or answer; browsers' audio offers are a few
// kilobytes.
const MaxSDPSize = 64 << 10

// ErrBadOffer wraps every reason an offer cannot be answered: it is the
// caller's fault (HTTP 400), not the server's.
var ErrBadOffer = errors.New("webrtc: bad offer")

// CheckOffer reports whether offer is an SDP description parley can
// answer: well-formed, within MaxSDPSize, with an audio section that offers
// PCMU. Browsers always offer PCMU next to Opus.
func CheckOffer(offer string) error {
	if strings.TrimSpace(offer) == "" {
		return fmt.Errorf("%w: empty sdp", ErrBadOffer)
	}
	if len(offer) > MaxSDPSize {
		return fmt.Errorf("%w: sdp of %d bytes exceeds %d", ErrBadOffer, len(offer), MaxSDPSize)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	audio := false
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		audio = true
		if offersPCMU(m) {
			return nil
		}
	}
	if !audio {
		return fmt.Errorf("%w: no audio section", ErrBadOffer)
	}
	return fmt.Errorf("%w: audio is not offered as PCMU", ErrBadOffer)
}

// offersPCMU reports whether an audio section lists PCMU among its
// formats: the static payload type 0 or a listed type whose rtpmap names
// PCMU/8000.
func offersPCMU(m *sdp.MediaDescription) bool {
	if slices.Contains(m.MediaName.Formats, "0") {
		return true
	}
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(a.Value, " ")
		if ok && slices.Contains(m.MediaName.Formats, pt) && strings.HasPrefix(strings.ToUpper(enc), "PCMU/8000") {
			return true
		}
	}
	return false
}
