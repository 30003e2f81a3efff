//! The W3C VC Data Model 2.0 rules a credential must meet before Sigil signs it, and the
//! one parser of its date-time values (`validFrom`, `validUntil`, proof times), shared by
//! issuing and verifying so the two can never disagree on a date.
//!
//! Each rule names the section of VC Data Model 2.0 (W3C Recommendation) it restates; a
//! violation carries that section, so the caller's answer can name the rule. The checks
//! work on the JSON document as it is written. What needs JSON-LD processing (a context
//! that redefines a protected term, a `type` that does not expand to a URL) is not here.
//!
//! Must never: do I/O, or pass a document a conformant verifier refuses for its shape.

use std::collections::HashSet;
use std::fmt;

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::credential::VC_V2;

/// The sections of VC Data Model 2.0 a rule comes from.
pub mod section {
    pub const CONTEXTS: &str = "4.3 Contexts";
    pub const IDENTIFIERS: &str = "4.4 Identifiers";
    pub const TYPES: &str = "4.5 Types";
    pub const NAMES: &str = "4.6 Names and Descriptions";
    pub const ISSUER: &str = "4.7 Issuer";
    pub const SUBJECT: &str = "4.8 Credential Subject";
    pub const VALIDITY: &str = "4.9 Validity Period";
    pub const STATUS: &str = "4.10 Status";
    pub const SCHEMAS: &str = "4.11 Data Schemas";
    pub const PRESENTATIONS: &str = "4.13 Verifiable Presentations";
    pub const RELATED: &str = "5.3 Integrity of Related Resources";
    pub const REFRESH: &str = "5.4 Refreshing";
    pub const TERMS: &str = "5.5 Terms of Use";
    pub const EVIDENCE: &str = "5.6 Evidence";
    pub const LANGUAGE: &str = "11.1 Language and Base Direction";
}

/// A broken rule: what is wrong, and the section that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub section: &'static str,
    pub detail: String,
}

impl Violation {
    fn new(section: &'static str, detail: impl Into<String>) -> Self {
        Self { section, detail: detail.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (VC Data Model 2.0 §{})", self.detail, self.section)
    }
}

impl std::error::Error for Violation {}

/// An absolute URL as §4.4 asks of every `id`: a scheme (RFC 3986: a letter, then letters,
/// digits, `+`, `-`, `.`), a colon, and something after it, with no whitespace or control
/// characters. `urn:uuid:…`, `did:…` and `https://…` all are; `abc` or `3732` is not.
pub fn is_url(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() || c.is_whitespace())
        && s.split_once(':').is_some_and(|(scheme, rest)| {
            !rest.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        })
}

/// Checks an unsigned credential against the data model before it is signed.
pub fn check_credential(doc: &Map<String, Value>) -> Result<(), Violation> {
    contexts(doc)?;
    // §4.4 Identifiers: "If present, the value of the id property MUST be a single URL."
    optional_url(doc, "id", "id", section::IDENTIFIERS)?;
    types(doc)?;
    // §4.6 Names and Descriptions: name and description of the credential.
    names(doc, "")?;
    issuer(doc)?;
    subjects(doc)?;
    validity_period(doc)?;
    // §4.10 Status: "The type property is REQUIRED"; an id follows §4.4, and one id names
    // one status entry.
    let status = typed_objects(doc, "credentialStatus", section::STATUS, false)?;
    unique_ids(&status, "credentialStatus", section::STATUS)?;
    // §4.11 Data Schemas: "Each credentialSchema MUST specify its type (for example,
    // JsonSchema), and an id property that MUST be a URL identifying the schema file."
    typed_objects(doc, "credentialSchema", section::SCHEMAS, true)?;
    related_resources(doc)?;
    // §5.4 Refreshing: "Each refreshService value MUST specify its type."
    typed_objects(doc, "refreshService", section::REFRESH, false)?;
    // §5.5 Terms of Use: "Each termsOfUse value MUST specify its type … and MAY specify its
    // instance id."
    typed_objects(doc, "termsOfUse", section::TERMS, false)?;
    // §5.6 Evidence: "Each evidence scheme is identified by its type."
    typed_objects(doc, "evidence", section::EVIDENCE, false)?;
    Ok(())
}

/// §4.3 Contexts: "an ordered set where the first item is a URL with the value
/// https://www.w3.org/ns/credentials/v2. Subsequent items … MUST be composed of any
/// combination of URLs and/or objects". (Whether each is processable as a JSON-LD context
/// is the JSON-LD processor's to say.)
fn contexts(doc: &Map<String, Value>) -> Result<(), Violation> {
    let Some(Value::Array(ctx)) = doc.get("@context") else {
        return Err(Violation::new(section::CONTEXTS, format!("@context must be an array starting with {VC_V2}")));
    };
    if ctx.first().and_then(Value::as_str) != Some(VC_V2) {
        return Err(Violation::new(section::CONTEXTS, format!("@context must be an array starting with {VC_V2}")));
    }
    for c in ctx.iter().skip(1) {
        match c {
            Value::String(s) if is_url(s) => {}
            Value::Object(_) => {}
            _ => return Err(Violation::new(section::CONTEXTS, "every further @context entry must be a URL or an object")),
        }
    }
    Ok(())
}

/// §4.5 Types: "The value of the type property MUST be one or more terms and/or absolute
/// URL strings", and a verifiable credential's include `VerifiableCredential`.
fn types(doc: &Map<String, Value>) -> Result<(), Violation> {
    let list = type_list(doc.get("type")).ok_or_else(|| Violation::new(section::TYPES, "type must be a string or an array of strings"))?;
    if !list.contains(&"VerifiableCredential") {
        return Err(Violation::new(section::TYPES, "type must include VerifiableCredential"));
    }
    Ok(())
}

/// One or more non-empty strings, as a `type` value must be.
fn type_list(v: Option<&Value>) -> Option<Vec<&str>> {
    let list: Vec<&str> = match v? {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().map(Value::as_str).collect::<Option<_>>()?,
        _ => return None,
    };
    (!list.is_empty() && list.iter().all(|t| !t.is_empty())).then_some(list)
}

/// §4.6 Names and Descriptions: "If present, the value of the name property MUST be a
/// string or a language value object" (likewise `description`); several language value
/// objects may be given as an array (§11.1).
fn names(obj: &Map<String, Value>, at: &str) -> Result<(), Violation> {
    for key in ["name", "description"] {
        let Some(v) = obj.get(key) else { continue };
        let ok = match v {
            Value::String(_) => true,
            Value::Object(o) => language_value(o),
            Value::Array(a) => !a.is_empty() && a.iter().all(|x| x.as_object().is_some_and(language_value)),
            _ => false,
        };
        if !ok {
            return Err(Violation::new(
                section::NAMES,
                format!("{at}{key} must be a string, a language value object or an array of them (§{})", section::LANGUAGE),
            ));
        }
    }
    Ok(())
}

/// §11.1 Language and Base Direction: "the object MUST contain a @value property whose
/// value is a string, and SHOULD contain a @language property whose value is a string
/// containing a well-formed Language-Tag … and MAY contain a @direction property … The
/// language value object MUST NOT include any other keys".
fn language_value(o: &Map<String, Value>) -> bool {
    let value_ok = o.get("@value").is_some_and(Value::is_string);
    let language_ok = o.get("@language").is_none_or(|l| l.as_str().is_some_and(is_language_tag));
    let direction_ok = o.get("@direction").is_none_or(|d| matches!(d.as_str(), Some("ltr" | "rtl")));
    let keys_ok = o.keys().all(|k| matches!(k.as_str(), "@value" | "@language" | "@direction"));
    value_ok && language_ok && direction_ok && keys_ok
}

/// BCP 47 well-formedness in outline: subtags of 1–8 letters or digits joined by `-`, the
/// first of letters only.
fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let first_ok = parts.next().is_some_and(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    first_ok && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// §4.7 Issuer: "The value of the issuer property MUST be either a URL, or an object
/// containing an id property whose value is a URL"; an issuer object's name and
/// description follow §4.6.
fn issuer(doc: &Map<String, Value>) -> Result<(), Violation> {
    let bad = || Violation::new(section::ISSUER, "issuer must be a URL or an object whose id is a URL");
    match doc.get("issuer") {
        None => Err(Violation::new(section::ISSUER, "issuer is required")),
        Some(Value::String(s)) if is_url(s) => Ok(()),
        Some(Value::Object(o)) if o.get("id").and_then(Value::as_str).is_some_and(is_url) => names(o, "issuer."),
        Some(_) => Err(bad()),
    }
}

/// §4.8 Credential Subject: "A verifiable credential MUST have a credentialSubject
/// property", "a set of objects where each object MUST be the subject of one or more
/// claims", each `id` a URL (§4.4).
fn subjects(doc: &Map<String, Value>) -> Result<(), Violation> {
    let subjects = one_or_more(doc.get("credentialSubject")).map_err(|why| match why {
        Shape::Missing => Violation::new(section::SUBJECT, "credentialSubject is required"),
        Shape::Wrong => Violation::new(section::SUBJECT, "credentialSubject must be an object or a non-empty array of objects"),
    })?;
    for s in subjects {
        if s.is_empty() {
            return Err(Violation::new(section::SUBJECT, "a credentialSubject must make at least one claim (it is empty)"));
        }
        optional_url(s, "id", "credentialSubject.id", section::IDENTIFIERS)?;
    }
    Ok(())
}

/// §4.9 Validity Period: `validFrom` and `validUntil`, when present, are XML Schema
/// `dateTimeStamp` strings, and `validFrom` is not later than `validUntil`. Answers both.
pub fn validity_period(doc: &Map<String, Value>) -> Result<(Option<Timestamp>, Option<Timestamp>), Violation> {
    let time = |key: &str| -> Result<Option<Timestamp>, Violation> {
        match doc.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => parse_date_time_stamp(s)
                .map(Some)
                .map_err(|why| Violation::new(section::VALIDITY, format!("{key} is not an XML Schema dateTimeStamp: {why}"))),
            Some(_) => Err(Violation::new(section::VALIDITY, format!("{key} must be a dateTimeStamp string"))),
        }
    };
    let (from, until) = (time("validFrom")?, time("validUntil")?);
    if let (Some(f), Some(u)) = (from, until) {
        if f > u {
            return Err(Violation::new(section::VALIDITY, "validFrom must not be later than validUntil"));
        }
    }
    Ok((from, until))
}

/// §5.3 Integrity of Related Resources: "The value of the relatedResource property MUST be
/// one or more objects", each with an `id` that "is REQUIRED and conforms to … Identifiers.
/// The value MUST be unique among the list of related resource objects", and "Each object
/// … MUST contain at least a digestSRI or a digestMultibase value" (`digestMultibase`
/// "MUST use the base64-url-nopad (u)" encoding).
fn related_resources(doc: &Map<String, Value>) -> Result<(), Violation> {
    let resources = match one_or_more(doc.get("relatedResource")) {
        Ok(r) => r,
        Err(Shape::Missing) => return Ok(()),
        Err(Shape::Wrong) => {
            return Err(Violation::new(section::RELATED, "relatedResource must be an object or a non-empty array of objects"));
        }
    };
    let mut seen = HashSet::new();
    for r in resources {
        let id = match r.get("id") {
            Some(Value::String(s)) if is_url(s) => s.as_str(),
            None => return Err(Violation::new(section::RELATED, "every relatedResource needs an id")),
            Some(_) => return Err(Violation::new(section::RELATED, "a relatedResource id must be a URL")),
        };
        if !seen.insert(id) {
            return Err(Violation::new(section::RELATED, format!("relatedResource ids must be unique; {id} is listed twice")));
        }
        let multibase = r.get("digestMultibase");
        let sri = r.get("digestSRI");
        if multibase.is_none() && sri.is_none() {
            return Err(Violation::new(section::RELATED, format!("relatedResource {id} needs a digestMultibase or digestSRI")));
        }
        if multibase.is_some_and(|d| !strings(d).is_some_and(|l| l.iter().all(|s| s.len() > 1 && s.starts_with('u')))) {
            return Err(Violation::new(section::RELATED, "digestMultibase must be base64url multibase (a string starting with u)"));
        }
        if sri.is_some_and(|d| !strings(d).is_some_and(|l| l.iter().all(|s| s.contains('-')))) {
            return Err(Violation::new(section::RELATED, "digestSRI must be a Subresource Integrity value such as sha384-…"));
        }
    }
    Ok(())
}

/// A string, or a non-empty array of strings.
fn strings(v: &Value) -> Option<Vec<&str>> {
    match v {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(a) if !a.is_empty() => a.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

enum Shape {
    Missing,
    Wrong,
}

/// An object or a non-empty array of objects: the shape of every "one or more" property.
fn one_or_more(v: Option<&Value>) -> Result<Vec<&Map<String, Value>>, Shape> {
    match v {
        None => Err(Shape::Missing),
        Some(Value::Object(o)) => Ok(vec![o]),
        Some(Value::Array(a)) if !a.is_empty() => a.iter().map(|x| x.as_object().ok_or(Shape::Wrong)).collect(),
        Some(_) => Err(Shape::Wrong),
    }
}

/// The objects of `key` (absent: none), each with a `type` (§4.5: "one or more terms
/// and/or absolute URL strings") and an `id` that, when present or `id_required`, is a URL
/// (§4.4).
fn typed_objects<'a>(
    doc: &'a Map<String, Value>,
    key: &str,
    sec: &'static str,
    id_required: bool,
) -> Result<Vec<&'a Map<String, Value>>, Violation> {
    let objects = match one_or_more(doc.get(key)) {
        Ok(o) => o,
        Err(Shape::Missing) => return Ok(vec![]),
        Err(Shape::Wrong) => return Err(Violation::new(sec, format!("{key} must be an object or a non-empty array of objects"))),
    };
    for o in &objects {
        if type_list(o.get("type")).is_none() {
            return Err(Violation::new(sec, format!("every {key} object must specify its type")));
        }
        if id_required && !o.contains_key("id") {
            return Err(Violation::new(sec, format!("every {key} object needs an id (a URL)")));
        }
        optional_url(o, "id", &format!("{key}.id"), section::IDENTIFIERS)?;
    }
    Ok(objects)
}

/// No two objects with the same `id`.
fn unique_ids(objects: &[&Map<String, Value>], key: &str, sec: &'static str) -> Result<(), Violation> {
    let mut seen = HashSet::new();
    for id in objects.iter().filter_map(|o| o.get("id").and_then(Value::as_str)) {
        if !seen.insert(id) {
            return Err(Violation::new(sec, format!("{key} entries must have distinct ids; {id} is used twice")));
        }
    }
    Ok(())
}

/// §4.4 Identifiers: "If present, the value of the id property MUST be a single URL" (not
/// null, not an array, not a plain string).
fn optional_url(obj: &Map<String, Value>, key: &str, name: &str, sec: &'static str) -> Result<(), Violation> {
    match obj.get(key) {
        None => Ok(()),
        Some(Value::String(s)) if is_url(s) => Ok(()),
        Some(_) => Err(Violation::new(sec, format!("{name} must be a single URL (such as urn:uuid:…, did:… or https://…)"))),
    }
}

/// Parses an XML Schema 1.1 `dateTimeStamp`, the form VC Data Model 2.0 §4.9 requires of
/// `validFrom` and `validUntil` (and Data Integrity of proof times):
/// `-?YYYY-MM-DDThh:mm:ss(.s+)?(Z|(+|-)hh:mm)`, a year of four or more digits, `24:00:00`
/// for the end of a day, offsets up to ±14:00, and a date that exists (no 30 February).
/// Years beyond ±9999 are refused: no verifier here could compare them.
pub fn parse_date_time_stamp(s: &str) -> Result<Timestamp, &'static str> {
    const FORM: &str = "expected YYYY-MM-DDThh:mm:ss with Z or an offset such as +01:00";
    let mut c = Cursor { s, at: 0 };
    let negative = c.eat(b'-');
    let year_digits = c.run_of_digits();
    if year_digits.len() < 4 || (year_digits.len() > 4 && year_digits.starts_with('0')) {
        return Err(FORM);
    }
    let year: i16 = year_digits.parse().ok().filter(|y| *y <= 9999).ok_or("the year is outside -9999..9999")?;
    let year = if negative { -year } else { year };
    let month = c.expect(b'-').and_then(|()| c.two_digits()).filter(|m| (1..=12).contains(m)).ok_or(FORM)?;
    let day = c.expect(b'-').and_then(|()| c.two_digits()).filter(|d| (1..=31).contains(d)).ok_or(FORM)?;
    let hour = c.expect(b'T').and_then(|()| c.two_digits()).filter(|h| *h <= 24).ok_or(FORM)?;
    let minute = c.expect(b':').and_then(|()| c.two_digits()).filter(|m| *m <= 59).ok_or(FORM)?;
    let second = c.expect(b':').and_then(|()| c.two_digits()).filter(|s| *s <= 59).ok_or(FORM)?;
    let mut nanos: i32 = 0;
    let mut fraction_zero = true;
    if c.eat(b'.') {
        let digits = c.run_of_digits();
        if digits.is_empty() {
            return Err(FORM);
        }
        fraction_zero = digits.bytes().all(|b| b == b'0');
        // Beyond nanoseconds the digits cannot change a comparison here.
        for b in digits.bytes().chain(std::iter::repeat(b'0')).take(9) {
            nanos = nanos * 10 + i32::from(b - b'0');
        }
    }
    // "24:00:00" is the first instant of the next day, and the only hour 24.
    if hour == 24 && !(minute == 0 && second == 0 && fraction_zero) {
        return Err(FORM);
    }
    let offset_seconds: i32 = if c.eat(b'Z') {
        0
    } else {
        let sign = if c.eat(b'+') {
            1
        } else if c.eat(b'-') {
            -1
        } else {
            return Err(FORM);
        };
        let oh = c.two_digits().ok_or(FORM)?;
        let om = c.expect(b':').and_then(|()| c.two_digits()).ok_or(FORM)?;
        if !((oh <= 13 && om <= 59) || (oh == 14 && om == 0)) {
            return Err("the offset is outside -14:00..+14:00");
        }
        sign * (i32::from(oh) * 3600 + i32::from(om) * 60)
    };
    if !c.done() {
        return Err(FORM);
    }
    let date = jiff::civil::Date::new(year, month, day).map_err(|_| "that date does not exist")?;
    let (date, hour) = if hour == 24 { (date.tomorrow().map_err(|_| "the year is outside -9999..9999")?, 0) } else { (date, hour) };
    let time = jiff::civil::Time::new(hour, minute, second, nanos).map_err(|_| FORM)?;
    let offset = jiff::tz::Offset::from_seconds(offset_seconds).map_err(|_| "the offset is outside -14:00..+14:00")?;
    offset.to_timestamp(date.to_datetime(time)).map_err(|_| "the year is outside -9999..9999")
}

/// A position in an ASCII string being parsed.
struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }

    fn run_of_digits(&mut self) -> &str {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        self.s.get(start..self.at).unwrap_or_default()
    }

    fn two_digits(&mut self) -> Option<i8> {
        let d = self.s.get(self.at..self.at + 2).filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?;
        self.at += 2;
        d.parse().ok()
    }

    fn done(&self) -> bool {
        self.at == self.s.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn date_time_stamps_follow_xml_schema() {
        for (input, want) in [
            ("2010-01-01T19:23:24Z", "2010-01-01T19:23:24Z"),
            ("2010-01-01T19:23:24.5Z", "2010-01-01T19:23:24.5Z"),
            ("2010-01-01T19:23:24.123456789123Z", "2010-01-01T19:23:24.123456789Z"),
            ("2010-01-01T19:23:24+01:00", "2010-01-01T18:23:24Z"),
            ("2010-01-01T19:23:24-08:00", "2010-01-02T03:23:24Z"),
            ("2010-01-01T19:23:24+14:00", "2010-01-01T05:23:24Z"),
            ("2010-01-01T19:23:24-00:00", "2010-01-01T19:23:24Z"),
            ("2010-12-31T24:00:00Z", "2011-01-01T00:00:00Z"),
            ("2010-12-31T24:00:00.000Z", "2011-01-01T00:00:00Z"),
            ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"),
        ] {
            assert_eq!(parse_date_time_stamp(input), Ok(ts(want)), "{input}");
        }
        for bad in [
            "Sat 25 Feb 2023 07:16:31 PM CST",
            "2010-01-01T19:23:24",
            "2010-01-01 19:23:24Z",
            "2010-01-01t19:23:24z",
            "2010-01-01T19:23Z",
            "20100101T192324Z",
            "2010-1-01T19:23:24Z",
            "02010-01-01T19:23:24Z",
            "210-01-01T19:23:24Z",
            "2010-13-01T19:23:24Z",
            "2010-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2010-01-32T00:00:00Z",
            "2010-01-01T25:00:00Z",
            "2010-01-01T24:00:01Z",
            "2010-01-01T24:00:00.1Z",
            "2010-01-01T19:60:00Z",
            "2010-01-01T19:23:60Z",
            "2010-01-01T19:23:24.Z",
            "2010-01-01T19:23:24+14:01",
            "2010-01-01T19:23:24+15:00",
            "2010-01-01T19:23:24+0100",
            "2010-01-01T19:23:24+01",
            "2010-01-01T19:23:24Z ",
            "2010-01-01T19:23:24ZZ",
            "2010-01-01T19:23:24+01:00[Europe/Paris]",
            "10000-01-01T00:00:00Z",
            "",
            "-",
            "２０１０-01-01T19:23:24Z",
        ] {
            assert!(parse_date_time_stamp(bad).is_err(), "{bad:?} was accepted");
        }
    }

    fn base() -> Map<String, Value> {
        json!({
            "@context": [VC_V2, "https://www.w3.org/ns/credentials/examples/v2"],
            "id": "urn:uuid:3978344f-8596-4c3a-a978-8fcaba3903c5",
            "type": ["VerifiableCredential", "ExampleDegreeCredential"],
            "issuer": {"id": "did:web:example.com", "name": "Example University"},
            "name": [{"@value": "Degree", "@language": "en"}, {"@value": "شهادة", "@language": "ar", "@direction": "rtl"}],
            "description": "A degree",
            "validFrom": "2010-01-01T00:00:00Z",
            "validUntil": "2030-01-01T00:00:00+01:00",
            "credentialSubject": [{"id": "did:example:1", "degree": "BSc"}, {"name": "Jayden Doe"}],
            "credentialStatus": [
                {"id": "https://x.example/status/1#1", "type": "BitstringStatusListEntry"},
                {"id": "https://x.example/status/1#2", "type": "BitstringStatusListEntry"}
            ],
            "credentialSchema": {"id": "https://example.org/examples/degree.json", "type": "JsonSchema"},
            "termsOfUse": [{"type": "ExampleTermsPolicy"}],
            "evidence": {"id": "https://x.example/evidence/1", "type": ["DocumentVerification"]},
            "refreshService": {"type": "VerifiableCredentialRefreshService2021", "url": "https://x.example/refresh"},
            "relatedResource": [
                {"id": "https://www.w3.org/ns/credentials/v2", "digestMultibase": "uEres1usWcWCmW7uolIW2uA0CjQ8iRV14eGaZStJL73Vz"},
                {"id": "https://x.example/a.png", "digestSRI": "sha384-abc", "mediaType": "image/png"}
            ]
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    #[test]
    fn a_conformant_credential_passes() {
        assert_eq!(check_credential(&base()), Ok(()));
        let (from, until) = validity_period(&base()).unwrap();
        assert_eq!((from, until), (Some(ts("2010-01-01T00:00:00Z")), Some(ts("2029-12-31T23:00:00Z"))));
    }

    /// Every class of forbidden credential the issue route must refuse, each with the
    /// section it breaks.
    #[test]
    fn each_forbidden_class_names_its_section() {
        type Edit = fn(&mut Map<String, Value>);
        let cases: Vec<(&str, &str, Edit)> = vec![
            ("null id", section::IDENTIFIERS, |d| drop(d.insert("id".into(), Value::Null))),
            ("array id", section::IDENTIFIERS, |d| drop(d.insert("id".into(), json!(["urn:uuid:1", "urn:uuid:2"])))),
            ("plain string id", section::IDENTIFIERS, |d| drop(d.insert("id".into(), json!("3732")))),
            ("id with a space", section::IDENTIFIERS, |d| drop(d.insert("id".into(), json!("urn:uuid: 1")))),
            ("no context", section::CONTEXTS, |d| drop(d.remove("@context"))),
            ("a context entry that is a number", section::CONTEXTS, |d| drop(d.insert("@context".into(), json!([VC_V2, 5])))),
            ("no VerifiableCredential type", section::TYPES, |d| drop(d.insert("type".into(), json!(["ExampleDegreeCredential"])))),
            ("a type that is not a string", section::TYPES, |d| drop(d.insert("type".into(), json!(["VerifiableCredential", 1])))),
            ("status without type", section::STATUS, |d| drop(d.insert("credentialStatus".into(), json!({"id": "https://x.example/s#1"})))),
            ("status with a non-URL id", section::IDENTIFIERS, |d| {
                drop(d.insert("credentialStatus".into(), json!({"id": "s1", "type": "BitstringStatusListEntry"})))
            }),
            ("two status entries with one id", section::STATUS, |d| {
                let e = json!({"id": "https://x.example/s#1", "type": "BitstringStatusListEntry"});
                drop(d.insert("credentialStatus".into(), json!([e, e])))
            }),
            ("status that is a string", section::STATUS, |d| drop(d.insert("credentialStatus".into(), json!("https://x.example/s#1")))),
            ("empty status array", section::STATUS, |d| drop(d.insert("credentialStatus".into(), json!([])))),
            ("terms of use without type", section::TERMS, |d| drop(d.insert("termsOfUse".into(), json!({"id": "https://x.example/t"})))),
            ("evidence without type", section::EVIDENCE, |d| drop(d.insert("evidence".into(), json!([{"id": "https://x.example/e"}])))),
            ("refresh service without type", section::REFRESH, |d| {
                drop(d.insert("refreshService".into(), json!({"url": "https://x.example/r"})))
            }),
            ("schema without type", section::SCHEMAS, |d| {
                drop(d.insert("credentialSchema".into(), json!({"id": "https://x.example/s.json"})))
            }),
            ("schema without id", section::SCHEMAS, |d| drop(d.insert("credentialSchema".into(), json!({"type": "JsonSchema"})))),
            ("schema with a non-URL id", section::IDENTIFIERS, |d| {
                drop(d.insert("credentialSchema".into(), json!({"id": "schema", "type": "JsonSchema"})))
            }),
            ("name that is a number", section::NAMES, |d| drop(d.insert("name".into(), json!(5)))),
            ("description that is an object without @value", section::NAMES, |d| {
                drop(d.insert("description".into(), json!({"@language": "en"})))
            }),
            ("name with an extra key", section::NAMES, |d| {
                drop(d.insert("name".into(), json!({"@value": "x", "@language": "en", "extra": 1})))
            }),
            ("name with a bad direction", section::NAMES, |d| drop(d.insert("name".into(), json!({"@value": "x", "@direction": "up"})))),
            ("name with a bad language tag", section::NAMES, |d| {
                drop(d.insert("name".into(), json!({"@value": "x", "@language": "en_US!"})))
            }),
            ("names as plain strings in an array", section::NAMES, |d| drop(d.insert("name".into(), json!(["a", "b"])))),
            ("issuer name that is an array of numbers", section::NAMES, |d| {
                drop(d.insert("issuer".into(), json!({"id": "did:web:example.com", "name": [1]})))
            }),
            ("issuer description that is null", section::NAMES, |d| {
                drop(d.insert("issuer".into(), json!({"id": "did:web:example.com", "description": null})))
            }),
            ("issuer that is not a URL", section::ISSUER, |d| drop(d.insert("issuer".into(), json!("Example University")))),
            ("issuer object without id", section::ISSUER, |d| drop(d.insert("issuer".into(), json!({"name": "x"})))),
            ("no issuer", section::ISSUER, |d| drop(d.remove("issuer"))),
            ("empty subject", section::SUBJECT, |d| drop(d.insert("credentialSubject".into(), json!({})))),
            ("an empty subject among others", section::SUBJECT, |d| {
                drop(d.insert("credentialSubject".into(), json!([{"id": "did:example:1"}, {}])))
            }),
            ("empty subject array", section::SUBJECT, |d| drop(d.insert("credentialSubject".into(), json!([])))),
            ("subject that is a string", section::SUBJECT, |d| drop(d.insert("credentialSubject".into(), json!("did:example:1")))),
            ("no subject", section::SUBJECT, |d| drop(d.remove("credentialSubject"))),
            ("subject with an array id", section::IDENTIFIERS, |d| {
                drop(d.insert("credentialSubject".into(), json!({"id": ["did:example:1", "did:example:2"]})))
            }),
            ("related resource that is a string", section::RELATED, |d| {
                drop(d.insert("relatedResource".into(), json!(["https://x.example/a"])))
            }),
            ("related resource without id", section::RELATED, |d| {
                drop(d.insert("relatedResource".into(), json!([{"digestMultibase": "uabc"}])))
            }),
            ("related resources with one id", section::RELATED, |d| {
                let r = json!({"id": "https://x.example/a", "digestMultibase": "uabc"});
                drop(d.insert("relatedResource".into(), json!([r, r])))
            }),
            ("related resource without digest", section::RELATED, |d| {
                drop(d.insert("relatedResource".into(), json!([{"id": "https://x.example/a", "mediaType": "image/png"}])))
            }),
            ("related resource with a base58 digest", section::RELATED, |d| {
                drop(d.insert("relatedResource".into(), json!([{"id": "https://x.example/a", "digestMultibase": "zabc"}])))
            }),
            ("validFrom in another format", section::VALIDITY, |d| {
                drop(d.insert("validFrom".into(), json!("Sat 25 Feb 2023 07:16:31 PM CST")))
            }),
            ("validUntil without offset", section::VALIDITY, |d| drop(d.insert("validUntil".into(), json!("2030-01-01T00:00:00")))),
            ("validFrom a number", section::VALIDITY, |d| drop(d.insert("validFrom".into(), json!(1_700_000_000)))),
            ("validFrom after validUntil", section::VALIDITY, |d| drop(d.insert("validFrom".into(), json!("2031-01-01T00:00:00Z")))),
        ];
        for (what, sec, edit) in cases {
            let mut d = base();
            edit(&mut d);
            let v = check_credential(&d).expect_err(what);
            assert_eq!(v.section, sec, "{what}: {v}");
            assert!(v.to_string().contains(&format!("VC Data Model 2.0 §{sec}")), "{what}: {v}");
        }
    }

    #[test]
    fn urls_need_a_scheme() {
        for ok in ["urn:uuid:0c07c1ce-57cb-41af-bef2-1b932b986873", "did:example:1234abcd", "https://id.example/things#123", "a+b.c-d:x"] {
            assert!(is_url(ok), "{ok}");
        }
        for bad in ["", "3732", ":x", "1http://x", "http:", "https://x y", "ht tp://x", "http\u{7}://x"] {
            assert!(!is_url(bad), "{bad}");
        }
    }
}
