// Package webrtc is parley's WebRTC media edge and its only importer of
// pion: a Peer answers a browser's offer (or, for tests and tools, makes
// one), carries one audio track each way as 20 ms 8 kHz PCM16 frames, and
// carries data-channel messages (DTMF, hang-up) both ways.
//
// Codecs: Opus (preferred) and PCMU (G.711 μ-law), one negotiated per
// peer. Everything behind the edge is 8 kHz PCM — the rate of the phone
// network, the recognizer and the mixer — so Opus is coded narrowband
// straight from and to 8 kHz by libopus (cgo, Debian's libopus-dev through
// gopkg.in/hraban/opus.v2): no resampling, about a quarter of PCMU's bit
// rate, libopus's packet-loss concealment for gaps and in-band FEC. The
// pure-Go github.com/pion/opus decodes only SILK frames while Chromium sends
// CELT and hybrid frames at its default bit rate, so it cannot stand in.
//
// Outbound RTP follows the wall clock: nothing is sent while the playout
// has nothing to play (the browser's jitter buffer plays silence, as for
// G.711 with silence suppression), and the next packet's timestamp advances
// by the pause and carries the marker bit, while sequence numbers stay
// consecutive so a pause never looks like loss.
package webrtc

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"
)

// Defaults for Config's zero durations.
const (
	DefaultGatherTimeout          = 5 * time.Second
	DefaultConnectTimeout         = 20 * time.Second
	DefaultICEDisconnectedTimeout = 5 * time.Second
	DefaultDropTimeout            = 5 * time.Second
)

// Config configures peers. One Config is typically shared by every call of
// a server; NewPeer does not modify it.
type Config struct {
	// ICEServers are STUN or TURN URLs (stun:host:port, turn:host:port)
	// the server gathers reflexive and relay candidates from. A server
	// with a public address needs none.
	ICEServers []string
	// ICEUsername and ICECredential authenticate to turn: servers.
	ICEUsername, ICECredential string
	// NAT1To1IPs are public addresses advertised as host candidates when
	// the server sits behind a one-to-one NAT (a cloud VM's elastic IP).
	NAT1To1IPs []string
	// LoopbackOnly restricts ICE to 127.0.0.1 over UDP4 on the lo
	// interface with mDNS off and only loopback remote candidates: tests
	// and a browser on the same machine.
	LoopbackOnly bool
	// PortMin and PortMax bound the UDP ports used for ICE (both zero:
	// any ephemeral port).
	PortMin, PortMax uint16
	// Socket, when set, carries this peer's ICE on one UDP socket instead
	// of ports from PortMin..PortMax. The peer owns it and closes it. It is
	// meant for a pre-opened port per call, and lets tests cut a peer's
	// network to simulate a dropped caller.
	Socket net.PacketConn
	// GatherTimeout bounds candidate gathering before an answer or offer
	// is returned (non-trickle ICE).
	GatherTimeout time.Duration
	// ConnectTimeout bounds the time from answer to a connected peer.
	ConnectTimeout time.Duration
	// ICEDisconnectedTimeout is how long ICE may hear nothing from the far
	// end before the connection counts as disconnected.
	ICEDisconnectedTimeout time.Duration
	// DropTimeout is how long a disconnected peer may take to come back
	// before it is dropped (Done, Err wraps ErrDropped).
	DropTimeout time.Duration
	// Codecs is the audio codec preference, from CodecOpus and CodecPCMU
	// (empty: DefaultCodecs). A peer answering an offer takes the first
	// one the offer has; a peer making an offer offers only the first.
	Codecs []string
	// Log receives connection-level events (never per packet). The zero
	// logger discards them.
	Log zerolog.Logger
}

// withDefaults returns c with zero durations replaced by defaults.
func (c Config) withDefaults() Config {
	if c.GatherTimeout <= 0 {
		c.GatherTimeout = DefaultGatherTimeout
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ICEDisconnectedTimeout <= 0 {
		c.ICEDisconnectedTimeout = DefaultICEDisconnectedTimeout
	}
	if c.DropTimeout <= 0 {
		c.DropTimeout = DefaultDropTimeout
	}
	return c
}

// Validate reports configuration errors before the first call.
func (c Config) Validate() error {
	if (c.PortMin == 0) != (c.PortMax == 0) || c.PortMin > c.PortMax {
		return fmt.Errorf("webrtc: port range %d-%d: give both bounds, min <= max", c.PortMin, c.PortMax)
	}
	for _, u := range c.ICEServers {
		if _, err := ice.ParseURL(u); err != nil {
			return fmt.Errorf("webrtc: ice server %q: %w", u, err)
		}
	}
	if err := validCodecs(c.Codecs); err != nil {
		return err
	}
	for _, ip := range c.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("webrtc: nat 1:1 ip %q is not an ip address", ip)
		}
	}
	return nil
}

// codecs is c's codec preference.
func (c Config) codecs() []string {
	if len(c.Codecs) == 0 {
		return DefaultCodecs
	}
	return c.Codecs
}

// api builds the pion API for one peer: the one codec it speaks, RTCP
// reports, and the network settings of c. It also returns the ICE mux to
// close with the peer when c.Socket is set.
func (c Config) api(codec string) (*webrtc.API, *ice.UDPMuxDefault, error) {
	m := &webrtc.MediaEngine{}
	capab, pt := capability(codec)
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: capab, PayloadType: webrtc.PayloadType(pt)}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, nil, fmt.Errorf("webrtc: register %s: %w", codec, err)
	}
	// Sender reports only: pion's receiver-report interceptor allocates
	// twice per inbound packet (it parses every RTP header into a new
	// map and struct), which the hot path cannot afford. The browser
	// still gets sender reports for lip-sync and round-trip time; it only
	// misses parley's loss and jitter figures for the audio it sends.
	reg := &interceptor.Registry{}
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, nil, fmt.Errorf("webrtc: rtcp sender reports: %w", err)
	}
	reg.Add(sr)
	s := webrtc.SettingEngine{LoggerFactory: pionLogs{log: c.Log}}
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	keepAlive := min(2*time.Second, c.ICEDisconnectedTimeout/3)
	s.SetICETimeouts(c.ICEDisconnectedTimeout, c.ICEDisconnectedTimeout+c.DropTimeout+5*time.Second, keepAlive)
	if c.LoopbackOnly {
		s.SetIncludeLoopbackCandidate(true)
		s.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		s.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	} else {
		s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	}
	if c.PortMin != 0 {
		if err := s.SetEphemeralUDPPortRange(c.PortMin, c.PortMax); err != nil {
			return nil, nil, fmt.Errorf("webrtc: port range: %w", err)
		}
	}
	if len(c.NAT1To1IPs) > 0 {
		s.SetNAT1To1IPs(c.NAT1To1IPs, webrtc.ICECandidateTypeHost)
	}
	var mux *ice.UDPMuxDefault
	if c.Socket != nil {
		mux = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: c.Socket, Logger: pionLogs{log: c.Log}.NewLogger("udpmux")})
		s.SetICEUDPMux(mux)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(s))
	return api, mux, nil
}

// configuration is the pion peer configuration of c.
func (c Config) configuration() webrtc.Configuration {
	var servers []webrtc.ICEServer
	for _, u := range c.ICEServers {
		srv := webrtc.ICEServer{URLs: []string{u}}
		if strings.HasPrefix(u, "turn") {
			srv.Username, srv.Credential = c.ICEUsername, c.ICECredential
		}
		servers = append(servers, srv)
	}
	return webrtc.Configuration{ICEServers: servers, BundlePolicy: webrtc.BundlePolicyMaxBundle}
}

// Errors a Peer reports.
var (
	// ErrDropped is the end of a peer whose network went away: ICE failed,
	// stayed disconnected for DropTimeout, or never connected.
	ErrDropped = errors.New("webrtc: peer dropped")
	// ErrRemoteClosed is the end of a peer the far end closed (DTLS
	// close_notify): a browser that hung up or left the page.
	ErrRemoteClosed = errors.New("webrtc: closed by the far end")
	// ErrClosed is returned by writes after the peer ended.
	ErrClosed = errors.New("webrtc: peer closed")
	// ErrChannelNotOpen is returned by SendText on a data channel that is
	// unknown or not open.
	ErrChannelNotOpen = errors.New("webrtc: data channel not open")
)
