//! The request path: a batch of GameState requests (each a value already on a tape, or the
//! JSON or msgpack bytes of one) validated by the codec's rules (`codec::validate`) and
//! turned into rows of the documented feature layout (`features`), in one call.
//!
//! There is no rule here: every request reaches `validate::game_state` through the same kind
//! of tape the batch decoder builds, so the reasons (path, code, message) are the codec's,
//! whatever form the request came in. Accepted requests become feature rows in input order;
//! refused ones become errors naming their index.

pub mod py;
pub mod tape;

use simd_json::Node;

use crate::codec::batch::RowParser;
use crate::codec::msgpack::Reader;
use crate::codec::validate::{game_state, Issue, Path};
use crate::error::{CoreError, CoreResult};
use crate::features::{fill_row, N_FEATURES, PAD_VALUE};

/// Where one request's GameState is.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A value on the shared tape (a walked dict or model), at this index.
    Tape(usize),
    /// The bytes of one GameState: msgpack when the first byte opens a msgpack map, JSON
    /// otherwise (a JSON object starts with `{` or whitespace, neither of which is a map).
    Bytes(&'a [u8]),
    /// A request refused before it could be read (walking it went past a bound).
    Refused(&'a Issue),
}

/// The outcome of a batch of requests.
#[derive(Debug, Default, PartialEq)]
pub struct Featurized {
    /// Row-major float32 features, `N_FEATURES` per row: one row per accepted request, in
    /// input order, then padding rows up to `pad_rows_to`.
    pub features: Vec<f32>,
    /// Input index of each accepted request (feature row k came from request `rows[k]`).
    pub rows: Vec<u32>,
    /// Every broken rule of every refused request: `(request index, issue)`.
    pub errors: Vec<(u32, Issue)>,
}

impl Featurized {
    /// Rows in `features`, padding included.
    pub fn height(&self) -> usize {
        self.features.len() / N_FEATURES
    }
}

/// True when `data` starts a msgpack map (fixmap, map16, map32).
#[inline]
pub fn is_msgpack(data: &[u8]) -> bool {
    matches!(data.first(), Some(0x80..=0x8f | 0xde | 0xdf))
}

struct Out {
    f: Featurized,
    issues: Vec<Issue>,
}

impl Out {
    /// Validate the GameState at `nodes[at]` as request `index`: a feature row or errors.
    fn state(&mut self, nodes: &[Node<'_>], at: usize, index: u32) {
        self.issues.clear();
        match game_state(nodes, at, &Path::ROOT, &mut self.issues) {
            Some(row) => {
                let start = self.f.features.len();
                self.f.features.resize(start + N_FEATURES, PAD_VALUE);
                fill_row(&row, &mut self.f.features[start..]);
                self.f.rows.push(index);
            }
            None => self.refuse_all(index),
        }
    }

    fn refuse_all(&mut self, index: u32) {
        self.f
            .errors
            .extend(self.issues.drain(..).map(|i| (index, i)));
    }

    fn malformed(&mut self, index: u32, code: &'static str, message: String) {
        self.f.errors.push((
            index,
            Issue {
                path: String::new(),
                code,
                message,
            },
        ));
    }
}

/// Validate and featurize `sources` (values on `tape`, or bytes). `pad_rows_to` pads the
/// matrix with `PAD_VALUE` rows up to that height; smaller than the accepted rows is an error.
pub fn featurize(
    tape: &[Node<'_>],
    sources: &[Source<'_>],
    pad_rows_to: Option<usize>,
) -> CoreResult<Featurized> {
    let mut out = Out {
        f: Featurized {
            features: Vec::with_capacity(sources.len().max(pad_rows_to.unwrap_or(0)) * N_FEATURES),
            rows: Vec::with_capacity(sources.len()),
            errors: Vec::new(),
        },
        issues: Vec::new(),
    };
    let mut parser: Option<RowParser> = None;
    let mut packed: Vec<Node<'_>> = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let index = i as u32;
        match *src {
            Source::Tape(at) => out.state(tape, at, index),
            Source::Refused(issue) => out.f.errors.push((index, issue.clone())),
            Source::Bytes(data) if is_msgpack(data) => {
                packed.clear();
                let mut r = Reader::new(data);
                match r.value(&mut packed, 0) {
                    Ok(()) if r.pos() == data.len() => out.state(&packed, 0, index),
                    Ok(()) => out.malformed(
                        index,
                        "msgpack_invalid",
                        format!("trailing bytes after the msgpack map at byte {}", r.pos()),
                    ),
                    Err(e) => out.malformed(index, "msgpack_invalid", e),
                }
            }
            Source::Bytes(data) => {
                let p = parser.get_or_insert_with(RowParser::default);
                if let Err(message) = p.parse(data, |nodes| out.state(nodes, 0, index)) {
                    out.malformed(index, "json_invalid", message);
                }
            }
        }
    }
    let accepted = out.f.rows.len();
    if let Some(pad) = pad_rows_to {
        if pad < accepted {
            return Err(CoreError::InvalidArgument(format!(
                "pad_rows_to={pad} is smaller than the {accepted} accepted requests; pass at \
                 least as many rows as requests"
            )));
        }
        out.f.features.resize(pad * N_FEATURES, PAD_VALUE);
    }
    Ok(out.f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_json, Contract};
    use crate::features::{columns, fill};

    const ROW: &str = r#"{"timestamp":"2024-05-01T12:00:00Z","champion":"Ahri","position":{"x":0.5,"y":0.25},"health":1234.5,"mana":2,"cooldowns":{"q":0,"w":3,"e":0,"r":90,"d":0,"f":300},"inventory":["boots","dagger"],"vision_score":12,"gold_advantage":-250}"#;

    fn batch_features(json: &str) -> Vec<f32> {
        let d = decode_json(format!("[{json}]").as_bytes(), Contract::GameState);
        let c = columns(&d.batch).unwrap();
        let mut out = vec![0.0; c.rows() * N_FEATURES];
        fill(&c, &mut out);
        out
    }

    #[test]
    fn a_json_request_gives_the_batch_paths_feature_row() {
        let f = featurize(&[], &[Source::Bytes(ROW.as_bytes())], None).unwrap();
        assert_eq!(f.rows, vec![0]);
        assert!(f.errors.is_empty());
        assert_eq!(f.features, batch_features(ROW));
    }

    #[test]
    fn refused_requests_keep_their_index_and_the_codecs_reasons() {
        let bad = ROW.replace(r#""health":1234.5"#, r#""health":-1"#);
        let srcs = [
            Source::Bytes(b"{nope"),
            Source::Bytes(bad.as_bytes()),
            Source::Bytes(ROW.as_bytes()),
        ];
        let f = featurize(&[], &srcs, Some(4)).unwrap();
        assert_eq!(f.rows, vec![2]);
        assert_eq!(f.height(), 4);
        assert!(f.features[N_FEATURES..].iter().all(|&v| v == PAD_VALUE));
        let codes: Vec<(u32, &str, &str)> = f
            .errors
            .iter()
            .map(|(i, e)| (*i, e.path.as_str(), e.code))
            .collect();
        assert_eq!(
            codes,
            vec![(0, "", "json_invalid"), (1, "health", "greater_than_equal")]
        );
        let err = featurize(&[], &srcs[2..], Some(0)).unwrap_err();
        assert!(err.to_string().contains("pad_rows_to=0"));
    }

    #[test]
    fn msgpack_is_told_from_json_by_its_first_byte() {
        // fixmap(1) { "health": -1 }: a map, so msgpack; its rules are the JSON rules
        let data = [0x81, 0xa6, b'h', b'e', b'a', b'l', b't', b'h', 0xff];
        assert!(is_msgpack(&data) && !is_msgpack(b" {}"));
        let f = featurize(&[], &[Source::Bytes(&data)], None).unwrap();
        assert!(f.errors.iter().any(|(_, e)| e.code == "missing"));
        assert!(f
            .errors
            .iter()
            .any(|(_, e)| (e.path.as_str(), e.code) == ("health", "greater_than_equal")));
        let f = featurize(&[], &[Source::Bytes(&data[..4])], None).unwrap();
        assert_eq!(f.errors[0].1.code, "msgpack_invalid");
        let mut trailing = data.to_vec();
        trailing.push(0xc0);
        let f = featurize(&[], &[Source::Bytes(&trailing)], None).unwrap();
        assert!(f.errors[0].1.message.contains("trailing bytes"));
    }
}
