//! The Merchant aggregate: registration and every change of the contract. The
//! notice password is not an event field: only the fact that it changed is.

use serde::{Deserialize, Serialize};

use crate::contract::MerchantContract;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MerchantCommand {
    /// A row of merchants.csv. `password_changed` is looked up first in the
    /// secrets table (the aggregate never sees the password).
    Import { contract: MerchantContract, password_changed: bool },
}

/// Published contract: names and fields are never edited once shipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MerchantEvent {
    MerchantRegistered { contract: MerchantContract },
    MerchantContractChanged { contract: MerchantContract, changed_fields: Vec<String> },
    NoticePasswordChanged {},
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MerchantRefusal {
    #[error("merchant id {given} does not match the aggregate's {expected}")]
    WrongMerchant { expected: String, given: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    pub contract: Option<MerchantContract>,
}

/// What an import did, for the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    New,
    Changed,
    Unchanged,
}

impl Merchant {
    pub fn decide(&self, cmd: &MerchantCommand) -> Result<Vec<MerchantEvent>, MerchantRefusal> {
        let MerchantCommand::Import { contract, password_changed } = cmd;
        let Some(current) = &self.contract else {
            return Ok(vec![MerchantEvent::MerchantRegistered { contract: contract.clone() }]);
        };
        if current.merchant_id != contract.merchant_id {
            return Err(MerchantRefusal::WrongMerchant {
                expected: current.merchant_id.to_string(),
                given: contract.merchant_id.to_string(),
            });
        }
        let mut events = Vec::new();
        let fields = current.changed_fields(contract);
        if !fields.is_empty() {
            events.push(MerchantEvent::MerchantContractChanged {
                contract: contract.clone(),
                changed_fields: fields.into_iter().map(String::from).collect(),
            });
        }
        if *password_changed {
            events.push(MerchantEvent::NoticePasswordChanged {});
        }
        Ok(events)
    }

    pub fn apply(&mut self, event: &MerchantEvent) {
        match event {
            MerchantEvent::MerchantRegistered { contract } | MerchantEvent::MerchantContractChanged { contract, .. } => self.contract = Some(contract.clone()),
            MerchantEvent::NoticePasswordChanged {} => {}
        }
    }

    pub fn outcome(events: &[MerchantEvent]) -> ImportOutcome {
        match events.first() {
            None => ImportOutcome::Unchanged,
            Some(MerchantEvent::MerchantRegistered { .. }) => ImportOutcome::New,
            Some(_) => ImportOutcome::Changed,
        }
    }
}

impl MerchantEvent {
    pub fn name(&self) -> &'static str {
        match self {
            MerchantEvent::MerchantRegistered { .. } => "MerchantRegistered",
            MerchantEvent::MerchantContractChanged { .. } => "MerchantContractChanged",
            MerchantEvent::NoticePasswordChanged {} => "NoticePasswordChanged",
        }
    }
}

impl cqrs_es::DomainEvent for MerchantEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl cqrs_es::Aggregate for Merchant {
    const TYPE: &'static str = "Merchant";
    type Command = MerchantCommand;
    type Event = MerchantEvent;
    type Error = MerchantRefusal;
    type Services = ();

    async fn handle(&mut self, command: MerchantCommand, _services: &(), sink: &cqrs_es::event_sink::EventSink<Self>) -> Result<(), MerchantRefusal> {
        for e in self.decide(&command)? {
            sink.write(e, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: MerchantEvent) {
        Merchant::apply(self, &event)
    }
}
