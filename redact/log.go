package redact

import (
	"bytes"
	"io"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// LogWriter returns a writer that redacts every log line before passing it
// to w: in a JSON line (zerolog's output) every string value is redacted
// and keys, numbers and the JSON structure are kept; any other line is
// redacted as text. Use it under zerolog:
//
//	log := zerolog.New(red.LogWriter(os.Stderr))
//
// Each Write must hold whole lines, as zerolog writes one event per call; a
// number split across two Writes is not recognized. The writer returns
// len(p) on success, as io.Writer requires, although it may write a
// different number of bytes. When w is a zerolog.LevelWriter the result is
// one too, so level routing keeps working.
func (r *Redactor) LogWriter(w io.Writer) io.Writer {
	lw := &logWriter{r: r, w: w}
	if l, ok := w.(zerolog.LevelWriter); ok {
		return &levelLogWriter{logWriter: lw, lw: l}
	}
	return lw
}

type logWriter struct {
	r *Redactor
	w io.Writer
}

// logBufs are the scratch buffers of one Write, pooled so a steady stream
// of log lines allocates nothing.
type logBufs struct {
	out, dec []byte
}

var logPool = sync.Pool{New: func() any { return &logBufs{out: make([]byte, 0, 1024), dec: make([]byte, 0, 256)} }}

// maxPooled keeps an occasional huge line from pinning memory in the pool.
const maxPooled = 64 << 10

func putBufs(b *logBufs) {
	if cap(b.out) > maxPooled || cap(b.dec) > maxPooled {
		return
	}
	logPool.Put(b)
}

// Write implements io.Writer.
func (l *logWriter) Write(p []byte) (int, error) {
	b := logPool.Get().(*logBufs)
	defer putBufs(b)
	out, changed := l.r.appendLog(b, p)
	if !changed {
		return l.w.Write(p)
	}
	b.out = out[:0]
	if _, err := l.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// levelLogWriter keeps a wrapped zerolog.LevelWriter's level routing.
type levelLogWriter struct {
	*logWriter
	lw zerolog.LevelWriter
}

// WriteLevel implements zerolog.LevelWriter.
func (l *levelLogWriter) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	b := logPool.Get().(*logBufs)
	defer putBufs(b)
	out, changed := l.r.appendLog(b, p)
	if !changed {
		return l.lw.WriteLevel(level, p)
	}
	b.out = out[:0]
	if _, err := l.lw.WriteLevel(level, out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// lazy rebuilds src into dst as spans of it are redacted; dst always holds
// the redacted src[:last].
type lazy struct {
	dst     []byte
	src     []byte
	last    int
	changed bool
}

// text redacts src[a:b] as plain text.
func (z *lazy) text(r *Redactor, a, b int) {
	z.dst = append(z.dst, z.src[z.last:a]...)
	z.last = a
	mark := len(z.dst)
	var ch bool
	z.dst, ch = r.appendRedacted(z.dst, bytesToString(z.src[a:b]))
	if ch {
		z.changed = true
		z.last = b
	} else {
		z.dst = z.dst[:mark]
	}
}

// appendLog redacts the lines of p into bufs.out; it reports whether
// anything changed.
func (r *Redactor) appendLog(bufs *logBufs, p []byte) ([]byte, bool) {
	z := lazy{dst: bufs.out[:0], src: p}
	for start := 0; start < len(p); {
		end := bytes.IndexByte(p[start:], '\n')
		if end < 0 {
			end = len(p)
		} else {
			end += start
		}
		if jsonObject(p[start:end]) {
			r.jsonLine(&z, bufs, start, end)
		} else {
			z.text(r, start, end)
		}
		start = end + 1
	}
	if !z.changed {
		bufs.out = z.dst[:0] // keep the grown buffer for the next line
		return bufs.out, false
	}
	return append(z.dst, p[z.last:]...), true
}

func jsonObject(line []byte) bool {
	for _, c := range line {
		switch c {
		case ' ', '\t', '\r':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// jsonLine redacts the string values of the JSON object in src[start:end].
func (r *Redactor) jsonLine(z *lazy, bufs *logBufs, start, end int) {
	p := z.src
	for i := start; i < end; i++ {
		if p[i] != '"' {
			continue
		}
		j, esc := i+1, false
		for j < end && p[j] != '"' {
			if p[j] == '\\' {
				esc = true
				j++
			}
			j++
		}
		if j >= end {
			return // unterminated: leave the rest as it is
		}
		k := j + 1
		for k < end && (p[k] == ' ' || p[k] == '\t') {
			k++
		}
		if k < end && p[k] == ':' { // a key
			i = j
			continue
		}
		if !esc {
			z.text(r, i+1, j)
		} else {
			r.escapedString(z, bufs, i+1, j)
		}
		i = j
	}
}

// escapedString redacts a JSON string with escapes: it is decoded, redacted
// and encoded again, so an escape never hides or splits a number.
func (r *Redactor) escapedString(z *lazy, bufs *logBufs, a, b int) {
	dec, ok := unescapeJSON(bufs.dec[:0], z.src[a:b])
	bufs.dec = dec[:0]
	if !ok {
		z.text(r, a, b)
		return
	}
	red, ch := r.appendRedacted(nil, bytesToString(dec))
	if !ch {
		return
	}
	z.dst = append(z.dst, z.src[z.last:a]...)
	z.dst = escapeJSON(z.dst, red)
	z.last = b
	z.changed = true
}

// unescapeJSON decodes the body of a JSON string; ok is false on a
// malformed escape.
func unescapeJSON(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(s) {
			return dst, false
		}
		switch s[i] {
		case '"', '\\', '/':
			dst = append(dst, s[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r1, ok := hex4(s, i+1)
			if !ok {
				return dst, false
			}
			i += 4
			if utf16.IsSurrogate(r1) {
				if r2, ok := hex4(s, i+3); ok && i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					if d := utf16.DecodeRune(r1, r2); d != utf8.RuneError {
						dst = utf8.AppendRune(dst, d)
						i += 6
						continue
					}
				}
				r1 = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r1)
		default:
			return dst, false
		}
	}
	return dst, true
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var v rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// escapeJSON appends s as the body of a JSON string, escaping as zerolog
// does: quotes, backslashes and control characters.
func escapeJSON(dst, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
