package webrtc

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pion/webrtc/v4"
	"gopkg.in/hraban/opus.v2"

	"github.com/parley-ai/parley/media"
)

// Codec names as Config.Codecs takes them.
const (
	CodecOpus = "opus"
	CodecPCMU = "pcmu"
)

// DefaultCodecs is the preference when Config.Codecs is empty: Opus when the
// far end offers it (packet-loss concealment, forward error correction,
// about a quarter of PCMU's bit rate), else PCMU.
var DefaultCodecs = []string{CodecOpus, CodecPCMU}

const (
	// pcmuPayloadType is PCMU's static RTP payload type (RFC 3551).
	pcmuPayloadType = 0
	// opusPayloadType is the dynamic type parley offers Opus on (the one
	// Chromium uses); an answer follows the offer's type.
	opusPayloadType = 111
	// opusClockRate is Opus's RTP clock (RFC 7587): always 48 kHz, whatever
	// the audio's bandwidth.
	opusClockRate = 48000
	// opusBitrate is the encoder's target. parley's audio is 8 kHz
	// narrowband end to end; SILK carries it transparently at 16 kb/s
	// with room for in-band FEC.
	opusBitrate = 16000
	// opusComplexity trades encoder CPU for quality (0-10). A server
	// encodes one stream per browser party, and narrowband speech gains
	// little from the higher settings: a 20 ms frame costs about 23 µs at
	// 0, 27 µs at 1 and 57 µs at 5 (BenchmarkPacketize; PCMU 0.08 µs).
	// CELT-only low-delay mode would cost 8 µs but codes narrowband speech
	// worse and has no FEC.
	opusComplexity = 0
	// opusLossPerc is the loss the encoder plans its FEC for.
	opusLossPerc = 5
	// maxDecodeSamples is the longest Opus packet (120 ms) at SampleRate.
	maxDecodeSamples = 960
	// maxPLCSamples bounds the concealment synthesized for a gap; Opus's
	// concealment fades out, and the rest of a longer gap is silence.
	maxPLCSamples = 200 * SampleRate / 1000
)

var (
	pcmuCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: SampleRate, Channels: 1}
	opusCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: opusClockRate, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}
)

// validCodecs checks a codec preference list.
func validCodecs(names []string) error {
	for _, n := range names {
		if n != CodecOpus && n != CodecPCMU {
			return fmt.Errorf("webrtc: codec %q: want %q or %q", n, CodecOpus, CodecPCMU)
		}
	}
	return nil
}

// capability is the pion codec of a codec name.
func capability(name string) (webrtc.RTPCodecCapability, uint8) {
	if name == CodecOpus {
		return opusCodec, opusPayloadType
	}
	return pcmuCodec, pcmuPayloadType
}

// codecOf names the codec of a negotiated MIME type ("" when parley does
// not speak it).
func codecOf(mime string) string {
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeOpus):
		return CodecOpus
	case strings.EqualFold(mime, webrtc.MimeTypePCMU):
		return CodecPCMU
	}
	return ""
}

// pickCodec is the first codec of prefs the offer's audio offers, or "".
func pickCodec(prefs []string, offered []string) string {
	for _, p := range prefs {
		if slices.Contains(offered, p) {
			return p
		}
	}
	return ""
}

// encoder turns 8 kHz PCM into one RTP payload.
type encoder interface {
	// encode writes pcm's payload into out and returns its length and
	// the samples it carries: Opus pads pcm with silence to the next frame
	// length it can code (2.5 to 60 ms).
	encode(pcm []int16, out []byte) (bytes, samples int, err error)
}

// decoder turns RTP payloads back into 8 kHz PCM.
type decoder interface {
	// decode writes the samples of payload into pcm (room for
	// maxDecodeSamples) and returns their number.
	decode(payload []byte, pcm []int16) (int, error)
	// conceal fills pcm for audio that never arrived.
	conceal(pcm []int16)
}

type pcmuEncoder struct{}

func (pcmuEncoder) encode(pcm []int16, out []byte) (int, int, error) {
	media.MulawEncode(out[:len(pcm)], pcm)
	return len(pcm), len(pcm), nil
}

type pcmuDecoder struct{}

func (pcmuDecoder) decode(payload []byte, pcm []int16) (int, error) {
	n := min(len(payload), len(pcm))
	media.MulawDecode(pcm[:n], payload[:n])
	return n, nil
}

func (pcmuDecoder) conceal(pcm []int16) { clear(pcm) }

// opusEncoder encodes narrowband Opus straight from 8 kHz (libopus
// resamples nothing: the RTP clock stays 48 kHz, the payload says NB).
type opusEncoder struct {
	enc *opus.Encoder
	pad []int16
}

// opusFrames are the frame lengths Opus codes at SampleRate (2.5, 5, 10,
// 20, 40 and 60 ms).
var opusFrames = []int{20, 40, 80, 160, 320, 480}

func newOpusEncoder() (*opusEncoder, error) {
	enc, err := opus.NewEncoder(SampleRate, 1, opus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("webrtc: opus encoder: %w", err)
	}
	for _, set := range []func() error{
		func() error { return enc.SetBitrate(opusBitrate) },
		func() error { return enc.SetComplexity(opusComplexity) },
		func() error { return enc.SetInBandFEC(true) },
		func() error { return enc.SetPacketLossPerc(opusLossPerc) },
	} {
		if err := set(); err != nil {
			return nil, fmt.Errorf("webrtc: opus encoder: %w", err)
		}
	}
	return &opusEncoder{enc: enc, pad: make([]int16, maxPacketSamples)}, nil
}

func (e *opusEncoder) encode(pcm []int16, out []byte) (int, int, error) {
	pcm = pcm[:min(len(pcm), maxPacketSamples)]
	if !slices.Contains(opusFrames, len(pcm)) {
		i, _ := slices.BinarySearch(opusFrames, len(pcm))
		padded := e.pad[:opusFrames[i]]
		clear(padded[copy(padded, pcm):])
		pcm = padded
	}
	n, err := e.enc.Encode(pcm, out)
	if err != nil {
		return 0, 0, fmt.Errorf("webrtc: opus encode: %w", err)
	}
	return n, len(pcm), nil
}

// opusDecoder decodes any Opus packet (mono or stereo, any bandwidth) to
// 8 kHz mono, and conceals losses with libopus's own concealment.
type opusDecoder struct{ dec *opus.Decoder }

func newOpusDecoder() (*opusDecoder, error) {
	dec, err := opus.NewDecoder(SampleRate, 1)
	if err != nil {
		return nil, fmt.Errorf("webrtc: opus decoder: %w", err)
	}
	return &opusDecoder{dec: dec}, nil
}

func (d *opusDecoder) decode(payload []byte, pcm []int16) (int, error) {
	n, err := d.dec.Decode(payload, pcm)
	if err != nil {
		return 0, fmt.Errorf("webrtc: opus decode: %w", err)
	}
	return n, nil
}

// conceal synthesizes up to maxPLCSamples in 10 ms steps (a length libopus
// accepts) and leaves the rest silent.
func (d *opusDecoder) conceal(pcm []int16) {
	const step = SampleRate / 100
	done := 0
	for done+step <= len(pcm) && done < maxPLCSamples {
		if d.dec.DecodePLC(pcm[done:done+step]) != nil {
			break
		}
		done += step
	}
	clear(pcm[done:])
}

// newEncoder returns the encoder of a codec name.
func newEncoder(name string) (encoder, error) {
	if name == CodecOpus {
		return newOpusEncoder()
	}
	return pcmuEncoder{}, nil
}

// newDecoder returns the decoder of a codec name.
func newDecoder(name string) (decoder, error) {
	if name == CodecOpus {
		return newOpusDecoder()
	}
	return pcmuDecoder{}, nil
}

// clockScale is a codec's RTP clock ticks per 8 kHz sample.
func clockScale(name string) uint32 {
	if name == CodecOpus {
		return opusClockRate / SampleRate
	}
	return 1
}
