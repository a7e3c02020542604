//! Bit reading for parameter sets: RBSP extraction (emulation-prevention bytes removed) and an
//! Exp-Golomb reader that fails instead of panicking when the data runs out.

/// Copies a NAL payload without its emulation-prevention bytes (`00 00 03` → `00 00`).
/// Parameter sets are small; the copy is bounded by `max`.
pub fn rbsp(nal: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len().min(max));
    let mut zeros = 0;
    for &b in nal.iter().take(max) {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Ran past the end of the data, or a value no real stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

pub struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, bit: 0 }
    }

    pub fn bit(&mut self) -> Result<u32, Truncated> {
        let byte = *self.data.get(self.bit / 8).ok_or(Truncated)?;
        let v = (byte >> (7 - self.bit % 8)) & 1;
        self.bit += 1;
        Ok(u32::from(v))
    }

    pub fn bits(&mut self, n: u32) -> Result<u32, Truncated> {
        debug_assert!(n <= 32);
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Ok(v as u32)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), Truncated> {
        if self.bit + n > self.data.len() * 8 {
            return Err(Truncated);
        }
        self.bit += n;
        Ok(())
    }

    pub fn flag(&mut self) -> Result<bool, Truncated> {
        Ok(self.bit()? == 1)
    }

    /// Unsigned Exp-Golomb. Values above 2^31 are not legal in any field we read.
    pub fn ue(&mut self) -> Result<u32, Truncated> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(Truncated);
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    pub fn se(&mut self) -> Result<i32, Truncated> {
        let k = self.ue()?;
        Ok(if k % 2 == 1 { k.div_ceil(2) as i32 } else { -((k / 2) as i32) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb() {
        // 1 | 010 | 011 | 00100 | 00101 → 0, 1, 2, 3, 4
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data);
        assert_eq!([r.ue(), r.ue(), r.ue(), r.ue(), r.ue()], [Ok(0), Ok(1), Ok(2), Ok(3), Ok(4)]);
        let mut r = BitReader::new(&[0b0100_1100]);
        assert_eq!((r.se(), r.se()), (Ok(1), Ok(-1)));
        assert_eq!(BitReader::new(&[0, 0, 0, 0, 0]).ue(), Err(Truncated));
    }

    #[test]
    fn emulation_prevention_removed() {
        assert_eq!(rbsp(&[0x67, 0, 0, 3, 1, 0, 0, 3], 100), vec![0x67, 0, 0, 1, 0, 0]);
        assert_eq!(rbsp(&[1, 2, 3, 4], 2), vec![1, 2]);
    }
}
