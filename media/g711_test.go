package media

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/zaf/g711"
)

// mulawVectors mirrors ../shared/vectors/mulaw_g711_vectors.json.
type mulawVectors struct {
	DecodeTable     []int16 `json:"decode_table"`
	EncodeThreshold []struct {
		First   int   `json:"first_input"`
		Last    int   `json:"last_input"`
		Code    int   `json:"code"`
		Decoded int16 `json:"decoded"`
	} `json:"encode_thresholds"`
	EncodeVectors []struct {
		In      int16 `json:"in"`
		Code    int   `json:"code"`
		Decoded int16 `json:"decoded"`
		Sun16   *int  `json:"sun16_code"`
		Why     string
	} `json:"encode_vectors"`
}

func loadMulawVectors(t *testing.T) *mulawVectors {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "shared", "vectors", "mulaw_g711_vectors.json"))
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var v mulawVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("parse vectors: %v", err)
	}
	if len(v.DecodeTable) != 256 || len(v.EncodeThreshold) != 256 || len(v.EncodeVectors) == 0 {
		t.Fatalf("vectors incomplete: %d decode, %d ranges, %d vectors", len(v.DecodeTable), len(v.EncodeThreshold), len(v.EncodeVectors))
	}
	return &v
}

func TestMulawDecodeTable(t *testing.T) {
	v := loadMulawVectors(t)
	src := make([]byte, 256)
	for c := range src {
		src[c] = byte(c)
	}
	dst := make([]int16, 256)
	MulawDecode(dst, src)
	for c, want := range v.DecodeTable {
		if got := MulawToLinear(byte(c)); got != want {
			t.Errorf("MulawToLinear(0x%02X) = %d, want %d", c, got, want)
		}
		if dst[c] != want {
			t.Errorf("MulawDecode[0x%02X] = %d, want %d", c, dst[c], want)
		}
	}
}

func TestMulawEncodeRanges(t *testing.T) {
	v := loadMulawVectors(t)
	next := -32768
	for _, r := range v.EncodeThreshold {
		if r.First != next {
			t.Fatalf("ranges not contiguous at %d (range starts %d)", next, r.First)
		}
		next = r.Last + 1
		for x := r.First; x <= r.Last; x++ {
			if got := LinearToMulaw(int16(x)); int(got) != r.Code {
				t.Fatalf("LinearToMulaw(%d) = 0x%02X, want 0x%02X", x, got, r.Code)
			}
		}
		if got := MulawToLinear(byte(r.Code)); got != r.Decoded {
			t.Errorf("decode(0x%02X) = %d, want %d", r.Code, got, r.Decoded)
		}
	}
	if next != 32768 {
		t.Fatalf("ranges end at %d, want 32767", next-1)
	}
}

func TestMulawEncodeVectors(t *testing.T) {
	v := loadMulawVectors(t)
	src := make([]int16, len(v.EncodeVectors))
	for i, c := range v.EncodeVectors {
		src[i] = c.In
	}
	dst := make([]byte, len(src))
	MulawEncode(dst, src)
	sunDiffs := 0
	for i, c := range v.EncodeVectors {
		if int(dst[i]) != c.Code {
			t.Errorf("MulawEncode(%d) = 0x%02X, want 0x%02X (%s)", c.In, dst[i], c.Code, c.Why)
		}
		if got := MulawToLinear(dst[i]); got != c.Decoded {
			t.Errorf("round trip %d = %d, want %d", c.In, got, c.Decoded)
		}
		if c.Sun16 != nil && *c.Sun16 != c.Code {
			sunDiffs++
		}
	}
	if sunDiffs == 0 {
		t.Log("vectors list no Sun-variant differences")
	}
}

func TestAlawKnownValues(t *testing.T) {
	tests := []struct {
		in   int16
		code byte
		dec  int16
	}{
		{0, 0xD5, 8},
		{-1, 0x55, -8},
		{15, 0xD5, 8},
		{16, 0xD4, 24},
		{-16, 0x55, -8},
		{-17, 0x54, -24},
		{255, 0xDA, 248},
		{256, 0xC5, 264},
		{32767, 0xAA, 32256},
		{-32768, 0x2A, -32256},
		{4096, 0x85, 4224},
		{-4096, 0x1A, -4032},
	}
	for _, tt := range tests {
		if got := LinearToAlaw(tt.in); got != tt.code {
			t.Errorf("LinearToAlaw(%d) = 0x%02X, want 0x%02X", tt.in, got, tt.code)
		}
		if got := AlawToLinear(tt.code); got != tt.dec {
			t.Errorf("AlawToLinear(0x%02X) = %d, want %d", tt.code, got, tt.dec)
		}
	}
}

func TestAlawRoundTrip(t *testing.T) {
	// Every code decodes to a value that encodes back to the same code.
	seen := map[int16]bool{}
	for c := 0; c < 256; c++ {
		v := AlawToLinear(byte(c))
		if seen[v] {
			t.Errorf("A-law code 0x%02X decodes to duplicate value %d", c, v)
		}
		seen[v] = true
		if back := LinearToAlaw(v); back != byte(c) {
			t.Errorf("A-law 0x%02X -> %d -> 0x%02X", c, v, back)
		}
		if (c&0x80 != 0) != (v > 0) {
			t.Errorf("A-law 0x%02X decodes to %d: wrong sign", c, v)
		}
	}
	// Encoding is monotonic in the decoded value and the error is bounded by
	// half a quantisation step (steps are 16 up to 512, then double).
	prev := int16(-32768)
	for x := -32768; x <= 32767; x++ {
		d := AlawToLinear(LinearToAlaw(int16(x)))
		if d < prev {
			t.Fatalf("A-law not monotonic at %d: %d < %d", x, d, prev)
		}
		prev = d
		err := int(d) - x
		if err < 0 {
			err = -err
		}
		step := 16
		if ax := max(x, -x); ax >= 512 {
			step = 1 << (bitLen(ax) - 4)
		}
		if err > step && !(x > 32256 || x < -32256) {
			t.Fatalf("A-law error at %d: decoded %d, step %d", x, d, step)
		}
	}
	// mu-law round trip property too: decode(encode(decode(c))) == decode(c).
	for c := 0; c < 256; c++ {
		v := MulawToLinear(byte(c))
		if MulawToLinear(LinearToMulaw(v)) != v {
			t.Errorf("mu-law value %d does not survive a round trip", v)
		}
	}
}

// TestG711AgreesWithZaf cross-checks both laws against zaf/g711, an
// independent G.191-conformant implementation, over every input.
func TestG711AgreesWithZaf(t *testing.T) {
	for x := -32768; x <= 32767; x++ {
		s := int16(x)
		if got, want := LinearToMulaw(s), g711.EncodeUlawFrame(s); got != want {
			t.Fatalf("mu-law encode %d: 0x%02X, zaf 0x%02X", x, got, want)
		}
		if got, want := LinearToAlaw(s), g711.EncodeAlawFrame(s); got != want {
			t.Fatalf("A-law encode %d: 0x%02X, zaf 0x%02X", x, got, want)
		}
	}
	for c := 0; c < 256; c++ {
		if got, want := MulawToLinear(byte(c)), g711.DecodeUlawFrame(uint8(c)); got != want {
			t.Fatalf("mu-law decode 0x%02X: %d, zaf %d", c, got, want)
		}
		if got, want := AlawToLinear(byte(c)), g711.DecodeAlawFrame(uint8(c)); got != want {
			t.Fatalf("A-law decode 0x%02X: %d, zaf %d", c, got, want)
		}
	}
}

func bitLen(x int) int {
	n := 0
	for x > 0 {
		n++
		x >>= 1
	}
	return n
}

func TestAlawSliceMatchesScalar(t *testing.T) {
	src := make([]int16, 65536)
	for i := range src {
		src[i] = int16(i - 32768)
	}
	enc := make([]byte, len(src))
	AlawEncode(enc, src)
	dec := make([]int16, len(src))
	AlawDecode(dec, enc)
	for i, x := range src {
		if enc[i] != LinearToAlaw(x) || dec[i] != AlawToLinear(enc[i]) {
			t.Fatalf("slice and scalar A-law disagree at %d", x)
		}
	}
}

func BenchmarkMulawEncodeFrame(b *testing.B) {
	src := make([]int16, 160)
	for i := range src {
		src[i] = int16(i * 200)
	}
	dst := make([]byte, 160)
	b.ReportAllocs()
	for b.Loop() {
		MulawEncode(dst, src)
	}
}

func BenchmarkMulawDecodeFrame(b *testing.B) {
	src := make([]byte, 160)
	for i := range src {
		src[i] = byte(i)
	}
	dst := make([]int16, 160)
	b.ReportAllocs()
	for b.Loop() {
		MulawDecode(dst, src)
	}
}

func BenchmarkAlawEncodeFrame(b *testing.B) {
	src := make([]int16, 160)
	dst := make([]byte, 160)
	b.ReportAllocs()
	for b.Loop() {
		AlawEncode(dst, src)
	}
}
