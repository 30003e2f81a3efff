//! W3C data models and their cryptography as pure functions: Multikey encoding, DID
//! documents, Data Integrity proofs (`eddsa-jcs-2022`), credentials, presentations and
//! status lists. Must never do I/O: DID resolution is a trait passed in by the caller.

pub mod approval;
pub mod chain;
pub mod credential;
pub mod datamodel;
pub mod did;
pub mod jcs;
pub mod jose;
pub mod jsonld;

pub mod multikey;
pub mod presentation;
pub mod proof;

pub mod status_list;
pub mod trust;
pub mod verify;
