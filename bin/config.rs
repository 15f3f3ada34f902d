//! `upay.toml`: what belongs to the company running the engine (the notice
//! issuer, the transfer remitter, the mail sender). Without one, the demo values
//! of SPEC §7 are used and a warning says so.

use std::path::{Path, PathBuf};

use notices::Issuer;
use payout::zengin::Remitter;
use serde::Deserialize;

use crate::app::{refused, AppError};

pub const DEFAULT_CONFIG: &str = "upay.toml";

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Mail {
    pub from: String,
    pub subject: String,
}

impl Mail {
    pub fn demo() -> Mail {
        Mail {
            from: "notices@example.jp".into(),
            subject: "【お支払通知書】{notice_no}".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    issuer: Option<Issuer>,
    remitter: Option<Remitter>,
    mail: Option<Mail>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub issuer: Issuer,
    pub remitter: Remitter,
    pub mail: Mail,
}

impl Config {
    pub fn demo() -> Config {
        Config {
            issuer: Issuer::demo(),
            remitter: Remitter::demo(),
            mail: Mail::demo(),
        }
    }

    /// Loads `--config FILE`, or `./upay.toml` when present, or the demo values.
    pub fn load(path: Option<&Path>) -> Result<Config, AppError> {
        let (path, explicit): (PathBuf, bool) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        if !path.exists() {
            if explicit {
                return Err(refused(format!("{}: configuration file not found", path.display())));
            }
            eprintln!("warning: no {DEFAULT_CONFIG}: using the demo issuer, remitter and mail settings");
            return Ok(Config::demo());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| refused(format!("{}: cannot read: {e}", path.display())))?;
        let f: File = toml::from_str(&text).map_err(|e| refused(format!("{}: {e}", path.display())))?;
        let mut missing = Vec::new();
        let demo = Config::demo();
        let cfg = Config {
            issuer: f.issuer.unwrap_or_else(|| {
                missing.push("issuer");
                demo.issuer
            }),
            remitter: f.remitter.unwrap_or_else(|| {
                missing.push("remitter");
                demo.remitter
            }),
            mail: f.mail.unwrap_or_else(|| {
                missing.push("mail");
                demo.mail
            }),
        };
        if !missing.is_empty() {
            eprintln!("warning: {} has no [{}]: using the demo values there", path.display(), missing.join("], ["));
        }
        cfg.remitter.validate().map_err(|e| refused(format!("{}: [remitter]: {e}", path.display())))?;
        for (field, v) in [
            ("issuer.name", &cfg.issuer.name),
            ("issuer.postal_code", &cfg.issuer.postal_code),
            ("issuer.address", &cfg.issuer.address),
            ("issuer.phone", &cfg.issuer.phone),
            ("issuer.support", &cfg.issuer.support),
        ] {
            let bad = notices::undrawable_chars(v);
            if !bad.is_empty() {
                return Err(refused(format!("{}: {field}: the notice font cannot draw {:?}", path.display(), bad)));
            }
        }
        Ok(cfg)
    }
}
