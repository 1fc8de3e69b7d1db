package webrtc

import (
	"errors"
	"strings"
	"testing"
)

// chromeOffer is the shape of a Chromium audio+data offer (trimmed of
// extensions and candidates).
const chromeOffer = "v=0\r\n" +
	"o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"a=msid-semantic: WMS\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:abcd\r\n" +
	"a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:0\r\n" +
	"a=sendrecv\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtpmap:111 opus/48000/2\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:abcd\r\n" +
	"a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:1\r\n" +
	"a=sctp-port:5000\r\n"

func TestCheckOffer(t *testing.T) {
	tests := []struct {
		name    string
		sdp     string
		wantErr string // "" for a good offer
	}{
		{"chromium offer", chromeOffer, ""},
		{"pcmu by rtpmap only", strings.Replace(chromeOffer, "111 63 9 0 8 13 110 126", "111 96", 1) + "", "not offered as PCMU"},
		{"opus only", strings.NewReplacer("111 63 9 0 8 13 110 126", "111", "a=rtpmap:0 PCMU/8000\r\n", "").Replace(chromeOffer), "not offered as PCMU"},
		{"dynamic pcmu", strings.NewReplacer("111 63 9 0 8 13 110 126", "111 96", "a=rtpmap:0 PCMU/8000", "a=rtpmap:96 pcmu/8000").Replace(chromeOffer), ""},
		{"no audio", strings.Split(chromeOffer, "m=audio")[0] + "m=application" + strings.Split(chromeOffer, "m=application")[1], "no audio section"},
		{"empty", "  \r\n", "empty sdp"},
		{"garbage", "hello world", "bad offer"},
		{"too large", chromeOffer + "a=x:" + strings.Repeat("y", MaxSDPSize) + "\r\n", "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckOffer(tc.sdp)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckOffer: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrBadOffer) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("CheckOffer = %v, want ErrBadOffer containing %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzCheckOffer(f *testing.F) {
	f.Add(chromeOffer)
	f.Add("v=0\r\nm=audio 9 RTP/AVP 0\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, offer string) {
		if err := CheckOffer(offer); err != nil && !errors.Is(err, ErrBadOffer) {
			t.Fatalf("error %v does not wrap ErrBadOffer", err)
		}
	})
}
