//! MessagePack input: a top-level array of maps is turned into the same tape the JSON parser
//! produces, so one set of contract rules serves both wire formats.

use std::ops::Range;

use simd_json::{Node, StaticNode};

/// Deepest nesting accepted; deeper input is refused instead of exhausting the stack.
pub const MAX_DEPTH: usize = 128;

pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

type R<T> = Result<T, String>;

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| format!("msgpack truncated at byte {}", self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> R<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// Read the length of the top-level array.
    pub fn array_len(&mut self) -> R<usize> {
        let m = self.take(1)?[0];
        match m {
            0x90..=0x9f => Ok(usize::from(m & 0x0f)),
            0xdc => Ok(self.be(2)? as usize),
            0xdd => Ok(self.be(4)? as usize),
            _ => Err("msgpack batch must be an array of maps".to_owned()),
        }
    }

    fn str_body(&mut self, n: usize) -> R<&'a str> {
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map_err(|_| format!("msgpack string is not UTF-8 at byte {}", self.pos))
    }

    /// Append one value (recursively) to `tape`.
    pub fn value(&mut self, tape: &mut Vec<Node<'a>>, depth: usize) -> R<()> {
        if depth > MAX_DEPTH {
            return Err(format!("msgpack nested deeper than {MAX_DEPTH}"));
        }
        let m = self.take(1)?[0];
        let node = match m {
            0x00..=0x7f => Node::Static(StaticNode::U64(u64::from(m))),
            0xe0..=0xff => Node::Static(StaticNode::I64(i64::from(m as i8))),
            0xc0 => Node::Static(StaticNode::Null),
            0xc2 => Node::Static(StaticNode::Bool(false)),
            0xc3 => Node::Static(StaticNode::Bool(true)),
            0xcc => Node::Static(StaticNode::U64(self.be(1)?)),
            0xcd => Node::Static(StaticNode::U64(self.be(2)?)),
            0xce => Node::Static(StaticNode::U64(self.be(4)?)),
            0xcf => Node::Static(StaticNode::U64(self.be(8)?)),
            0xd0 => Node::Static(StaticNode::I64(i64::from(self.be(1)? as u8 as i8))),
            0xd1 => Node::Static(StaticNode::I64(i64::from(self.be(2)? as u16 as i16))),
            0xd2 => Node::Static(StaticNode::I64(i64::from(self.be(4)? as u32 as i32))),
            0xd3 => Node::Static(StaticNode::I64(self.be(8)? as i64)),
            0xca => Node::Static(StaticNode::F64(f64::from(f32::from_bits(
                self.be(4)? as u32
            )))),
            0xcb => Node::Static(StaticNode::F64(f64::from_bits(self.be(8)?))),
            0xa0..=0xbf => Node::String(self.str_body(usize::from(m & 0x1f))?),
            0xd9 => {
                let n = self.be(1)? as usize;
                Node::String(self.str_body(n)?)
            }
            0xda => {
                let n = self.be(2)? as usize;
                Node::String(self.str_body(n)?)
            }
            0xdb => {
                let n = self.be(4)? as usize;
                Node::String(self.str_body(n)?)
            }
            0x90..=0x9f | 0xdc | 0xdd => {
                let len = match m {
                    0xdc => self.be(2)? as usize,
                    0xdd => self.be(4)? as usize,
                    _ => usize::from(m & 0x0f),
                };
                let at = tape.len();
                tape.push(Node::Array { len, count: 0 });
                for _ in 0..len {
                    self.value(tape, depth + 1)?;
                }
                tape[at] = Node::Array {
                    len,
                    count: tape.len() - at - 1,
                };
                return Ok(());
            }
            0x80..=0x8f | 0xde | 0xdf => {
                let len = match m {
                    0xde => self.be(2)? as usize,
                    0xdf => self.be(4)? as usize,
                    _ => usize::from(m & 0x0f),
                };
                let at = tape.len();
                tape.push(Node::Object { len, count: 0 });
                for _ in 0..len {
                    let key_at = tape.len();
                    self.value(tape, depth + 1)?;
                    if !matches!(tape.get(key_at), Some(Node::String(_))) {
                        return Err("msgpack map key is not a string".to_owned());
                    }
                    self.value(tape, depth + 1)?;
                }
                tape[at] = Node::Object {
                    len,
                    count: tape.len() - at - 1,
                };
                return Ok(());
            }
            _ => {
                return Err(format!(
                    "msgpack type 0x{m:02x} (bin/ext) has no place in the contract"
                ))
            }
        };
        tape.push(node);
        Ok(())
    }
}

/// Parse a msgpack array of rows into one tape: (tape, elements as (tape index, byte range),
/// and the error that stopped parsing early, with the byte range it left unread).
#[allow(clippy::type_complexity)]
pub fn to_tape(
    data: &[u8],
) -> (
    Vec<Node<'_>>,
    Vec<(usize, Range<usize>)>,
    Option<(String, Range<usize>)>,
) {
    let mut tape = Vec::new();
    let mut elements = Vec::new();
    let mut r = Reader::new(data);
    let len = match r.array_len() {
        Ok(n) => n,
        Err(e) => return (tape, elements, Some((e, 0..data.len()))),
    };
    for _ in 0..len {
        let start = r.pos();
        let at = tape.len();
        if let Err(e) = r.value(&mut tape, 0) {
            tape.truncate(at);
            return (tape, elements, Some((e, start..data.len())));
        }
        elements.push((at, start..r.pos()));
    }
    if r.pos() != data.len() {
        let p = r.pos();
        return (
            tape,
            elements,
            Some((
                "trailing bytes after the msgpack array".to_owned(),
                p..data.len(),
            )),
        );
    }
    (tape, elements, None)
}
