//! The batch driver: split input into rows, parse with simd-json, validate each row, append
//! the valid ones to columns and keep per-row errors (with the raw bytes of refused rows).
//!
//! Input forms: a JSON array of objects (up to 8 MiB parsed as one document, the fastest way;
//! larger ones, or any that does not parse, have their elements located by a fast scan and
//! parsed in chunks of rows, a chunk that does not parse being retried row by row, so a
//! syntax error stays inside its row), NDJSON (one object per non-blank line), or a list of separate rows.

use std::ops::Range;

use arrow_array::RecordBatch;
use simd_json::{Buffers, Node, Tape};

use super::columns::{finish_game_states, GameStateCols, SampleCols};
use super::validate::{game_state, span, training_sample, Issue, Path};

/// Which contract a batch is validated against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    GameState,
    TrainingSample,
}

/// One refused row: its index in the input, the broken rules, and its raw bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub row: u32,
    pub issues: Vec<Issue>,
    pub raw: Vec<u8>,
}

/// The result of decoding a batch: the valid rows as Arrow, and the refused ones.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub batch: RecordBatch,
    /// Input row index of each batch row (batch row k came from input row `rows[k]`).
    pub rows: Vec<u32>,
    pub errors: Vec<RowError>,
    /// Rows seen in the input (valid + refused).
    pub total: u32,
    /// CRC-32C of the input bytes (rows chained in order for a list of rows): the batch's
    /// lineage id, to check the stored or forwarded original against.
    pub input_crc32c: u32,
}

// One Sink exists per batch, so the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Cols {
    Gs(GameStateCols),
    Ts(SampleCols),
}

struct Sink {
    cols: Cols,
    rows: Vec<u32>,
    errors: Vec<RowError>,
    issues: Vec<Issue>,
}

impl Sink {
    fn new(contract: Contract, n: usize) -> Self {
        Self {
            cols: match contract {
                Contract::GameState => Cols::Gs(GameStateCols::with_capacity(n)),
                Contract::TrainingSample => Cols::Ts(SampleCols::with_capacity(n)),
            },
            rows: Vec::with_capacity(n),
            errors: Vec::new(),
            issues: Vec::new(),
        }
    }

    /// Validate the value at `nodes[at]` as input row `row`; true when it was accepted.
    fn row(&mut self, nodes: &[Node<'_>], at: usize, row: u32) -> bool {
        self.issues.clear();
        let ok = match &mut self.cols {
            Cols::Gs(c) => match game_state(nodes, at, &Path::ROOT, &mut self.issues) {
                Some(r) => {
                    c.push(&r);
                    true
                }
                None => false,
            },
            Cols::Ts(c) => match training_sample(nodes, at, &mut self.issues) {
                Some(r) => {
                    c.push(&r);
                    true
                }
                None => false,
            },
        };
        if ok {
            self.rows.push(row);
        }
        ok
    }

    fn reject(&mut self, row: u32, raw: &[u8]) {
        self.errors.push(RowError {
            row,
            issues: std::mem::take(&mut self.issues),
            raw: raw.to_vec(),
        });
    }

    fn malformed(&mut self, row: u32, raw: &[u8], code: &'static str, message: String) {
        self.issues.clear();
        self.issues.push(Issue {
            path: String::new(),
            code,
            message,
        });
        self.reject(row, raw);
    }

    fn finish(self, total: u32) -> Decoded {
        let batch = match self.cols {
            Cols::Gs(c) => finish_game_states(c),
            Cols::Ts(c) => c.finish(),
        };
        Decoded {
            batch,
            rows: self.rows,
            errors: self.errors,
            total,
            input_crc32c: 0,
        }
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn trim(data: &[u8], mut r: Range<usize>) -> Range<usize> {
    while r.start < r.end && is_ws(data[r.start]) {
        r.start += 1;
    }
    while r.end > r.start && is_ws(data[r.end - 1]) {
        r.end -= 1;
    }
    r
}

/// Bytes that can change the splitter's state outside a string.
const STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'{' as usize] = true;
    t[b'}' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t[b',' as usize] = true;
    t
};

/// Byte ranges of the elements of a top-level JSON array, found by tracking string and
/// nesting state (no parsing). A truncated tail becomes one last element, which then fails
/// to parse inside its own row. Tight skip loops keep this near memory speed.
pub fn split_array(data: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let Some(open) = data.iter().position(|&b| !is_ws(b)) else {
        return out;
    };
    let n = data.len();
    let mut i = open + 1;
    let mut start = i;
    let mut depth = 0usize;
    while i < n {
        while i < n && !STRUCTURAL[usize::from(data[i])] {
            i += 1;
        }
        if i >= n {
            break;
        }
        match data[i] {
            b'"' => {
                i += 1;
                loop {
                    while i < n && data[i] != b'"' && data[i] != b'\\' {
                        i += 1;
                    }
                    if i >= n {
                        break;
                    }
                    if data[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    break; // closing quote
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth > 0 => depth -= 1,
            b @ (b',' | b']') if depth == 0 => {
                let r = trim(data, start..i);
                if !r.is_empty() || b == b',' {
                    out.push(r);
                }
                if b == b']' {
                    return out;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let r = trim(data, start..n.min(data.len()));
    if !r.is_empty() {
        out.push(r);
    }
    out
}

/// Non-blank lines of NDJSON.
fn split_lines(data: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            let r = trim(data, start..i);
            if !r.is_empty() {
                out.push(r);
            }
            start = i + 1;
        }
    }
    let r = trim(data, start..data.len());
    if !r.is_empty() {
        out.push(r);
    }
    out
}

/// How many integer literals of one row `widen_big_negative` rewrites before giving up.
const MAX_WIDENED: usize = 16;

/// simd-json refuses a negative integer literal below `i64::MIN` whose magnitude still fits
/// in a u64 (`-9223372036854775809` ..= `-18446744073709551615`), even with big-int-as-float,
/// where JSON allows it and pydantic reads it as a float. When the parser stops at the end
/// of such a literal (`at`), this returns the row with `.0` after it, which it then parses as
/// the float it is; any other refused number gives `None` (the row stays malformed).
fn widen_big_negative(row: &[u8], at: usize) -> Option<Vec<u8>> {
    let at = at.min(row.len());
    let digits = row[..at]
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let start = at - digits;
    if digits < 19 || start == 0 || row[start - 1] != b'-' {
        return None;
    }
    let mut out = Vec::with_capacity(row.len() + 2);
    out.extend_from_slice(&row[..at]);
    out.extend_from_slice(b".0");
    out.extend_from_slice(&row[at..]);
    Some(out)
}

/// Parses JSON documents one at a time, reusing its buffers and tape between documents.
pub struct RowParser {
    buffers: Buffers,
    scratch: Vec<u8>,
    spare: Tape<'static>,
}

impl Default for RowParser {
    fn default() -> Self {
        Self {
            buffers: Buffers::default(),
            scratch: Vec::new(),
            spare: Tape::null().reset(),
        }
    }
}

impl RowParser {
    /// Parse one document and hand its tape to `f`; `Err(message)` when it is malformed.
    pub fn parse<R>(&mut self, raw: &[u8], f: impl FnOnce(&[Node<'_>]) -> R) -> Result<R, String> {
        let mut text = std::borrow::Cow::Borrowed(raw);
        let mut widened = 0;
        loop {
            self.scratch.clear();
            self.scratch.extend_from_slice(&text);
            let mut tape = std::mem::replace(&mut self.spare, Tape::null().reset()).reset();
            match simd_json::fill_tape(&mut self.scratch, &mut self.buffers, &mut tape) {
                Ok(()) => {
                    let out = f(&tape.0);
                    self.spare = tape.reset();
                    return Ok(out);
                }
                Err(e) => {
                    self.spare = tape.reset();
                    let wider = match e.error() {
                        simd_json::ErrorType::InvalidNumber if widened < MAX_WIDENED => {
                            widen_big_negative(&text, e.index())
                        }
                        _ => None,
                    };
                    text = std::borrow::Cow::Owned(
                        wider.ok_or_else(|| format!("malformed JSON: {e}"))?,
                    );
                    widened += 1;
                }
            }
        }
    }
}

/// Parse and validate rows one by one, reusing the parser's buffers and tape.
fn rows_one_by_one<'r, I: Iterator<Item = &'r [u8]>>(
    rows: I,
    first_row: u32,
    sink: &mut Sink,
) -> u32 {
    let mut parser = RowParser::default();
    let mut n = first_row;
    for raw in rows {
        match parser.parse(raw, |nodes| sink.row(nodes, 0, n)) {
            Ok(true) => {}
            Ok(false) => sink.reject(n, raw),
            Err(message) => sink.malformed(n, raw, "json_invalid", message),
        }
        n += 1;
    }
    n - first_row
}

/// Decode a JSON array or NDJSON batch against `contract`.
pub fn decode_json(data: &[u8], contract: Contract) -> Decoded {
    let first = data.iter().copied().find(|&b| !is_ws(b));
    if first != Some(b'[') {
        let lines = split_lines(data);
        let mut sink = Sink::new(contract, lines.len());
        let n = rows_one_by_one(lines.iter().map(|r| &data[r.clone()]), 0, &mut sink);
        return sink.finish(n);
    }
    if data.len() <= WHOLE_MAX {
        if let Some(d) = decode_whole_array(data, contract) {
            return d;
        }
    }
    let spans = split_array(data);
    let mut sink = Sink::new(contract, spans.len());
    decode_array_chunked(data, &spans, &mut sink);
    sink.finish(spans.len() as u32)
}

/// Parser buffers kept per thread between calls: a batch decode then reuses warm memory
/// instead of faulting in fresh pages for the input copy and the tape. Only inputs up to
/// `WHOLE_MAX` come this way, which bounds what a thread keeps.
struct Scratch {
    input: Vec<u8>,
    buffers: Buffers,
    tape: Tape<'static>,
}

/// Largest input parsed as one document. The tape of a whole document costs about 25 bytes
/// per JSON value (some 5x the input), so larger inputs go through bounded chunks instead,
/// whose peak memory stays near the size of the output.
const WHOLE_MAX: usize = 8 << 20;

thread_local! {
    static SCRATCH: std::cell::RefCell<Option<Scratch>> = const { std::cell::RefCell::new(None) };
}

/// Fast path: the whole array parses as one document. `None` when it does not (or is not an
/// array), and the caller falls back to element-by-element parsing.
fn decode_whole_array(data: &[u8], contract: Contract) -> Option<Decoded> {
    let mut s = SCRATCH
        .with(|c| c.borrow_mut().take())
        .unwrap_or_else(|| Scratch {
            input: Vec::new(),
            buffers: Buffers::new(data.len()),
            tape: Tape(Vec::new()),
        });
    s.input.clear();
    s.input.extend_from_slice(data);
    let Scratch {
        input,
        buffers,
        tape,
    } = &mut s;
    let mut t = std::mem::replace(tape, Tape(Vec::new())).reset();
    let mut out = None;
    if simd_json::fill_tape(input, buffers, &mut t).is_ok() {
        if let Some(&Node::Array { len, .. }) = t.0.first() {
            let mut sink = Sink::new(contract, len);
            let mut spans: Option<Vec<Range<usize>>> = None;
            let mut at = 1;
            for row in 0..len {
                if !sink.row(&t.0, at, row as u32) {
                    // only refused rows need their bytes: split the input once, lazily
                    let sp = spans.get_or_insert_with(|| split_array(data));
                    let raw = sp.get(row).map_or(&[][..], |r| &data[r.clone()]);
                    sink.reject(row as u32, raw);
                }
                at += t.0.get(at).map_or(1, span);
            }
            out = Some(sink.finish(len as u32));
        }
    }
    *tape = t.reset();
    if s.input.capacity() <= WHOLE_MAX {
        SCRATCH.with(|c| *c.borrow_mut() = Some(s));
    }
    out
}

/// Rows per parsed chunk, and bytes per chunk: small enough that the tape (about 25 bytes
/// per JSON value) stays in cache and the decode's peak memory stays near its output size,
/// large enough that the parser's per-document setup is amortized.
const CHUNK_ROWS: usize = 256;
const CHUNK_BYTES: usize = 256 << 10;

/// Decode the elements of a JSON array `CHUNK_ROWS` at a time: each chunk (the bytes from
/// its first element to its last, commas included) is parsed as one array; a chunk that does
/// not parse is retried row by row, so a syntax error stays inside its own row.
fn decode_array_chunked(data: &[u8], spans: &[Range<usize>], sink: &mut Sink) {
    let mut buffers = Buffers::new(CHUNK_BYTES);
    let mut scratch: Vec<u8> = Vec::with_capacity(CHUNK_BYTES + 2);
    let mut spare: Tape<'static> = Tape(Vec::new());
    let mut row0 = 0;
    while row0 < spans.len() {
        let mut row1 = row0 + 1;
        while row1 < spans.len()
            && row1 - row0 < CHUNK_ROWS
            && spans[row1].end - spans[row0].start < CHUNK_BYTES
        {
            row1 += 1;
        }
        scratch.clear();
        scratch.push(b'[');
        scratch.extend_from_slice(&data[spans[row0].start..spans[row1 - 1].end]);
        scratch.push(b']');
        let mut tape = spare.reset();
        let parsed = simd_json::fill_tape(&mut scratch, &mut buffers, &mut tape).is_ok()
            && matches!(tape.0.first(), Some(Node::Array { len, .. }) if *len == row1 - row0);
        if parsed {
            let mut at = 1;
            for row in row0..row1 {
                if !sink.row(&tape.0, at, row as u32) {
                    sink.reject(row as u32, &data[spans[row].clone()]);
                }
                at += tape.0.get(at).map_or(1, span);
            }
        }
        spare = tape.reset();
        if !parsed {
            rows_one_by_one(
                spans[row0..row1].iter().map(|r| &data[r.clone()]),
                row0 as u32,
                sink,
            );
        }
        row0 = row1;
    }
}

/// Decode separate rows (one JSON document each) against `contract`.
pub fn decode_rows(rows: &[&[u8]], contract: Contract) -> Decoded {
    let mut sink = Sink::new(contract, rows.len());
    let n = rows_one_by_one(rows.iter().copied(), 0, &mut sink);
    sink.finish(n)
}

/// Decode rows already parsed into one tape (msgpack): `elements` are (tape index, raw bytes).
pub fn decode_tape(
    nodes: &[Node<'_>],
    elements: &[(usize, Range<usize>)],
    data: &[u8],
    contract: Contract,
) -> Decoded {
    let mut sink = Sink::new(contract, elements.len());
    for (row, (at, raw)) in elements.iter().enumerate() {
        if !sink.row(nodes, *at, row as u32) {
            sink.reject(row as u32, &data[raw.clone()]);
        }
    }
    sink.finish(elements.len() as u32)
}

/// Append a trailing error row (e.g. a msgpack stream that broke off).
pub fn with_trailing_error(
    mut d: Decoded,
    raw: &[u8],
    code: &'static str,
    message: String,
) -> Decoded {
    d.errors.push(RowError {
        row: d.total,
        issues: vec![Issue {
            path: String::new(),
            code,
            message,
        }],
        raw: raw.to_vec(),
    });
    d.total += 1;
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = r#"{"timestamp":"2024-05-01T12:00:00Z","champion":"Ahri","position":{"x":0.5,"y":0.5},"health":1,"mana":2,"cooldowns":{"q":0,"w":0,"e":0,"r":0,"d":0,"f":0},"inventory":["boots"],"vision_score":0,"gold_advantage":0}"#;

    #[test]
    fn split_array_respects_strings_and_nesting() {
        let data = br#"[ {"a":"],}"}, [1,[2]] ,3 ]"#;
        let spans: Vec<&[u8]> = split_array(data).into_iter().map(|r| &data[r]).collect();
        assert_eq!(spans, vec![&br#"{"a":"],}"}"#[..], b"[1,[2]]", b"3"]);
        assert!(split_array(b"[]").is_empty());
    }

    #[test]
    fn array_fast_path_and_fallback_agree() {
        let good = format!("[{ROW},{ROW}]");
        let d = decode_json(good.as_bytes(), Contract::GameState);
        assert_eq!((d.batch.num_rows(), d.total), (2, 2));
        let bad = format!("[{ROW},{{oops}},{ROW}]");
        let d = decode_json(bad.as_bytes(), Contract::GameState);
        assert_eq!(d.rows, vec![0, 2]);
        assert_eq!(d.errors[0].issues[0].code, "json_invalid");
        assert_eq!(d.errors[0].raw, b"{oops}");
    }

    #[test]
    fn chunked_path_agrees_with_the_whole_document_path() {
        let bad = ROW.replace(r#""health":1"#, r#""health":-1"#);
        let rows: Vec<String> = (0..600)
            .map(|i| match i {
                300 => bad.clone(),
                _ => ROW.to_owned(),
            })
            .collect();
        let data = format!("[{}]", rows.join(" , "));
        let whole = decode_json(data.as_bytes(), Contract::GameState);
        let spans = split_array(data.as_bytes());
        assert_eq!(spans.len(), 600);
        let mut sink = Sink::new(Contract::GameState, spans.len());
        decode_array_chunked(data.as_bytes(), &spans, &mut sink);
        let chunked = sink.finish(600);
        assert_eq!(chunked.rows, whole.rows);
        assert_eq!(chunked.errors, whole.errors);
        assert_eq!(chunked.batch, whole.batch);
        // a syntax error inside the second chunk costs only its own row
        let broken = data.replacen(&bad, "{nope}", 1);
        let spans = split_array(broken.as_bytes());
        let mut sink = Sink::new(Contract::GameState, spans.len());
        decode_array_chunked(broken.as_bytes(), &spans, &mut sink);
        let d = sink.finish(600);
        assert_eq!(d.batch.num_rows(), 599);
        assert_eq!(
            (d.errors[0].row, d.errors[0].raw.as_slice()),
            (300, &b"{nope}"[..])
        );
    }

    #[test]
    fn ndjson_skips_blank_lines() {
        let data = format!("{ROW}\n\n  \n{ROW}\n");
        let d = decode_json(data.as_bytes(), Contract::GameState);
        assert_eq!((d.batch.num_rows(), d.total), (2, 2));
    }

    #[test]
    fn refused_rows_report_dotted_paths() {
        let row = ROW
            .replace(r#""x":0.5"#, r#""x":1.5"#)
            .replace(r#""q":0"#, r#""q":-1"#);
        let d = decode_rows(&[row.as_bytes()], Contract::GameState);
        let got: Vec<(&str, &str)> = d.errors[0]
            .issues
            .iter()
            .map(|i| (i.path.as_str(), i.code))
            .collect();
        assert_eq!(
            got,
            vec![
                ("position.x", "less_than_equal"),
                ("cooldowns.q", "greater_than_equal")
            ]
        );
    }

    #[test]
    fn every_range_is_closed_and_reported_with_its_side() {
        use crate::codec::contract::ranges;
        for (path, b) in ranges() {
            let leaf = path.rsplit('.').next().unwrap();
            let key = format!(r#""{leaf}":"#);
            let with = |v: f64| {
                // replace the number after the first `"leaf":` with `v`
                let at = ROW.find(&key).unwrap() + key.len();
                let end = at + ROW[at..].find([',', '}']).unwrap();
                format!("{}{v:?}{}", &ROW[..at], &ROW[end..])
            };
            let codes = |v: f64| -> Vec<(String, &str)> {
                let row = with(v);
                let d = decode_rows(&[row.as_bytes()], Contract::GameState);
                d.errors
                    .iter()
                    .flat_map(|e| e.issues.iter().map(|i| (i.path.clone(), i.code)))
                    .collect()
            };
            assert!(codes(b.lo).is_empty(), "{path} = lo");
            assert!(codes(b.hi).is_empty(), "{path} = hi");
            assert_eq!(
                codes(b.hi * 1.000001 + 1.0),
                vec![(path.clone(), "less_than_equal")]
            );
            assert_eq!(codes(1e300), vec![(path.clone(), "less_than_equal")]);
            let below = if b.lo == 0.0 { -1e-9 } else { b.lo * 1.000001 };
            assert_eq!(codes(below), vec![(path.clone(), "greater_than_equal")]);
        }
    }

    #[test]
    fn msgpack_tape_matches_json_rules() {
        // fixarray(1) [ fixmap(1) { "health": -1 } ]
        let data = [0x91, 0x81, 0xa6, b'h', b'e', b'a', b'l', b't', b'h', 0xff];
        let (tape, elements, err) = crate::codec::msgpack::to_tape(&data);
        assert!(err.is_none());
        assert_eq!(elements.len(), 1);
        assert!(matches!(tape[0], Node::Object { len: 1, count: 2 }));
        let d = crate::codec::decode_msgpack(&data, Contract::GameState);
        assert!(d.errors[0].issues.iter().any(|i| i.code == "missing"));
        let d = crate::codec::decode_msgpack(&data[..5], Contract::GameState);
        assert_eq!(d.errors[0].issues[0].code, "msgpack_invalid");
    }
}
