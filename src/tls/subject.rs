//! A certificate's subject as an RFC 4514 string (`CN=client,O=Example,C=DE`), the form of
//! `SSL_CLIENT_S_DN` given to applications. Owns the formatting. Never verifies a certificate
//! (rustls did, before the subject is read).
//!
//! RFC 4514: the RDNs from last to first, `,` between them and `+` inside a multi-valued one;
//! the types it names (CN, L, ST, O, OU, C, STREET, DC, UID) by name, any other by its dotted
//! OID with the value as `#` and the hex of its DER encoding; string values escaped (`\,`,
//! `\+`, `\"`, `\\`, `\<`, `\>`, `\;`, a leading `#` or space, a trailing space, NUL as `\00`).

use x509_parser::der_parser::asn1_rs::ToDer;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::AttributeTypeAndValue;

/// The short names RFC 4514 section 3 gives, by OID.
const NAMES: [(&str, &str); 9] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.6", "C"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// The subject of the DER certificate `der` in RFC 4514 form; `None` if it does not parse.
pub(crate) fn subject_rfc4514(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let rdns: Vec<_> = cert.subject().iter_rdn().collect();
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            push_attribute(&mut out, attr);
        }
    }
    Some(out)
}

fn push_attribute(out: &mut String, attr: &AttributeTypeAndValue<'_>) {
    let oid = attr.attr_type().to_id_string();
    let name = NAMES.iter().find(|(id, _)| *id == oid).map(|(_, name)| *name);
    match (name, attr.as_str()) {
        (Some(name), Ok(value)) => {
            out.push_str(name);
            out.push('=');
            push_escaped(out, value);
        }
        _ => {
            out.push_str(name.unwrap_or(&oid));
            out.push_str("=#");
            let der = attr.attr_value().to_der_vec().unwrap_or_default();
            for byte in der {
                out.push_str(&format!("{byte:02X}"));
            }
        }
    }
}

fn push_escaped(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::push_escaped;

    #[test]
    fn values_are_escaped_as_rfc_4514_says() {
        for (raw, escaped) in [
            ("plain", "plain"),
            ("a,b+c", "a\\,b\\+c"),
            (" lead", "\\ lead"),
            ("trail ", "trail\\ "),
            ("#hash", "\\#hash"),
            ("in#side", "in#side"),
            ("q\"<>;\\", "q\\\"\\<\\>\\;\\\\"),
            ("nul\0", "nul\\00"),
        ] {
            let mut out = String::new();
            push_escaped(&mut out, raw);
            assert_eq!(out, escaped, "{raw:?}");
        }
    }
}
