package media

// G.711 companding (ITU-T G.711, bit-exact with the ITU-T G.191 Software Tool
// Library reference ulaw_compress/ulaw_expand and alaw_compress/alaw_expand).
//
// Choice recorded here: github.com/zaf/g711 v1.4.0 was evaluated. Its
// per-sample EncodeUlawFrame/EncodeAlawFrame take the one's complement of
// negative inputs as G.191 does and agree with this file on all 65,536
// inputs of both laws (TestG711AgreesWithZaf), unlike the widely copied
// 16-bit "Sun" encoder (bias 0x84, magnitude -x), which differs from G.191
// on 127 negative inputs. But zaf computes every sample with branches and a
// leading-zero count, and its slice API converts little-endian byte
// buffers into freshly allocated slices. The hot path wants []int16 to
// []byte into caller buffers with no allocation, so this file derives its
// own tables from the G.191 rules at init: a 256-entry decode table per law
// and encode tables indexed by the input's significant bits (G.191 only
// looks at x>>2 for mu-law and x>>4 for A-law), making every conversion a
// single lookup. The tests check them against the conformance vectors.

var (
	mulawDecodeTable [256]int16
	alawDecodeTable  [256]int16
	// mulawEncodeTable is indexed by uint16(x)>>2: the 14 significant bits.
	mulawEncodeTable [1 << 14]byte
	// alawEncodeTable is indexed by uint16(x)>>4: the 12 significant bits.
	alawEncodeTable [1 << 12]byte
)

func init() {
	for c := 0; c < 256; c++ {
		mulawDecodeTable[c] = mulawExpand(byte(c))
		alawDecodeTable[c] = alawExpand(byte(c))
	}
	for i := range mulawEncodeTable {
		mulawEncodeTable[i] = mulawCompress(int16(uint16(i) << 2))
	}
	for i := range alawEncodeTable {
		alawEncodeTable[i] = alawCompress(int16(uint16(i) << 4))
	}
}

// mulawCompress is the G.191 ulaw_compress rule for one 16-bit sample.
func mulawCompress(x int16) byte {
	var absno int32
	if x < 0 {
		absno = int32((^x)>>2) + 33
	} else {
		absno = int32(x>>2) + 33
	}
	if absno > 0x1FFF {
		absno = 0x1FFF
	}
	segno := int32(1)
	for i := absno >> 6; i != 0; i >>= 1 {
		segno++
	}
	high := 8 - segno
	low := 0xF - ((absno >> segno) & 0xF)
	out := byte(high<<4 | low)
	if x >= 0 {
		out |= 0x80
	}
	return out
}

// mulawExpand is the G.191 ulaw_expand rule for one code byte.
func mulawExpand(c byte) int16 {
	sign := int32(1)
	if c < 0x80 {
		sign = -1
	}
	m := int32(^c)
	exponent := (m >> 4) & 7
	segment := exponent + 1
	mantissa := m & 0xF
	step := int32(4) << segment
	return int16(sign * ((0x80 << exponent) + step*mantissa + step/2 - 4*33))
}

// alawCompress is the G.191 alaw_compress rule for one 16-bit sample.
func alawCompress(x int16) byte {
	var ix int32
	if x < 0 {
		ix = int32((^x) >> 4)
	} else {
		ix = int32(x >> 4)
	}
	if ix > 15 {
		iexp := int32(1)
		for ix > 16+15 {
			ix >>= 1
			iexp++
		}
		ix -= 16
		ix += iexp << 4
	}
	if x >= 0 {
		ix |= 0x80
	}
	return byte(ix) ^ 0x55
}

// alawExpand is the G.191 alaw_expand rule for one code byte.
func alawExpand(c byte) int16 {
	ix := int32(c^0x55) & 0x7F
	iexp := ix >> 4
	mant := ix & 0xF
	if iexp > 0 {
		mant += 16
	}
	mant = mant<<4 + 8
	if iexp > 1 {
		mant <<= iexp - 1
	}
	if c > 127 {
		return int16(mant)
	}
	return int16(-mant)
}

// LinearToMulaw encodes one 16-bit linear sample as a G.711 mu-law byte.
func LinearToMulaw(s int16) byte { return mulawEncodeTable[uint16(s)>>2] }

// MulawToLinear decodes one G.711 mu-law byte to a 16-bit linear sample.
func MulawToLinear(b byte) int16 { return mulawDecodeTable[b] }

// LinearToAlaw encodes one 16-bit linear sample as a G.711 A-law byte.
func LinearToAlaw(s int16) byte { return alawEncodeTable[uint16(s)>>4] }

// AlawToLinear decodes one G.711 A-law byte to a 16-bit linear sample.
func AlawToLinear(b byte) int16 { return alawDecodeTable[b] }

// MulawEncode encodes src into dst as mu-law (Twilio's audio/x-mulaw);
// len(dst) must be at least len(src). It does not allocate.
func MulawEncode(dst []byte, src []int16) {
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] = mulawEncodeTable[uint16(s)>>2]
	}
}

// MulawDecode decodes mu-law src into dst; len(dst) must be at least len(src).
// It does not allocate.
func MulawDecode(dst []int16, src []byte) {
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = mulawDecodeTable[b]
	}
}

// AlawEncode encodes src into dst as A-law; len(dst) must be at least len(src).
// It does not allocate.
func AlawEncode(dst []byte, src []int16) {
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] = alawEncodeTable[uint16(s)>>4]
	}
}

// AlawDecode decodes A-law src into dst; len(dst) must be at least len(src).
// It does not allocate.
func AlawDecode(dst []int16, src []byte) {
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = alawDecodeTable[b]
	}
}
