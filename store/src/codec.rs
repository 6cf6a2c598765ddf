//! Bit- and byte-level primitives shared by the chunk and sketch encodings. Readers are
//! defensive: every read is bounds-checked and returns [`Truncated`] instead of panicking,
//! because blobs come from a file that may be damaged.

/// A read ran past the end of its buffer (or a length field was absurd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

/// Appends bits, most significant first.
#[derive(Debug, Default, Clone)]
pub struct BitWriter {
    buf: Vec<u8>,
    /// Bits used in the last byte (0 means the last byte is full or there is none).
    used: u32,
}

impl BitWriter {
    /// An empty writer with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> Self {
        Self { buf: Vec::with_capacity(bytes), used: 0 }
    }

    /// Append the low `n` bits of `value` (n ≤ 64): the rest of the last byte, then whole
    /// bytes, then the start of a new one (a bit-chunk loop was a tenth of a flush's
    /// encoding instructions).
    #[inline]
    pub fn write_bits(&mut self, value: u64, mut n: u32) {
        debug_assert!(n <= 64);
        if self.used != 0 && n > 0 {
            let free = 8 - self.used;
            let take = free.min(n);
            let chunk = ((value >> (n - take)) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= chunk << (free - take);
            }
            self.used = (self.used + take) % 8;
            n -= take;
        }
        while n >= 8 {
            n -= 8;
            self.buf.push((value >> n) as u8);
        }
        if n > 0 {
            // The low `n` bits at the top of a new byte (the bits above them are written).
            self.buf.push((value << (8 - n)) as u8);
            self.used = n;
        }
    }

    /// Append one bit.
    pub fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Pad to a byte boundary and append raw bytes.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.used = 0;
        self.buf.extend_from_slice(bytes);
    }

    /// Pad to a byte boundary and append an unsigned LEB128 varint.
    pub fn write_varint(&mut self, v: u64) {
        self.used = 0;
        put_varint(&mut self.buf, v);
    }

    /// Bits written so far (padding included where bytes were appended). Tests check size
    /// models against it.
    #[cfg(test)]
    pub fn bits(&self) -> u64 {
        let pad = if self.used == 0 { 0 } else { 8 - self.used };
        self.buf.len() as u64 * 8 - u64::from(pad)
    }

    /// The bytes written (the last byte zero-padded).
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads bits written by [`BitWriter`].
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    buf: &'a [u8],
    /// Absolute bit position.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Read `n` bits (n ≤ 64).
    pub fn read_bits(&mut self, n: u32) -> Result<u64, Truncated> {
        if n > 64 || self.pos + n as usize > self.buf.len() * 8 {
            return Err(Truncated);
        }
        if n == 0 {
            return Ok(0);
        }
        let off = (self.pos % 8) as u32;
        if off + n > 64 {
            // Straddles nine bytes: two reads.
            let hi_n = 64 - off;
            let hi = self.read_bits(hi_n)?;
            let lo = self.read_bits(n - hi_n)?;
            return Ok((hi << (n - hi_n)) | lo);
        }
        // Load the (up to) eight bytes holding the bits as one big-endian word.
        let at = self.pos / 8;
        let word = match self.buf.get(at..at + 8) {
            Some(bytes) => u64::from_be_bytes(bytes.try_into().map_err(|_| Truncated)?),
            None => {
                let mut word = [0u8; 8];
                word[..self.buf.len() - at].copy_from_slice(&self.buf[at..]);
                u64::from_be_bytes(word)
            }
        };
        let v = (word << off) >> (64 - n);
        self.pos += n as usize;
        Ok(v)
    }

    /// Read one bit.
    pub fn read_bit(&mut self) -> Result<bool, Truncated> {
        Ok(self.read_bits(1)? == 1)
    }

    fn align(&mut self) {
        self.pos = self.pos.div_ceil(8) * 8;
    }

    /// Skip to a byte boundary and read a varint.
    pub fn read_varint(&mut self) -> Result<u64, Truncated> {
        self.align();
        let mut at = self.pos / 8;
        let v = get_varint(self.buf, &mut at)?;
        self.pos = at * 8;
        Ok(v)
    }

    /// Skip to a byte boundary and read `n` raw bytes.
    pub fn read_bytes(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        self.align();
        let at = self.pos / 8;
        let end = at.checked_add(n).ok_or(Truncated)?;
        let out = self.buf.get(at..end).ok_or(Truncated)?;
        self.pos = end * 8;
        Ok(out)
    }

    /// Bytes consumed so far (a partly read byte counts).
    pub fn bytes_consumed(&self) -> usize {
        self.pos.div_ceil(8)
    }

    /// True when every whole byte has been consumed (padding bits ignored).
    pub fn at_end(&self) -> bool {
        self.pos.div_ceil(8) >= self.buf.len()
    }
}

/// Append an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Read an unsigned LEB128 varint at `*at`, advancing it.
pub fn get_varint(buf: &[u8], at: &mut usize) -> Result<u64, Truncated> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at).ok_or(Truncated)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Truncated)
}

/// Zigzag-map a signed integer so small magnitudes get small codes.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Number of significant bits in `v` (0 for 0).
pub fn bit_width(v: u64) -> u32 {
    64 - v.leading_zeros()
}

/// How a run of unsigned codes is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A zero-flag bit and a 6-bit width, then per code a flag and the payload: '0' zero,
    /// '10'+width, '11'+64 with the zero flag; '0'+width, '1'+64 without. Sketches, and
    /// chunks of formats 1 and 2.
    Flagged,
    /// One bit first: set, a 6-bit width and every code in exactly that width, no flags (the
    /// cheapest when no code is an outlier, as in most integer columns); clear, as
    /// [`Layout::Flagged`]. Chunks of formats 4 and 5.
    Framed,
}

/// How a run of unsigned codes is written: its layout, a payload width, whether zero gets
/// its own 1-bit code, or whether every code takes exactly `width` bits.
#[derive(Debug, Clone, Copy)]
pub struct CodePlan {
    layout: Layout,
    fixed: bool,
    zero_flag: bool,
    width: u32,
    /// Bits the header and the codes will take.
    pub cost: u64,
}

pub fn plan_codes(codes: &[u64], layout: Layout) -> CodePlan {
    let mut hist = [0u64; 65];
    for &c in codes {
        hist[bit_width(c) as usize] += 1;
    }
    let zeros = hist[0];
    let nonzero = codes.len() as u64 - zeros;
    let max_width = (0..=64).rev().find(|&b| hist[b] > 0).unwrap_or(0) as u32;
    let widest = max_width.clamp(1, 63);
    let header = 7 + u64::from(layout == Layout::Framed);
    let mut best = CodePlan { layout, fixed: false, zero_flag: true, width: 1, cost: u64::MAX };
    let mut fitting = 0u64; // non-zero codes no wider than `width`
    for width in 1..=widest {
        fitting += hist[width as usize];
        let (w, escaped) = (u64::from(width), nonzero - fitting);
        let with_zero = zeros + fitting * (2 + w) + escaped * 66;
        let plain = (zeros + fitting) * (1 + w) + escaped * 65;
        for (zero_flag, cost) in [(true, with_zero), (false, plain)] {
            if header + cost < best.cost {
                best = CodePlan { layout, fixed: false, zero_flag, width, cost: header + cost };
            }
        }
    }
    if layout == Layout::Framed && max_width < 64 {
        let cost = 7 + codes.len() as u64 * u64::from(max_width);
        if cost <= best.cost {
            best = CodePlan { layout, fixed: true, zero_flag: false, width: max_width, cost };
        }
    }
    best
}

pub fn write_codes(w: &mut BitWriter, codes: &[u64], plan: CodePlan) {
    if plan.layout == Layout::Framed {
        w.write_bit(plan.fixed);
        if plan.fixed {
            w.write_bits(u64::from(plan.width), 6);
            for &c in codes {
                w.write_bits(c, plan.width);
            }
            return;
        }
    }
    w.write_bit(plan.zero_flag);
    w.write_bits(u64::from(plan.width), 6);
    for &c in codes {
        let fits = bit_width(c) <= plan.width;
        match (plan.zero_flag, c == 0, fits) {
            (true, true, _) => w.write_bit(false),
            (true, false, true) => {
                w.write_bits(0b10, 2);
                w.write_bits(c, plan.width);
            }
            (true, false, false) => {
                w.write_bits(0b11, 2);
                w.write_bits(c, 64);
            }
            (false, _, true) => {
                w.write_bit(false);
                w.write_bits(c, plan.width);
            }
            (false, _, false) => {
                w.write_bit(true);
                w.write_bits(c, 64);
            }
        }
    }
}

pub fn read_codes(r: &mut BitReader<'_>, n: usize, layout: Layout) -> Result<Vec<u64>, Truncated> {
    if layout == Layout::Framed && r.read_bit()? {
        let width = r.read_bits(6)? as u32;
        return (0..n).map(|_| r.read_bits(width)).collect();
    }
    let zero_flag = r.read_bit()?;
    let width = r.read_bits(6)? as u32;
    if width == 0 {
        return Err(Truncated);
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let c = if zero_flag {
            if !r.read_bit()? {
                0
            } else if !r.read_bit()? {
                r.read_bits(width)?
            } else {
                r.read_bits(64)?
            }
        } else if !r.read_bit()? {
            r.read_bits(width)?
        } else {
            r.read_bits(64)?
        };
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bits_round_trip(items in proptest::collection::vec((any::<u64>(), 1u32..=64), 0..64)) {
            let mut w = BitWriter::default();
            for &(v, n) in &items { w.write_bits(v, n); }
            let buf = w.finish();
            let mut r = BitReader::new(&buf);
            for &(v, n) in &items {
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                prop_assert_eq!(r.read_bits(n).unwrap(), v & mask);
            }
        }

        /// The bytes are those of writing one bit at a time, most significant first, with
        /// bytes and varints between the bits (the stored format, whatever the writer's loop).
        #[test]
        fn bits_land_where_one_bit_at_a_time_puts_them(
            items in proptest::collection::vec((any::<u64>(), 0u32..=64, 0u8..8), 0..48),
        ) {
            let (mut w, mut bits, mut want) = (BitWriter::default(), 0u64, Vec::<u8>::new());
            for &(v, n, between) in &items {
                w.write_bits(v, n);
                for i in (0..n).rev() {
                    if bits % 8 == 0 {
                        want.push(0);
                    }
                    let last = want.len() - 1;
                    want[last] |= (((v >> i) & 1) as u8) << (7 - bits % 8);
                    bits += 1;
                }
                if between == 0 {
                    w.write_varint(v);
                    put_varint(&mut want, v);
                    bits = want.len() as u64 * 8;
                }
            }
            prop_assert_eq!(w.finish(), want);
        }

        #[test]
        fn codes_round_trip_in_the_bits_their_plan_counts(
            codes in proptest::collection::vec(prop_oneof![4 => 0u64..40, 1 => Just(0u64), 1 => any::<u64>()], 0..200),
        ) {
            for layout in [Layout::Flagged, Layout::Framed] {
                let plan = plan_codes(&codes, layout);
                let mut w = BitWriter::default();
                write_codes(&mut w, &codes, plan);
                prop_assert_eq!(w.bits(), plan.cost);
                let buf = w.finish();
                prop_assert_eq!(read_codes(&mut BitReader::new(&buf), codes.len(), layout).unwrap(), codes.clone());
            }
        }

        #[test]
        fn varint_and_zigzag_round_trip(v in any::<i64>()) {
            let mut out = Vec::new();
            put_varint(&mut out, zigzag(v));
            let mut at = 0;
            prop_assert_eq!(unzigzag(get_varint(&out, &mut at).unwrap()), v);
            prop_assert_eq!(at, out.len());
        }
    }

    #[test]
    fn reads_past_the_end_are_errors_not_panics() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.read_bits(8), Ok(0xff));
        assert_eq!(r.read_bits(1), Err(Truncated));
        assert_eq!(get_varint(&[0x80, 0x80], &mut 0), Err(Truncated));
        assert_eq!(BitReader::new(&[1, 2]).read_bytes(3), Err(Truncated));
    }
}
