package webrtc

import (
	"errors"
	"slices"
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
		want    []string // the codecs found, in the offer's order
		wantErr string   // "" for a good offer
	}{
		{"chromium offer", chromeOffer, []string{CodecOpus, CodecPCMU}, ""},
		{"pcmu first", strings.Replace(chromeOffer, "111 63 9 0 8 13 110 126", "0 111", 1), []string{CodecPCMU, CodecOpus}, ""},
		{"opus only", strings.NewReplacer("111 63 9 0 8 13 110 126", "111", "a=rtpmap:0 PCMU/8000\r\n", "").Replace(chromeOffer), []string{CodecOpus}, ""},
		{"dynamic pcmu", strings.NewReplacer("111 63 9 0 8 13 110 126", "96", "a=rtpmap:0 PCMU/8000", "a=rtpmap:96 pcmu/8000").Replace(chromeOffer), []string{CodecPCMU}, ""},
		{"rtpmap of an unlisted type", strings.Replace(chromeOffer, "111 63 9 0 8 13 110 126", "8 96", 1), nil, "neither as Opus nor as PCMU"},
		{"pcma only", strings.Replace(chromeOffer, "111 63 9 0 8 13 110 126", "8", 1), nil, "neither as Opus nor as PCMU"},
		{"no audio", strings.Split(chromeOffer, "m=audio")[0] + "m=application" + strings.Split(chromeOffer, "m=application")[1], nil, "no audio section"},
		{"empty", "  \r\n", nil, "empty sdp"},
		{"garbage", "hello world", nil, "bad offer"},
		{"too large", chromeOffer + "a=x:" + strings.Repeat("y", MaxSDPSize) + "\r\n", nil, "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := offeredCodecs(tc.sdp)
			if !slices.Equal(got, tc.want) {
				t.Errorf("codecs %v, want %v", got, tc.want)
			}
			if cerr := CheckOffer(tc.sdp); (cerr == nil) != (err == nil) {
				t.Errorf("CheckOffer = %v, offeredCodecs = %v", cerr, err)
			}
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

func TestPickCodec(t *testing.T) {
	tests := []struct {
		prefs, offered []string
		want           string
	}{
		{DefaultCodecs, []string{CodecPCMU, CodecOpus}, CodecOpus},
		{DefaultCodecs, []string{CodecPCMU}, CodecPCMU},
		{[]string{CodecPCMU}, []string{CodecOpus, CodecPCMU}, CodecPCMU},
		{[]string{CodecPCMU}, []string{CodecOpus}, ""},
	}
	for _, tc := range tests {
		if got := pickCodec(tc.prefs, tc.offered); got != tc.want {
			t.Errorf("pickCodec(%v, %v) = %q, want %q", tc.prefs, tc.offered, got, tc.want)
		}
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
