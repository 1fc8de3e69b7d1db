package webrtc

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pion/sdp/v3"
)

// MaxSDPSize bounds an offer or answer; browsers' audio offers are a few
// kilobytes.
const MaxSDPSize = 64 << 10

// ErrBadOffer wraps every reason an offer cannot be answered: it is the
// caller's fault (HTTP 400), not the server's.
var ErrBadOffer = errors.New("webrtc: bad offer")

// CheckOffer reports whether offer is an SDP description parley can
// answer: well-formed, within MaxSDPSize, with an audio section that offers
// Opus or PCMU. Browsers always offer both.
func CheckOffer(offer string) error {
	_, err := offeredCodecs(offer)
	return err
}

// offeredCodecs checks offer as CheckOffer does and returns the codecs
// parley speaks that its first audio section with any offers, in the
// offer's order.
func offeredCodecs(offer string) ([]string, error) {
	if strings.TrimSpace(offer) == "" {
		return nil, fmt.Errorf("%w: empty sdp", ErrBadOffer)
	}
	if len(offer) > MaxSDPSize {
		return nil, fmt.Errorf("%w: sdp of %d bytes exceeds %d", ErrBadOffer, len(offer), MaxSDPSize)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	audio := false
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		audio = true
		if c := audioCodecs(m); len(c) > 0 {
			return c, nil
		}
	}
	if !audio {
		return nil, fmt.Errorf("%w: no audio section", ErrBadOffer)
	}
	return nil, fmt.Errorf("%w: audio is offered neither as Opus nor as PCMU", ErrBadOffer)
}

// audioCodecs lists the codecs parley speaks among an audio section's
// formats, in its order: PCMU as the static payload type 0 or a listed type
// whose rtpmap names PCMU/8000, Opus as a listed type whose rtpmap names
// opus/48000.
func audioCodecs(m *sdp.MediaDescription) []string {
	rtpmap := map[string]string{}
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		if pt, enc, ok := strings.Cut(a.Value, " "); ok {
			rtpmap[pt] = strings.ToLower(enc)
		}
	}
	var out []string
	add := func(c string) {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	for _, pt := range m.MediaName.Formats {
		enc, ok := rtpmap[pt]
		switch {
		case pt == "0" && !ok, strings.HasPrefix(enc, "pcmu/8000"):
			add(CodecPCMU)
		case strings.HasPrefix(enc, "opus/48000"):
			add(CodecOpus)
		}
	}
	return out
}
