//! Card brands and the groups a notice prints them in (SPEC §1).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::ParseError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Brand {
    Visa,
    Mastercard,
    Jcb,
    Amex,
    Diners,
    Discover,
    Id,
    Quicpay,
    TransitIc,
}

pub const ALL_BRANDS: [Brand; 9] = [
    Brand::Visa,
    Brand::Mastercard,
    Brand::Jcb,
    Brand::Amex,
    Brand::Diners,
    Brand::Discover,
    Brand::Id,
    Brand::Quicpay,
    Brand::TransitIc,
];

impl Brand {
    pub fn code(self) -> &'static str {
        match self {
            Brand::Visa => "VISA",
            Brand::Mastercard => "MASTERCARD",
            Brand::Jcb => "JCB",
            Brand::Amex => "AMEX",
            Brand::Diners => "DINERS",
            Brand::Discover => "DISCOVER",
            Brand::Id => "ID",
            Brand::Quicpay => "QUICPAY",
            Brand::TransitIc => "TRANSIT_IC",
        }
    }

    pub fn parse(s: &str) -> Result<Brand, ParseError> {
        let t = s.trim();
        ALL_BRANDS
            .iter()
            .copied()
            .find(|b| b.code() == t)
            .ok_or_else(|| ParseError::new(format!("unknown brand '{s}'")))
    }

    pub fn group(self) -> BrandGroup {
        match self {
            Brand::Visa | Brand::Mastercard => BrandGroup::VisaMaster,
            Brand::Jcb | Brand::Amex | Brand::Diners | Brand::Discover => BrandGroup::JcbOther,
            Brand::Id | Brand::Quicpay | Brand::TransitIc => BrandGroup::Emoney,
        }
    }
}

impl fmt::Display for Brand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The three lines of a statement, in the order they are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BrandGroup {
    VisaMaster,
    JcbOther,
    Emoney,
}

impl BrandGroup {
    pub const ALL: [BrandGroup; 3] = [BrandGroup::VisaMaster, BrandGroup::JcbOther, BrandGroup::Emoney];

    /// The label printed on the notice.
    pub fn label(self) -> &'static str {
        match self {
            BrandGroup::VisaMaster => "VISA/MASTER",
            BrandGroup::JcbOther => "JCB/その他",
            BrandGroup::Emoney => "電子マネー",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_brand_has_its_group() {
        assert_eq!(Brand::parse("VISA").unwrap().group(), BrandGroup::VisaMaster);
        assert_eq!(Brand::parse("MASTERCARD").unwrap().group(), BrandGroup::VisaMaster);
        for b in ["JCB", "AMEX", "DINERS", "DISCOVER"] {
            assert_eq!(Brand::parse(b).unwrap().group(), BrandGroup::JcbOther);
        }
        for b in ["ID", "QUICPAY", "TRANSIT_IC"] {
            assert_eq!(Brand::parse(b).unwrap().group(), BrandGroup::Emoney);
        }
        assert!(Brand::parse("visa").is_err());
        assert!(Brand::parse("UNIONPAY").is_err());
    }

    #[test]
    fn brand_serialises_as_its_code() {
        for b in ALL_BRANDS {
            assert_eq!(serde_json::to_string(&b).unwrap(), format!("\"{}\"", b.code()));
        }
    }
}
