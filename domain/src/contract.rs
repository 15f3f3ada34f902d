//! The merchant contract: who is paid, where, and at which rates.

use serde::{Deserialize, Serialize};

use crate::brand::BrandGroup;
use crate::ids::{MerchantId, ParseError};
use crate::money::Rate;

/// How the fee's consumption tax is billed (SPEC §4 item 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeeTaxPolicy {
    /// Rates include consumption tax at 8 %; above 8 % the difference is billed.
    #[serde(rename = "inclusive-8")]
    Inclusive8,
    /// Tax at the rate in force is billed on top of the fee.
    Exclusive,
    Exempt,
}

impl FeeTaxPolicy {
    pub fn parse(s: &str) -> Result<FeeTaxPolicy, ParseError> {
        match s.trim() {
            "" | "inclusive-8" => Ok(FeeTaxPolicy::Inclusive8),
            "exclusive" => Ok(FeeTaxPolicy::Exclusive),
            "exempt" => Ok(FeeTaxPolicy::Exempt),
            _ => Err(ParseError::new(format!("fee_tax '{s}' is not one of inclusive-8, exclusive, exempt"))),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            FeeTaxPolicy::Inclusive8 => "inclusive-8",
            FeeTaxPolicy::Exclusive => "exclusive",
            FeeTaxPolicy::Exempt => "exempt",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AccountType {
    /// 普通
    Ordinary,
    /// 当座
    Current,
}

impl AccountType {
    pub fn parse(s: &str) -> Result<AccountType, ParseError> {
        match s.trim() {
            "普通" => Ok(AccountType::Ordinary),
            "当座" => Ok(AccountType::Current),
            _ => Err(ParseError::new(format!("account_type '{s}' is not 普通 or 当座"))),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AccountType::Ordinary => "普通",
            AccountType::Current => "当座",
        }
    }
}

/// The bank code of Mizuho Bank, whose payees pay no transfer fee.
pub const MIZUHO_BANK_CODE: &str = "0001";

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PayeeBank {
    pub bank_code: String,
    pub bank_name: String,
    pub branch_code: String,
    pub branch_name: String,
    pub account_type: AccountType,
    pub account_number: String,
    /// In the bank transfer alphabet, as written in the CSV.
    pub account_holder: String,
    pub bank_name_kana: String,
    pub branch_name_kana: String,
}

impl PayeeBank {
    pub fn is_mizuho(&self) -> bool {
        self.bank_code == MIZUHO_BANK_CODE
    }

    /// `***567`: the account number as a notice or an export shows it.
    pub fn masked_account_number(&self) -> String {
        let n = &self.account_number;
        let tail = &n[n.len().saturating_sub(3)..];
        format!("***{tail}")
    }
}

/// One fee rate per brand group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rates {
    pub visa_master: Rate,
    pub jcb_other: Rate,
    pub emoney: Rate,
}

impl Rates {
    pub fn for_group(&self, g: BrandGroup) -> Rate {
        match g {
            BrandGroup::VisaMaster => self.visa_master,
            BrandGroup::JcbOther => self.jcb_other,
            BrandGroup::Emoney => self.emoney,
        }
    }
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            visa_master: Rate::default_rate(),
            jcb_other: Rate::default_rate(),
            emoney: Rate::default_rate(),
        }
    }
}

/// Everything the event log knows of a merchant. The notice password is not here:
/// it lives in the store's secrets table so the log can be handed to auditors.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MerchantContract {
    pub merchant_id: MerchantId,
    pub name: String,
    pub contact: String,
    pub email: String,
    pub bank: PayeeBank,
    pub rates: Rates,
    pub fee_tax: FeeTaxPolicy,
}

impl MerchantContract {
    /// The names of the fields that differ, for the change event and the summary.
    pub fn changed_fields(&self, other: &MerchantContract) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut check = |name: &'static str, differs: bool| {
            if differs {
                v.push(name)
            }
        };
        check("name", self.name != other.name);
        check("contact", self.contact != other.contact);
        check("email", self.email != other.email);
        check("bank_code", self.bank.bank_code != other.bank.bank_code);
        check("bank_name", self.bank.bank_name != other.bank.bank_name);
        check("branch_code", self.bank.branch_code != other.bank.branch_code);
        check("branch_name", self.bank.branch_name != other.bank.branch_name);
        check("account_type", self.bank.account_type != other.bank.account_type);
        check("account_number", self.bank.account_number != other.bank.account_number);
        check("account_holder", self.bank.account_holder != other.bank.account_holder);
        check("bank_name_kana", self.bank.bank_name_kana != other.bank.bank_name_kana);
        check("branch_name_kana", self.bank.branch_name_kana != other.bank.branch_name_kana);
        check("rate_visa_master", self.rates.visa_master != other.rates.visa_master);
        check("rate_jcb_other", self.rates.jcb_other != other.rates.jcb_other);
        check("rate_emoney", self.rates.emoney != other.rates.emoney);
        check("fee_tax", self.fee_tax != other.fee_tax);
        v
    }
}

/// A minimal e-mail address check: one `@`, something on each side, no spaces.
pub fn parse_email(s: &str) -> Result<String, ParseError> {
    let t = s.trim();
    let ok = t.split('@').count() == 2
        && !t.starts_with('@')
        && !t.ends_with('@')
        && t.rsplit('@').next().is_some_and(|d| d.contains('.'))
        && !t.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(t.to_string())
    } else {
        Err(ParseError::new(format!("email '{s}' is not an e-mail address")))
    }
}
