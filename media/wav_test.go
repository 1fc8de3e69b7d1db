package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// buildWAV assembles a RIFF WAVE stream from a fmt body, data and extra chunks.
func buildWAV(fmtBody, data []byte, extra ...[]byte) []byte {
	var body bytes.Buffer
	body.WriteString("WAVE")
	for _, e := range extra {
		body.Write(e)
	}
	writeChunk(&body, "fmt ", fmtBody)
	writeChunk(&body, "data", data)
	var out bytes.Buffer
	out.WriteString("RIFF")
	binary.Write(&out, binary.LittleEndian, uint32(body.Len()))
	out.Write(body.Bytes())
	return out.Bytes()
}

func writeChunk(w *bytes.Buffer, id string, body []byte) {
	w.WriteString(id)
	binary.Write(w, binary.LittleEndian, uint32(len(body)))
	w.Write(body)
	if len(body)%2 == 1 {
		w.WriteByte(0)
	}
}

func fmtChunk(tag uint16, channels, rate, bits int) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b[0:], tag)
	binary.LittleEndian.PutUint16(b[2:], uint16(channels))
	binary.LittleEndian.PutUint32(b[4:], uint32(rate))
	binary.LittleEndian.PutUint32(b[8:], uint32(rate*channels*bits/8))
	binary.LittleEndian.PutUint16(b[12:], uint16(channels*bits/8))
	binary.LittleEndian.PutUint16(b[14:], uint16(bits))
	return b
}

func extensibleChunk(sub uint16, channels, rate, bits int) []byte {
	b := fmtChunk(wavFormatExtensible, channels, rate, bits)
	ext := make([]byte, 24)
	binary.LittleEndian.PutUint16(ext[0:], 22)
	binary.LittleEndian.PutUint16(ext[2:], uint16(bits))
	binary.LittleEndian.PutUint32(ext[4:], 0x3)
	binary.LittleEndian.PutUint16(ext[8:], sub)
	copy(ext[10:], "\x00\x00\x00\x00\x10\x00\x80\x00\x00\xAA\x00\x38\x9B\x71")
	return append(b, ext...)
}

func TestWAVRoundTrip(t *testing.T) {
	for _, rate := range []int{8000, 16000, 22050, 48000} {
		pcm := make([]int16, rate/10+7)
		for i := range pcm {
			pcm[i] = int16(20000 * math.Sin(float64(i)*0.05))
		}
		pcm[0], pcm[1] = -32768, 32767
		var buf bytes.Buffer
		if err := WriteWAV(&buf, pcm, rate); err != nil {
			t.Fatal(err)
		}
		if buf.Len() != 44+2*len(pcm) {
			t.Errorf("rate %d: size %d, want %d", rate, buf.Len(), 44+2*len(pcm))
		}
		got, gotRate, err := ReadWAV(&buf)
		if err != nil {
			t.Fatalf("rate %d: %v", rate, err)
		}
		if gotRate != rate || !equalInt16(got, pcm) {
			t.Fatalf("rate %d: round trip mismatch (rate %d, %d samples)", rate, gotRate, len(got))
		}
	}
}

func TestWAVFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.wav")
	pcm := []int16{1, -2, 3, -4, 32767, -32768}
	if err := WriteWAVFile(path, pcm, 8000); err != nil {
		t.Fatal(err)
	}
	got, rate, err := ReadWAVFile(path)
	if err != nil || rate != 8000 || !equalInt16(got, pcm) {
		t.Fatalf("got %v %d %v", got, rate, err)
	}
	if _, _, err := ReadWAVFile(filepath.Join(t.TempDir(), "missing.wav")); err == nil {
		t.Fatal("missing file: no error")
	}
}

func TestReadWAVFormats(t *testing.T) {
	le16 := func(v ...int16) []byte {
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(x))
		}
		return b
	}
	f32 := func(v ...float32) []byte {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		return b
	}
	f64 := func(v ...float64) []byte {
		b := make([]byte, 8*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
		}
		return b
	}
	i32 := func(v ...int32) []byte {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
		}
		return b
	}
	list := []byte("LIST\x04\x00\x00\x00INFO")
	odd := []byte("junk\x03\x00\x00\x00abc\x00")
	tests := []struct {
		name string
		wav  []byte
		rate int
		want []int16
	}{
		{"pcm16 mono", buildWAV(fmtChunk(1, 1, 8000, 16), le16(0, 1000, -1000, 32767)), 8000, []int16{0, 1000, -1000, 32767}},
		{"pcm8", buildWAV(fmtChunk(1, 1, 8000, 8), []byte{128, 255, 0, 192}), 8000, []int16{0, 32512, -32768, 16384}},
		{"pcm24", buildWAV(fmtChunk(1, 1, 16000, 24), []byte{0, 0x10, 0x00, 0x00, 0x00, 0x80, 0xFF, 0xFF, 0xFF}), 16000, []int16{16, -32768, 0}},
		{"pcm32", buildWAV(fmtChunk(1, 1, 16000, 32), i32(1<<20, -1<<31, 0x7FFFFFFF)), 16000, []int16{16, -32768, 32767}},
		{"float32", buildWAV(fmtChunk(3, 1, 24000, 32), f32(0, 0.5, -0.5, 2, -2)), 24000, []int16{0, 16384, -16384, 32767, -32768}},
		{"float64", buildWAV(fmtChunk(3, 1, 48000, 64), f64(0.25, -1, float64(math.NaN()))), 48000, []int16{8192, -32768, 0}},
		{"mulaw", buildWAV(fmtChunk(7, 1, 8000, 8), []byte{0xFF, 0x80, 0x00, 0x7E}), 8000, []int16{0, 32124, -32124, -8}},
		{"alaw", buildWAV(fmtChunk(6, 1, 8000, 8), []byte{0xD5, 0xAA, 0x2A}), 8000, []int16{8, 32256, -32256}},
		{"stereo mixdown", buildWAV(fmtChunk(1, 2, 8000, 16), le16(1000, 3000, -100, 100, 32767, 32767)), 8000, []int16{2000, 0, 32767}},
		{"6 channels", buildWAV(fmtChunk(1, 6, 8000, 16), le16(6, 6, 6, 6, 6, 0)), 8000, []int16{5}},
		{"extensible pcm16 stereo", buildWAV(extensibleChunk(1, 2, 16000, 16), le16(10, 20)), 16000, []int16{15}},
		{"extensible float", buildWAV(extensibleChunk(3, 1, 48000, 32), f32(0.5)), 48000, []int16{16384}},
		{"unknown chunks skipped", buildWAV(fmtChunk(1, 1, 8000, 16), le16(7), list, odd), 8000, []int16{7}},
		{"odd data with trailing chunk", append(buildWAV(fmtChunk(7, 1, 8000, 8), []byte{0xFF, 0x80, 0x00}), []byte("LIST\x00\x00\x00\x00")...), 8000, []int16{0, 32124, -32124}},
		{"partial last frame ignored", buildWAV(fmtChunk(1, 1, 8000, 16), []byte{1, 0, 2}), 8000, []int16{1}},
		{"empty data", buildWAV(fmtChunk(1, 1, 8000, 16), nil), 8000, []int16{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rate, err := ReadWAV(bytes.NewReader(tt.wav))
			if err != nil {
				t.Fatal(err)
			}
			if rate != tt.rate || !equalInt16(got, tt.want) {
				t.Fatalf("got %v @%d, want %v @%d", got, rate, tt.want, tt.rate)
			}
		})
	}
}

func TestReadWAVDataBeforeFmt(t *testing.T) {
	var body bytes.Buffer
	body.WriteString("WAVE")
	writeChunk(&body, "data", []byte{5, 0, 6, 0})
	writeChunk(&body, "fmt ", fmtChunk(1, 1, 8000, 16))
	wav := append([]byte("RIFF\x00\x00\x00\x00"), body.Bytes()...)
	got, rate, err := ReadWAV(bytes.NewReader(wav))
	if err != nil || rate != 8000 || !equalInt16(got, []int16{5, 6}) {
		t.Fatalf("got %v %d %v", got, rate, err)
	}
}

func TestReadWAVUnpatchedSize(t *testing.T) {
	// Streaming writers leave 0xFFFFFFFF (or 0) in the size fields.
	wav := buildWAV(fmtChunk(1, 1, 8000, 16), []byte{1, 0, 2, 0, 3, 0})
	binary.LittleEndian.PutUint32(wav[4:], 0xFFFFFFFF)
	binary.LittleEndian.PutUint32(wav[40:], 0xFFFFFFFF)
	got, _, err := ReadWAV(bytes.NewReader(wav))
	if err != nil || !equalInt16(got, []int16{1, 2, 3}) {
		t.Fatalf("got %v %v", got, err)
	}
}

func TestReadWAVErrors(t *testing.T) {
	good := buildWAV(fmtChunk(1, 1, 8000, 16), []byte{1, 0})
	tests := []struct {
		name string
		wav  []byte
		want string
	}{
		{"empty", nil, "RIFF header"},
		{"short", []byte("RIFF\x00\x00"), "RIFF header"},
		{"not riff", []byte("RIFX\x00\x00\x00\x00WAVE"), "not a RIFF WAVE"},
		{"not wave", []byte("RIFF\x00\x00\x00\x00AVI "), "not a RIFF WAVE"},
		{"no chunks", []byte("RIFF\x04\x00\x00\x00WAVE"), "missing fmt"},
		{"no data", buildWAV(fmtChunk(1, 1, 8000, 16), nil)[:36], "missing data"},
		{"data without fmt", append([]byte("RIFF\x00\x00\x00\x00WAVE"), []byte("data\x04\x00\x00\x00\x01\x00")...), "without fmt"},
		{"fmt too small", buildWAV([]byte{1, 0, 1, 0}, nil), "fmt chunk size"},
		{"truncated fmt", good[:30], "read fmt chunk"},
		{"zero channels", buildWAV(fmtChunk(1, 0, 8000, 16), nil), "channel count"},
		{"zero rate", buildWAV(fmtChunk(1, 1, 0, 16), nil), "sample rate"},
		{"pcm 12 bit", buildWAV(fmtChunk(1, 1, 8000, 12), nil), "bits per sample"},
		{"float 16 bit", buildWAV(fmtChunk(3, 1, 8000, 16), nil), "bits per sample"},
		{"mulaw 16 bit", buildWAV(fmtChunk(7, 1, 8000, 16), nil), "bits per sample"},
		{"adpcm", buildWAV(fmtChunk(2, 1, 8000, 4), nil), "unsupported format tag 0x0002"},
		{"short extensible", buildWAV(append(fmtChunk(0xFFFE, 1, 8000, 16), 0, 0), nil), "EXTENSIBLE"},
		{"extensible adpcm", buildWAV(extensibleChunk(2, 1, 8000, 16), nil), "unsupported format tag"},
		{"truncated unknown chunk", []byte("RIFF\x00\x00\x00\x00WAVEjunk\x10\x00\x00\x00ab"), "skip chunk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ReadWAV(bytes.NewReader(tt.wav))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	_, _, err := ReadWAV(strings.NewReader("RIFX...."))
	if err == nil || !(errors.Is(err, ErrNotWAV) || errors.Is(err, io.ErrUnexpectedEOF)) {
		t.Fatalf("err = %v", err)
	}
}

func TestWriteWAVErrors(t *testing.T) {
	if err := WriteWAV(io.Discard, nil, 0); err == nil {
		t.Fatal("rate 0 accepted")
	}
	if err := WriteWAV(failWriter{}, []int16{1}, 8000); err == nil {
		t.Fatal("write error swallowed")
	}
	if err := WriteWAVFile(filepath.Join(t.TempDir(), "no", "such", "dir.wav"), nil, 8000); err == nil {
		t.Fatal("bad path accepted")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func FuzzReadWAV(f *testing.F) {
	f.Add(buildWAV(fmtChunk(1, 1, 8000, 16), []byte{1, 0, 2, 0}))
	f.Add(buildWAV(fmtChunk(1, 2, 44100, 24), []byte{1, 2, 3, 4, 5, 6}))
	f.Add(buildWAV(fmtChunk(3, 1, 48000, 64), make([]byte, 16)))
	f.Add(buildWAV(fmtChunk(7, 1, 8000, 8), []byte{0xFF, 0x7F, 0x00}))
	f.Add(buildWAV(extensibleChunk(3, 2, 48000, 32), make([]byte, 8), []byte("LIST\x01\x00\x00\x00x\x00")))
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEdata\xff\xff\xff\xff"))
	f.Add([]byte("RIFF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm, rate, err := ReadWAV(bytes.NewReader(b))
		if err != nil {
			if pcm != nil || rate != 0 {
				t.Fatalf("error %v with output", err)
			}
			return
		}
		if rate < 1 || rate > maxWAVRate {
			t.Fatalf("accepted rate %d", rate)
		}
		if len(pcm) > len(b) {
			t.Fatalf("%d samples from %d bytes", len(pcm), len(b))
		}
		// What we read must survive our own writer.
		var buf bytes.Buffer
		if err := WriteWAV(&buf, pcm, rate); err != nil {
			t.Fatal(err)
		}
		back, r2, err := ReadWAV(&buf)
		if err != nil || r2 != rate || !equalInt16(back, pcm) {
			t.Fatalf("re-read mismatch: %v", err)
		}
	})
}

func equalInt16(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWriteWAVStereoRoundTrip(t *testing.T) {
	// Left and right differ; reading mixes them down to mono (their mean).
	inter := []int16{1000, -1000, 2000, 0, -400, 400, 300, 100}
	var buf bytes.Buffer
	if err := WriteWAVChannels(&buf, inter, 8000, 2); err != nil {
		t.Fatal(err)
	}
	pcm, rate, err := ReadWAV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := []int16{0, 1000, 0, 200}
	if rate != 8000 || len(pcm) != len(want) {
		t.Fatalf("rate %d, %d samples", rate, len(pcm))
	}
	for i := range want {
		if d := int(pcm[i]) - int(want[i]); d < -1 || d > 1 {
			t.Fatalf("sample %d: %d, want %d", i, pcm[i], want[i])
		}
	}
	if err := WriteWAVChannels(&buf, []int16{1, 2, 3}, 8000, 2); err == nil {
		t.Fatal("odd sample count accepted for stereo")
	}
}
