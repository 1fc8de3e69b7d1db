package twilio

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// FuzzParseMessage feeds arbitrary frames to the Media Streams parser and
// the leg's allocation-free scanner: no panics, the scanner accepts only
// valid JSON, and a parsed message survives a marshal/parse round trip.
func FuzzParseMessage(f *testing.F) {
	ms := loadMediaStreams(f)
	for _, ex := range ms.FromTwilio {
		f.Add([]byte(ex.DocText))
	}
	for _, ex := range ms.ToTwilio {
		f.Add([]byte(ex.DocText))
	}
	for _, fr := range ms.Session.Frames {
		f.Add([]byte(fr))
	}
	f.Add([]byte(`{"event":"m\u0065dia","media":{"payload":"\/w=="},"x":[1,{"y":null}]}`))
	f.Add([]byte(`{"event":"media","media":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr frame
		scanErr := fr.scan(data)
		if scanErr == nil && !json.Valid(data) {
			t.Fatalf("scanner accepted invalid JSON %q", data)
		}
		m, err := ParseMessage(data)
		if err != nil {
			return
		}
		if scanErr != nil {
			t.Fatalf("ParseMessage accepted what the scanner rejected: %v", scanErr)
		}
		if !utf8.Valid(data) {
			return // json.Marshal turns invalid UTF-8 into U+FFFD: no exact round trip
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseMessage(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if back.Event != m.Event || back.SequenceNumber != m.SequenceNumber || back.StreamSID != m.StreamSID ||
			(m.Media == nil) != (back.Media == nil) || (m.Media != nil && *m.Media != *back.Media) {
			t.Fatalf("round trip changed %+v into %+v", m, back)
		}
		// The leg's dispatch must survive anything ParseMessage accepts.
		leg := newLeg(nil, zerolog.Nop(), nil, 0)
		_, _ = leg.dispatch(data, nopHandler{})
	})
}

// FuzzValidateSignature checks, for arbitrary URLs and form bodies, that a
// request signed with Signature validates whatever the parameter order and
// that a changed signature or URL does not.
func FuzzValidateSignature(f *testing.F) {
	for _, c := range loadSignatureCases(f) {
		f.Add(c.AuthToken, c.URL, EncodeForm(c.Params), c.Signature)
	}
	f.Add("t", "https://a.b:443/x?y", "a=1&a=1&a=2&b=%2B", "")
	f.Fuzz(func(t *testing.T, token, url, body, sig string) {
		v := NewValidator(token)
		params, err := ParseForm(body)
		_ = v.Validate(url, params, sig)
		_ = v.ValidateBody(url, []byte(body), sig)
		if err != nil {
			return
		}
		good := Signature(token, url, params)
		reversed := make([][2]string, len(params))
		for i, p := range params {
			reversed[len(params)-1-i] = p
		}
		if !v.Validate(url, reversed, good) {
			t.Fatalf("own signature rejected: url %q params %q", url, params)
		}
		if v.Validate(url+"/", params, good) {
			t.Fatalf("signature accepted for another URL: %q", url)
		}
		if v.Validate(url, params, sig) {
			matched := false
			for _, u := range urlVariants(url) {
				matched = matched || Signature(token, u, params) == sig
			}
			if !matched {
				t.Fatalf("signature %q accepted but made for none of the URL variants", sig)
			}
		}
	})
}

// FuzzParseForm checks that webhook form parsing never panics and that
// EncodeForm/ParseForm round-trip every decoded body exactly.
func FuzzParseForm(f *testing.F) {
	for _, ex := range loadCallbacks(f).IncomingCall {
		f.Add(ex.Body)
	}
	f.Add("a=%2B+b&&c=%E2%9C%93&a")
	f.Add("%zz=1")
	f.Fuzz(func(t *testing.T, body string) {
		params, err := ParseForm(body)
		if err != nil {
			return
		}
		back, err := ParseForm(EncodeForm(params))
		if err != nil {
			t.Fatal(err)
		}
		if len(back) != len(params) {
			t.Fatalf("round trip %q -> %q", params, back)
		}
		for i := range back {
			if back[i] != params[i] {
				t.Fatalf("round trip %q -> %q", params, back)
			}
		}
		_ = ParseStatusEvent(params)
	})
}
