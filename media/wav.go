package media

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// WAV format tags this reader understands (wFormatTag in the fmt chunk).
const (
	wavFormatPCM        = 0x0001
	wavFormatIEEEFloat  = 0x0003
	wavFormatAlaw       = 0x0006
	wavFormatMulaw      = 0x0007
	wavFormatExtensible = 0xFFFE
)

// Limits that keep a hostile header from making ReadWAV do silly things.
const (
	maxWAVChannels = 1024
	maxWAVRate     = 1_000_000
	// maxWAVData bounds the audio read from one file (1 GiB of sample data).
	maxWAVData = 1 << 30
)

// ErrNotWAV is returned (wrapped) when the input is not a RIFF WAVE stream.
var ErrNotWAV = errors.New("not a RIFF WAVE file")

// wavFormat is the decoded fmt chunk.
type wavFormat struct {
	tag           uint16
	channels      int
	rate          int
	blockAlign    int
	bitsPerSample int
}

// ReadWAV decodes a RIFF WAVE stream into mono 16-bit PCM and its sample
// rate. It accepts PCM (8, 16, 24, 32 bit), IEEE float (32, 64 bit), mu-law,
// A-law and WAVE_FORMAT_EXTENSIBLE wrapping any of those, with any channel
// count (channels are averaged into one). Unknown chunks are skipped. A data
// chunk whose declared size runs past the end of the stream (as written by
// recorders that never patch the header) is read up to the end.
func ReadWAV(r io.Reader) (pcm []int16, rate int, err error) {
	br := bufio.NewReader(r)
	var hdr [12]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, 0, fmt.Errorf("wav: read RIFF header: %w", eofToUnexpected(err))
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, 0, fmt.Errorf("wav: %w (header %q)", ErrNotWAV, hdr[:])
	}
	var (
		format  *wavFormat
		data    []byte
		gotData bool
	)
	for {
		var ch [8]byte
		n, err := io.ReadFull(br, ch[:])
		if err == io.EOF || (err == io.ErrUnexpectedEOF && n < 8 && gotData) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("wav: read chunk header: %w", eofToUnexpected(err))
		}
		id := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		switch id {
		case "fmt ":
			if format != nil {
				return nil, 0, fmt.Errorf("wav: duplicate fmt chunk")
			}
			if size < 16 || size > 1<<16 {
				return nil, 0, fmt.Errorf("wav: fmt chunk size %d out of range", size)
			}
			buf := make([]byte, size)
			if _, err := io.ReadFull(br, buf); err != nil {
				return nil, 0, fmt.Errorf("wav: read fmt chunk: %w", eofToUnexpected(err))
			}
			f, err := parseWAVFormat(buf)
			if err != nil {
				return nil, 0, err
			}
			format = f
		case "data":
			if gotData {
				// A second data chunk is not valid WAVE; keep the first.
				if err := skipChunk(br, size); err != nil {
					return nil, 0, err
				}
				continue
			}
			gotData = true
			limit := size
			if limit > maxWAVData {
				limit = maxWAVData
			}
			// ReadAll grows with what actually arrives, so a lying size
			// field cannot make us allocate gigabytes up front.
			data, err = io.ReadAll(io.LimitReader(br, limit))
			if err != nil {
				return nil, 0, fmt.Errorf("wav: read data chunk: %w", err)
			}
			if int64(len(data)) < size {
				// Truncated or unpatched header: take what is there.
				size = int64(len(data))
				if format != nil {
					return decodeWAVData(format, data)
				}
				return nil, 0, fmt.Errorf("wav: data chunk without fmt chunk")
			}
			if size%2 == 1 {
				if _, err := br.Discard(1); err != nil && !errors.Is(err, io.EOF) {
					return nil, 0, fmt.Errorf("wav: skip pad byte: %w", err)
				}
			}
		default:
			if err := skipChunk(br, size); err != nil {
				return nil, 0, err
			}
		}
		if format != nil && gotData {
			break
		}
	}
	if format == nil {
		return nil, 0, fmt.Errorf("wav: missing fmt chunk")
	}
	if !gotData {
		return nil, 0, fmt.Errorf("wav: missing data chunk")
	}
	return decodeWAVData(format, data)
}

// skipChunk discards a chunk body and its pad byte. A chunk cut short at
// the end of the stream is tolerated only as far as the caller decides.
func skipChunk(br *bufio.Reader, size int64) error {
	n := size + size&1
	if _, err := io.CopyN(io.Discard, br, n); err != nil {
		if errors.Is(err, io.EOF) && n-size == 1 {
			return nil
		}
		return fmt.Errorf("wav: skip chunk: %w", eofToUnexpected(err))
	}
	return nil
}

func eofToUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseWAVFormat validates a fmt chunk body and resolves EXTENSIBLE.
func parseWAVFormat(b []byte) (*wavFormat, error) {
	f := &wavFormat{
		tag:           binary.LittleEndian.Uint16(b[0:2]),
		channels:      int(binary.LittleEndian.Uint16(b[2:4])),
		rate:          int(binary.LittleEndian.Uint32(b[4:8])),
		blockAlign:    int(binary.LittleEndian.Uint16(b[12:14])),
		bitsPerSample: int(binary.LittleEndian.Uint16(b[14:16])),
	}
	if f.tag == wavFormatExtensible {
		// cbSize(2) validBits(2) channelMask(4) subFormat GUID(16).
		if len(b) < 40 {
			return nil, fmt.Errorf("wav: WAVE_FORMAT_EXTENSIBLE fmt chunk too short (%d bytes)", len(b))
		}
		// The GUID's first two bytes are the real format tag; the rest is
		// the fixed KSDATAFORMAT suffix, which we do not need to check.
		f.tag = binary.LittleEndian.Uint16(b[24:26])
	}
	if f.channels < 1 || f.channels > maxWAVChannels {
		return nil, fmt.Errorf("wav: channel count %d out of range", f.channels)
	}
	if f.rate < 1 || f.rate > maxWAVRate {
		return nil, fmt.Errorf("wav: sample rate %d out of range", f.rate)
	}
	var ok bool
	switch f.tag {
	case wavFormatPCM:
		ok = f.bitsPerSample == 8 || f.bitsPerSample == 16 || f.bitsPerSample == 24 || f.bitsPerSample == 32
	case wavFormatIEEEFloat:
		ok = f.bitsPerSample == 32 || f.bitsPerSample == 64
	case wavFormatAlaw, wavFormatMulaw:
		ok = f.bitsPerSample == 8
	default:
		return nil, fmt.Errorf("wav: unsupported format tag 0x%04X", f.tag)
	}
	if !ok {
		return nil, fmt.Errorf("wav: unsupported %d bits per sample for format tag 0x%04X", f.bitsPerSample, f.tag)
	}
	minAlign := f.channels * f.bitsPerSample / 8
	if f.blockAlign < minAlign {
		// Some writers leave blockAlign zero or wrong; the sample layout
		// is defined by channels and bits, so trust those.
		f.blockAlign = minAlign
	}
	return f, nil
}

// decodeWAVData converts interleaved sample data to mono int16.
func decodeWAVData(f *wavFormat, data []byte) ([]int16, int, error) {
	frames := len(data) / f.blockAlign
	out := make([]int16, frames)
	bytesPer := f.bitsPerSample / 8
	for i := 0; i < frames; i++ {
		frame := data[i*f.blockAlign:]
		var sum float64
		for c := 0; c < f.channels; c++ {
			sum += sampleAt(f, frame[c*bytesPer:])
		}
		out[i] = floatToInt16(sum / float64(f.channels))
	}
	return out, f.rate, nil
}

// sampleAt decodes one sample as a value in int16 units (full scale ±32768).
func sampleAt(f *wavFormat, b []byte) float64 {
	switch f.tag {
	case wavFormatPCM:
		switch f.bitsPerSample {
		case 8:
			return float64(int(b[0])-128) * 256
		case 16:
			return float64(int16(binary.LittleEndian.Uint16(b)))
		case 24:
			v := int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24) >> 8
			return float64(v) / 256
		default:
			return float64(int32(binary.LittleEndian.Uint32(b))) / 65536
		}
	case wavFormatIEEEFloat:
		var v float64
		if f.bitsPerSample == 32 {
			v = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		} else {
			v = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
		if math.IsNaN(v) {
			return 0
		}
		return v * 32768
	case wavFormatMulaw:
		return float64(mulawDecodeTable[b[0]])
	default:
		return float64(alawDecodeTable[b[0]])
	}
}

// floatToInt16 rounds and saturates a value in int16 units.
func floatToInt16(v float64) int16 {
	v = math.Round(v)
	if v >= math.MaxInt16 {
		return math.MaxInt16
	}
	if v <= math.MinInt16 {
		return math.MinInt16
	}
	if v != v {
		return 0
	}
	return int16(v)
}

// ReadWAVFile reads a WAV file from disk; see ReadWAV.
func ReadWAVFile(path string) (pcm []int16, rate int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("wav: %w", err)
	}
	defer f.Close()
	pcm, rate, err = ReadWAV(f)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	return pcm, rate, nil
}

// WriteWAV writes pcm as a canonical 44-byte-header 16-bit mono PCM WAV
// stream at rate Hz.
func WriteWAV(w io.Writer, pcm []int16, rate int) error {
	return WriteWAVChannels(w, pcm, rate, 1)
}

// WriteWAVChannels writes interleaved 16-bit PCM with the given number of
// channels (e.g. a call's two directions as a stereo file).
func WriteWAVChannels(w io.Writer, pcm []int16, rate, channels int) error {
	if rate < 1 || rate > maxWAVRate {
		return fmt.Errorf("wav: sample rate %d out of range", rate)
	}
	if channels < 1 || channels > 16 || len(pcm)%channels != 0 {
		return fmt.Errorf("wav: %d samples do not make whole frames of %d channels", len(pcm), channels)
	}
	dataLen := uint64(len(pcm)) * 2
	if dataLen > math.MaxUint32-36 {
		return fmt.Errorf("wav: %d samples do not fit in a RIFF file", len(pcm))
	}
	buf := make([]byte, 44+dataLen)
	copy(buf[0:], "RIFF")
	binary.LittleEndian.PutUint32(buf[4:], uint32(36+dataLen))
	copy(buf[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(buf[16:], 16)
	binary.LittleEndian.PutUint16(buf[20:], wavFormatPCM)
	binary.LittleEndian.PutUint16(buf[22:], uint16(channels))
	binary.LittleEndian.PutUint32(buf[24:], uint32(rate))
	binary.LittleEndian.PutUint32(buf[28:], uint32(rate*2*channels))
	binary.LittleEndian.PutUint16(buf[32:], uint16(2*channels))
	binary.LittleEndian.PutUint16(buf[34:], 16)
	copy(buf[36:], "data")
	binary.LittleEndian.PutUint32(buf[40:], uint32(dataLen))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(buf[44+2*i:], uint16(s))
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("wav: write: %w", err)
	}
	return nil
}

// WriteWAVFileChannels writes interleaved PCM to path (see WriteWAVChannels).
func WriteWAVFileChannels(path string, pcm []int16, rate, channels int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("wav: %w", err)
	}
	if err := WriteWAVChannels(f, pcm, rate, channels); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("wav: close %s: %w", path, err)
	}
	return nil
}

// WriteWAVFile writes pcm to path as a 16-bit mono PCM WAV file, replacing
// any existing file.
func WriteWAVFile(path string, pcm []int16, rate int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("wav: %w", err)
	}
	if err := WriteWAV(f, pcm, rate); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("wav: close %s: %w", path, err)
	}
	return nil
}
