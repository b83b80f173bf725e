//! Tests of the access log formats: every field, escaping, and lines an independent JSON
//! parser accepts.
//! Never part of the build outside `cargo test`.

use super::*;
use crate::http1::date::civil_from_days;

fn at(seconds: i64, micros: u32) -> SystemTime {
    let offset = Duration::new(seconds.unsigned_abs(), 0);
    let whole = if seconds >= 0 { UNIX_EPOCH + offset } else { UNIX_EPOCH - offset };
    whole + Duration::from_micros(u64::from(micros))
}

fn record() -> AccessRecord<'static> {
    AccessRecord {
        client: "192.0.2.7".parse().unwrap(),
        time: at(971_186_136, 250_000),
        method: "GET",
        target: "/x",
        version: "HTTP/1.1",
        status: 200,
        bytes: Some(2326),
        referer: Some(b"https://a.example/"),
        user_agent: Some(b"curl/8.5.0"),
        duration: Duration::from_micros(1234),
        by_server: false,
    }
}

fn line(format: AccessLogFormat, record: &AccessRecord<'_>) -> String {
    let mut out = String::new();
    format_line(format, record, &mut out);
    out
}

#[test]
fn format_names() {
    for (text, format) in [
        ("off", AccessLogFormat::Off),
        ("Common", AccessLogFormat::Common),
        ("COMBINED", AccessLogFormat::Combined),
        ("json", AccessLogFormat::Json),
        ("JsOn", AccessLogFormat::Json),
    ] {
        assert_eq!(text.parse::<AccessLogFormat>(), Ok(format), "{text}");
        assert_eq!(format.as_str().parse::<AccessLogFormat>(), Ok(format));
        assert_eq!(format.to_string(), format.as_str());
    }
    for bad in ["", "clf", " json", "json ", "none"] {
        let error = bad.parse::<AccessLogFormat>().unwrap_err();
        assert!(error.contains(&format!("{bad:?}")), "{error}");
        assert!(error.ends_with("off, common, combined, json"), "{error}");
    }
}

#[test]
fn common_and_combined_exact_lines() {
    let r = record();
    let cases: [(AccessLogFormat, &AccessRecord<'_>, &str); 3] = [
        (AccessLogFormat::Common, &r, r#"192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] "GET /x HTTP/1.1" 200 2326 1234"#),
        (
            AccessLogFormat::Combined,
            &r,
            r#"192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] "GET /x HTTP/1.1" 200 2326 "https://a.example/" "curl/8.5.0" 1234"#,
        ),
        (AccessLogFormat::Off, &r, ""),
    ];
    for (format, record, expected) in cases {
        assert_eq!(line(format, record), expected, "{format}");
    }
}

#[test]
fn missing_values_are_dashes() {
    /// Bytes, Referer, User-Agent; then the expected `%b` and the quoted fields.
    type Case = (Option<u64>, Option<&'static [u8]>, Option<&'static [u8]>, &'static str, &'static str);
    let cases: [Case; 4] = [
        (None, None, None, "-", r#""-" "-""#),
        (Some(0), Some(b""), None, "-", r#""-" "-""#),
        (Some(1), None, Some(b"ua"), "1", r#""-" "ua""#),
        (Some(u64::MAX), Some(b"r"), Some(b""), "18446744073709551615", r#""r" "-""#),
    ];
    for (bytes, referer, user_agent, size, quoted) in cases {
        let r = AccessRecord {
            client: "::1".parse().unwrap(),
            time: UNIX_EPOCH,
            status: 304,
            bytes,
            referer,
            user_agent,
            duration: Duration::ZERO,
            ..record()
        };
        let common = format!(r#"::1 - - [01/Jan/1970:00:00:00 +0000] "GET /x HTTP/1.1" 304 {size}"#);
        assert_eq!(line(AccessLogFormat::Common, &r), format!("{common} 0"));
        assert_eq!(line(AccessLogFormat::Combined, &r), format!("{common} {quoted} 0"));
    }
}

#[test]
fn apache_escaping() {
    let r = AccessRecord {
        method: "G\"T",
        target: "/a b\\c\u{1}\u{7f}\u{e9}",
        version: "HTTP/1.0",
        referer: Some(b"\"quoted\" \\ \t\r\n"),
        user_agent: Some(b"\x80\xff\xc3\xa9 ok"),
        ..record()
    };
    assert_eq!(
        line(AccessLogFormat::Combined, &r),
        concat!(
            r#"192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] "G\"T /a b\\c\x01\x7f\xc3\xa9 HTTP/1.0" 200 2326 "#,
            r#""\"quoted\" \\ \x09\x0d\x0a" "\x80\xff\xc3\xa9 ok" 1234"#
        )
    );
}

#[test]
fn appends_without_newline() {
    let mut out = String::from("prefix|");
    format_line(AccessLogFormat::Common, &record(), &mut out);
    format_line(AccessLogFormat::Json, &record(), &mut out);
    assert!(out.starts_with("prefix|192.0.2.7 - - "));
    assert!(!out.contains('\n'));
    assert!(out.ends_with("\"duration_us\":1234}"));
}

#[test]
fn json_exact_line() {
    let r = AccessRecord {
        time: at(1_795_629_864, 144_123),
        client: "2001:db8::1".parse().unwrap(),
        bytes: None,
        referer: None,
        duration: Duration::from_nanos(1_234_999),
        ..record()
    };
    assert_eq!(
        line(AccessLogFormat::Json, &r),
        concat!(
            r#"{"time":"2026-11-25T18:04:24.144123Z","client":"2001:db8::1","method":"GET","target":"/x","#,
            r#""version":"HTTP/1.1","status":200,"bytes":null,"referer":null,"user_agent":"curl/8.5.0","#,
            r#""duration_us":1234}"#
        )
    );
    let zero = AccessRecord { bytes: Some(0), ..record() };
    assert!(line(AccessLogFormat::Json, &zero).contains(r#","bytes":0,"#));
}

#[test]
fn json_escaping_round_trips() {
    let target = "/q?a=\"1\"&b=\\2\t3\n4\r\u{0}\u{1f}\u{7f}\u{85}\u{e9}\u{1F600}\u{2028}";
    let cases: [(&[u8], &str); 6] = [
        (b"plain", "plain"),
        (b"\"\\", "\"\\"),
        (b"\t\n\r\x00\x1b\x7f", "\t\n\r\u{0}\u{1b}\u{7f}"),
        // Every byte from 0x80 up is invalid UTF-8 on its own: each becomes U+0080..U+00FF.
        (b"\x80\x9b\xa0\xe9\xff", "\u{80}\u{9b}\u{a0}\u{e9}\u{ff}"),
        // Valid UTF-8 is kept; the invalid bytes around it are Latin-1.
        (b"caf\xc3\xa9 \xc3 \xf0\x9f\x98\x80 \xed\xa0\x80", "caf\u{e9} \u{c3} \u{1F600} \u{ed}\u{a0}\u{80}"),
        (b"", ""),
    ];
    for (user_agent, expected) in cases {
        let referer: Vec<u8> = (0..=255).collect();
        let r = AccessRecord { target, user_agent: Some(user_agent), referer: Some(&referer), ..record() };
        let text = line(AccessLogFormat::Json, &r);
        assert!(!text.contains(|c: char| c.is_control()), "raw control character in {text:?}");
        assert!(!text.contains(['\u{2028}', '\u{2029}']), "raw line separator in {text:?}");
        let value = parse_json(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        let Json::Object(fields) = value else { panic!("not an object: {text}") };
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "time",
                "client",
                "method",
                "target",
                "version",
                "status",
                "bytes",
                "referer",
                "user_agent",
                "duration_us"
            ]
        );
        let get = |key: &str| &fields.iter().find(|(k, _)| k == key).unwrap().1;
        assert_eq!(get("target"), &Json::String(target.to_owned()));
        assert_eq!(get("user_agent"), &Json::String(expected.to_owned()));
        let latin1: String = (0..=255u8).map(char::from).collect();
        assert_eq!(get("referer"), &Json::String(latin1));
        assert_eq!(get("status"), &Json::Number("200".to_owned()));
        assert_eq!(get("bytes"), &Json::Number("2326".to_owned()));
        assert_eq!(get("duration_us"), &Json::Number("1234".to_owned()));
        assert_eq!(get("time"), &Json::String("2000-10-10T13:55:36.250000Z".to_owned()));
    }
}

#[test]
fn calendar() {
    let cases: [(i64, u32, &str); 9] = [
        (0, 0, "1970-01-01T00:00:00.000000Z"),
        (971_186_136, 0, "2000-10-10T13:55:36.000000Z"),
        (951_782_400, 1, "2000-02-29T00:00:00.000001Z"),
        (1_709_251_199, 999_999, "2024-02-29T23:59:59.999999Z"),
        (4_107_542_400, 0, "2100-03-01T00:00:00.000000Z"),
        (253_402_300_799, 0, "9999-12-31T23:59:59.000000Z"),
        (-1, 999_999, "1969-12-31T23:59:59.999999Z"),
        (-14_182_940, 0, "1969-07-20T20:17:40.000000Z"),
        (-62_135_596_800, 0, "0001-01-01T00:00:00.000000Z"),
    ];
    for (seconds, micros, expected) in cases {
        let r = AccessRecord { time: at(seconds, micros), ..record() };
        let text = line(AccessLogFormat::Json, &r);
        assert!(text.starts_with(&format!("{{\"time\":\"{expected}\",")), "{seconds}: {text}");
    }
    // Every day of four centuries, against a day-by-day count.
    let (mut year, mut month, mut day) = (1970_i64, 1_u32, 1_u32);
    for days in 0..146_097 {
        assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let length = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        day += 1;
        if day > length {
            day = 1;
            month += 1;
            if month > 12 {
                month = 1;
                year += 1;
            }
        }
    }
}

#[test]
fn extreme_times_do_not_panic() {
    let far = UNIX_EPOCH.checked_add(Duration::from_secs(u64::MAX / 4)).unwrap_or(UNIX_EPOCH);
    let before = UNIX_EPOCH.checked_sub(Duration::from_secs(u64::MAX / 4)).unwrap_or(UNIX_EPOCH);
    for time in [far, before] {
        let r = AccessRecord { time, duration: Duration::MAX, ..record() };
        for format in AccessLogFormat::ALL {
            let _ = line(format, &r);
        }
        let text = line(AccessLogFormat::Json, &r);
        parse_json(&text).unwrap();
    }
    for days in [i64::MIN, i64::MIN + 1, -1, i64::MAX - 1, i64::MAX] {
        let (_, month, day) = civil_from_days(days);
        assert!((1..=12).contains(&month) && (1..=31).contains(&day), "{days}");
    }
}

// ----- A small JSON parser (RFC 8259), to check the lines are well-formed. -----

#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    /// The number's text, validated against the grammar.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

fn parse_json(text: &str) -> Result<Json, String> {
    let mut parser = Parser { text, pos: 0 };
    let value = parser.value()?;
    parser.whitespace();
    if parser.pos != text.len() {
        return Err(format!("trailing input at {}", parser.pos));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", char::from(b), self.pos))
        }
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.whitespace();
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Json::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => {
                for (word, value) in [("null", Json::Null), ("true", Json::Bool(true)), ("false", Json::Bool(false))] {
                    if self.text[self.pos..].starts_with(word) {
                        self.pos += word.len();
                        return Ok(value);
                    }
                }
                Err(format!("unexpected input at {}", self.pos))
            }
        }
    }

    fn object(&mut self) -> Result<Json, String> {
        self.expect(b'{')?;
        let mut fields = Vec::new();
        self.whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(fields));
        }
        loop {
            self.whitespace();
            let key = self.string()?;
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(format!("duplicate key {key:?}"));
            }
            self.whitespace();
            self.expect(b':')?;
            fields.push((key, self.value()?));
            self.whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(fields));
                }
                _ => return Err(format!("expected , or }} at {}", self.pos)),
            }
        }
    }

    fn array(&mut self) -> Result<Json, String> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(format!("expected , or ] at {}", self.pos)),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(format!("bad number at {start}")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(format!("bad fraction at {start}"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(format!("bad exponent at {start}"));
            }
        }
        Ok(Json::Number(self.text[start..self.pos].to_owned()))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.text.get(self.pos..self.pos + 4).ok_or("short \\u escape")?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("bad \\u escape at {}", self.pos));
        }
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|e| e.to_string())
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let c = self.text[self.pos..].chars().next().ok_or("unterminated string")?;
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\u{0}'..='\u{1f}' => return Err(format!("raw control character {c:?} in a string")),
                '\\' => {
                    let escape = self.peek().ok_or("unterminated escape")?;
                    self.pos += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let unit = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&unit) {
                                self.expect(b'\\')?;
                                self.expect(b'u')?;
                                let low = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&low) {
                                    return Err("unpaired surrogate".to_owned());
                                }
                                0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                            } else {
                                unit
                            };
                            out.push(char::from_u32(code).ok_or("lone surrogate")?);
                        }
                        _ => return Err(format!("bad escape at {}", self.pos)),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

#[test]
fn the_test_parser_rejects_bad_json() {
    let bad = [
        "",
        "{",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "\"\u{1}\"",
        "\"\\x41\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "01",
        "1.",
        "-",
        "{\"a\":1,\"a\":2}",
        "[1 2]",
        "nul",
        "\"abc",
        "{} x",
    ];
    for text in bad {
        assert!(parse_json(text).is_err(), "{text:?}");
    }
    assert_eq!(
        parse_json(r#" {"a": [1, -2.5e+3, true, false, null], "b": "\u00e9\ud83d\ude00\n\/"} "#),
        Ok(Json::Object(vec![
            (
                "a".to_owned(),
                Json::Array(vec![
                    Json::Number("1".to_owned()),
                    Json::Number("-2.5e+3".to_owned()),
                    Json::Bool(true),
                    Json::Bool(false),
                    Json::Null,
                ])
            ),
            ("b".to_owned(), Json::String("\u{e9}\u{1F600}\n/".to_owned())),
        ]))
    );
}

#[test]
fn lines_of_requests_the_server_answered_are_marked() {
    let r = AccessRecord { by_server: true, status: 413, bytes: Some(28), referer: None, user_agent: None, ..record() };
    assert_eq!(
        line(AccessLogFormat::Common, &r),
        r#"192.0.2.7 maitred - [10/Oct/2000:13:55:36 +0000] "GET /x HTTP/1.1" 413 28 1234"#
    );
    assert_eq!(
        line(AccessLogFormat::Combined, &r),
        r#"192.0.2.7 maitred - [10/Oct/2000:13:55:36 +0000] "GET /x HTTP/1.1" 413 28 "-" "-" 1234"#
    );
    assert!(line(AccessLogFormat::Json, &r).ends_with(r#","duration_us":1234,"answered_by":"server"}"#));
    // No complete request line: "-" (as Apache logs it), and nulls in JSON.
    let r = AccessRecord { method: "", target: "", version: "", ..r };
    assert_eq!(
        line(AccessLogFormat::Common, &r),
        r#"192.0.2.7 maitred - [10/Oct/2000:13:55:36 +0000] "-" 413 28 1234"#
    );
    let json = line(AccessLogFormat::Json, &r);
    assert!(json.contains(r#","method":null,"target":null,"version":null,"status":413,"#), "{json}");
    assert!(parse_json(&json).is_ok(), "{json}");
}
