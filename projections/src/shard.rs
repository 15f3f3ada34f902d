//! Which merchants a sharded batch (`--shard K/N`) settles: FNV-1a of the merchant
//! id modulo N. Stable across processes and versions, so a merchant never moves
//! between shards.

use std::fmt;
use std::str::FromStr;

use domain::MerchantId;
use serde::{Deserialize, Serialize};

/// The most shards a night may be split into.
pub const SHARDS_MAX: u32 = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based.
    pub k: u32,
    pub n: u32,
}

impl Shard {
    pub fn contains(&self, m: &MerchantId) -> bool {
        shard_of(m, self.n) == self.k
    }
}

/// The 1-based shard of a merchant among `n`.
pub fn shard_of(m: &MerchantId, n: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in m.as_str().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(n)) as u32 + 1
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard '{s}' is not K/N with 1 <= K <= N <= {SHARDS_MAX}");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: u32 = k.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        if k == 0 || n == 0 || k > n || n > SHARDS_MAX {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_merchant_is_in_exactly_one_shard() {
        for i in 0..500u32 {
            let m = MerchantId::parse(&format!("{:09}", 100_000_000 + i * 7919)).unwrap();
            let hits = (1..=3).filter(|k| Shard { k: *k, n: 3 }.contains(&m)).count();
            assert_eq!(hits, 1);
        }
        assert!("0/2".parse::<Shard>().is_err());
        assert!("3/2".parse::<Shard>().is_err());
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard { k: 2, n: 4 });
    }
}
