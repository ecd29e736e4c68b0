package camera

import "math/bits"

// mulaw encodes a 16-bit linear PCM sample as G.711 μ-law (PCMU), the segment algorithm of
// ITU-T G.711 as in its reference code: magnitude clipped to 32635, biased by 0x84, 3 bits of
// segment and 4 of mantissa, the whole byte inverted. It is exact for every input and
// allocates nothing.
func mulaw(s int16) byte {
	const bias, clip = 0x84, 32635
	x := int32(s)
	var sign byte
	if x < 0 {
		x, sign = -x, 0x80
	}
	x = min(x, clip) + bias               // 132..32767
	seg := bits.Len32(uint32(x)>>7) - 1   // x>>7 is 1..255: segment 0..7
	mant := byte(x>>(uint(seg)+3)) & 0x0f // the 4 bits after the leading one
	return ^(sign | byte(seg)<<4 | mant)
}
