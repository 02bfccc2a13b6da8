//! The wire contract of GameState / TrainingSample / Action: field names, slots, kinds, item
//! vocabulary, numeric ranges and leaf rules. This file is the single source: `validate.rs`
//! applies these constants, `columns.rs` lays out the Arrow schema from them, and
//! `system0.data.contract` re-exports them to Python, where `system0.data.models` (pydantic)
//! derives its fields from them and `tests/data/test_contract_drift.py` checks every other
//! copy (the .proto, the storage schema, the simulator) against them.

/// Version of the GameState / TrainingSample contract.
pub const SCHEMA_VERSION: i64 = 1;
/// Most items one inventory may hold.
pub const MAX_INVENTORY: usize = 6;
/// Longest champion name, in characters (ASCII only, so also bytes).
pub const MAX_CHAMPION: usize = 32;
/// Longest metadata string (match id, source), in characters.
pub const MAX_META: usize = 64;
/// Largest `metadata.step`.
pub const MAX_STEP: i64 = i32::MAX as i64;
/// Ability slots in their fixed order (record fields, feature columns).
pub const ABILITY_SLOTS: [&str; 6] = ["q", "w", "e", "r", "d", "f"];
/// Action kinds, tag of the action union.
pub const ACTION_KINDS: [&str; 6] = ["move", "attack", "cast", "buy", "recall", "idle"];
/// Top-level fields of a GameState, in wire order; `GAME_STATE_OPTIONAL` may be omitted.
pub const GAME_STATE_FIELDS: [&str; 10] = [
    "schema_version",
    "timestamp",
    "champion",
    "position",
    "health",
    "mana",
    "cooldowns",
    "inventory",
    "vision_score",
    "gold_advantage",
];
pub const GAME_STATE_OPTIONAL: [&str; 1] = ["schema_version"];
/// Fields of a normalized position (`GameState.position`, a move / attack / cast target).
pub const POSITION_FIELDS: [&str; 2] = ["x", "y"];
/// Top-level fields of a TrainingSample; `next_state` is required but may be null.
pub const SAMPLE_FIELDS: [&str; 6] = [
    "schema_version",
    "state",
    "action",
    "reward",
    "next_state",
    "metadata",
];
pub const SAMPLE_OPTIONAL: [&str; 1] = ["schema_version"];
/// Fields of `TrainingSample.metadata`.
pub const METADATA_FIELDS: [&str; 3] = ["match_id", "step", "source"];
/// The fields each action kind carries (in `ACTION_KINDS` order), `kind` first.
pub const ACTION_FIELDS: [&[&str]; 6] = [
    &["kind", "target"],
    &["kind", "target"],
    &["kind", "slot", "target"],
    &["kind", "item"],
    &["kind"],
    &["kind"],
];
/// `(kind, field)` pairs that may be omitted (or null): a self-cast ability has no target.
pub const ACTION_OPTIONAL: [(&str, &str); 1] = [("cast", "target")];

/// Position of `name` in `names`, at compile time (a typo fails the build, not a request).
pub const fn index_of(names: &[&str], name: &str) -> usize {
    let mut i = 0;
    while i < names.len() {
        let (a, b) = (names[i].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut k = 0;
            while k < a.len() && a[k] == b[k] {
                k += 1;
            }
            if k == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("name is not in the contract's field list");
}

/// Closed interval `[lo, hi]` a numeric field must lie in.
///
/// Each bound is what the game can produce, with headroom, and small enough that the feature
/// scaling of `rust/features` stays far inside float32 (the largest scaled value is 100):
/// every admitted value is a finite feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub lo: f64,
    pub hi: f64,
}

/// Normalized map coordinates (also action targets).
pub const POSITION: Bounds = Bounds { lo: 0.0, hi: 1.0 };
pub const HEALTH: Bounds = Bounds {
    lo: 0.0,
    hi: 100_000.0,
};
pub const MANA: Bounds = Bounds {
    lo: 0.0,
    hi: 100_000.0,
};
/// Seconds until an ability is ready again: at most an hour.
pub const COOLDOWN: Bounds = Bounds {
    lo: 0.0,
    hi: 3_600.0,
};
pub const VISION_SCORE: Bounds = Bounds {
    lo: 0.0,
    hi: 10_000.0,
};
pub const GOLD_ADVANTAGE: Bounds = Bounds {
    lo: -1_000_000.0,
    hi: 1_000_000.0,
};

/// Every bounded GameState leaf, by dotted path, in field order (the table Python reads).
pub fn ranges() -> Vec<(String, Bounds)> {
    let mut out: Vec<(String, Bounds)> = POSITION_FIELDS
        .iter()
        .map(|f| (format!("position.{f}"), POSITION))
        .collect();
    out.push(("health".into(), HEALTH));
    out.push(("mana".into(), MANA));
    out.extend(
        ABILITY_SLOTS
            .iter()
            .map(|s| (format!("cooldowns.{s}"), COOLDOWN)),
    );
    out.push(("vision_score".into(), VISION_SCORE));
    out.push(("gold_advantage".into(), GOLD_ADVANTAGE));
    out
}

/// 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z in microseconds since the epoch.
pub const TS_MIN_US: i64 = 946_684_800_000_000;
pub const TS_MAX_US: i64 = 4_102_444_800_000_000;

/// Every item name, sorted so that lookup is a binary search; index i is feature column i.
pub const ITEM_VOCABULARY: [&str; 40] = [
    "abyssal_mask",
    "amplifying_tome",
    "b_f_sword",
    "blasting_wand",
    "boots",
    "boots_of_swiftness",
    "chain_vest",
    "cloak_of_agility",
    "cloth_armor",
    "control_ward",
    "corrupting_potion",
    "dagger",
    "dorans_blade",
    "dorans_ring",
    "dorans_shield",
    "elixir_of_iron",
    "elixir_of_sorcery",
    "faerie_charm",
    "guardian_angel",
    "health_potion",
    "infinity_edge",
    "kindlegem",
    "long_sword",
    "mercurys_treads",
    "needlessly_large_rod",
    "negatron_cloak",
    "null_magic_mantle",
    "oracle_lens",
    "pickaxe",
    "plated_steelcaps",
    "rabadons_deathcap",
    "rejuvenation_bead",
    "ruby_crystal",
    "sapphire_crystal",
    "sorcerers_shoes",
    "stealth_ward",
    "sunfire_aegis",
    "thornmail",
    "trinity_force",
    "zhonyas_hourglass",
];

const ITEM_TABLE_BITS: u32 = 8;
const EMPTY: u16 = u16::MAX;

fn fnv1a(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5u32, |h, &c| {
        (h ^ u32::from(c)).wrapping_mul(0x0100_0193)
    })
}

/// Open-addressing table from item name hash to vocabulary index, built once.
fn item_table() -> &'static [u16; 1 << ITEM_TABLE_BITS] {
    static TABLE: std::sync::OnceLock<[u16; 1 << ITEM_TABLE_BITS]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [EMPTY; 1 << ITEM_TABLE_BITS];
        let mask = (1usize << ITEM_TABLE_BITS) - 1;
        for (i, name) in ITEM_VOCABULARY.iter().enumerate() {
            let mut slot = fnv1a(name.as_bytes()) as usize & mask;
            while t[slot] != EMPTY {
                slot = (slot + 1) & mask;
            }
            t[slot] = i as u16;
        }
        t
    })
}

/// Vocabulary index of an item name, or None when the contract does not know it
/// (one hash and, on a hit, one comparison: this runs for every inventory slot).
#[inline]
pub fn item_index(name: &str) -> Option<u16> {
    let t = item_table();
    let mask = (1usize << ITEM_TABLE_BITS) - 1;
    let mut slot = fnv1a(name.as_bytes()) as usize & mask;
    loop {
        let idx = t[slot];
        if idx == EMPTY {
            return None;
        }
        if ITEM_VOCABULARY[usize::from(idx)] == name {
            return Some(idx);
        }
        slot = (slot + 1) & mask;
    }
}

/// `[A-Za-z0-9 '._-]{1,32}`, the champion rule of `models.GameState`.
pub fn champion_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_CHAMPION
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b' ' | b'\'' | b'.' | b'_' | b'-'))
}

/// Why a timestamp string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    /// Not `YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)`, or not a calendar date.
    Format,
    /// Outside [2000-01-01, 2100-01-01) UTC.
    Range,
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse an RFC 3339 timestamp with an explicit offset into microseconds since the epoch (UTC).
/// Accepts exactly what `models._parse_timestamp` accepts.
pub fn parse_timestamp(s: &str) -> Result<i64, TimestampError> {
    use TimestampError::{Format, Range};
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return Err(Format);
    }
    if b[16] != b':' {
        return Err(Format);
    }
    let year = digits(&b[0..4]).ok_or(Format)?;
    let month = digits(&b[5..7]).ok_or(Format)?;
    let day = digits(&b[8..10]).ok_or(Format)?;
    let hour = digits(&b[11..13]).ok_or(Format)?;
    let minute = digits(&b[14..16]).ok_or(Format)?;
    let second = digits(&b[17..19]).ok_or(Format)?;
    if !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return Err(Format);
    }
    // Python's datetime has no year 0: fromisoformat refuses it before any range check.
    if year < 1 || day < 1 || day > days_in_month(year, month) {
        return Err(Format);
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let n = end - start;
        if n == 0 || n > 6 {
            return Err(Format);
        }
        micros = digits(&b[start..end]).ok_or(Format)? * 10i64.pow((6 - n) as u32);
        i = end;
    }
    let offset_min = match &b[i..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2]).ok_or(Format)?;
            let m = digits(&[*m1, *m2]).ok_or(Format)?;
            if h > 23 || m > 59 {
                return Err(Format);
            }
            let total = h * 60 + m;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return Err(Format),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    let us = secs * 1_000_000 + micros;
    if !(TS_MIN_US..TS_MAX_US).contains(&us) {
        return Err(Range);
    }
    Ok(us)
}

/// Format microseconds since the epoch as RFC 3339 UTC with 6 fractional digits.
pub fn format_timestamp(us: i64, out: &mut Vec<u8>) {
    use std::io::Write;
    let _ = write!(out, "{}", crate::clock::rfc3339::Rfc3339::micros(us));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_is_sorted_and_unique() {
        assert!(ITEM_VOCABULARY.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(item_index("boots"), Some(4));
        assert_eq!(item_index("excalibur"), None);
        for (i, name) in ITEM_VOCABULARY.iter().enumerate() {
            assert_eq!(item_index(name), Some(i as u16));
        }
        assert_eq!(item_index(""), None);
    }

    #[test]
    fn timestamps_parse_and_round_trip() {
        let us = parse_timestamp("2024-02-29T12:30:45.25+01:00").unwrap();
        let mut out = Vec::new();
        format_timestamp(us, &mut out);
        assert_eq!(out, b"2024-02-29T11:30:45.250000Z");
        assert_eq!(
            parse_timestamp("2023-02-29T00:00:00Z"),
            Err(TimestampError::Format)
        );
        assert_eq!(
            parse_timestamp("2024-01-01T00:00:00"),
            Err(TimestampError::Format)
        );
        assert_eq!(
            parse_timestamp("1999-12-31T23:59:59Z"),
            Err(TimestampError::Range)
        );
        assert_eq!(
            parse_timestamp("2000-01-01T00:30:00+01:00"),
            Err(TimestampError::Range)
        );
        assert_eq!(parse_timestamp("2000-01-01T00:00:00Z"), Ok(TS_MIN_US));
    }

    #[test]
    fn ranges_name_contract_fields() {
        for (path, b) in ranges() {
            let head = path.split('.').next().unwrap();
            assert!(GAME_STATE_FIELDS.contains(&head), "{path}");
            assert!(b.lo < b.hi && b.lo.is_finite() && b.hi.is_finite());
        }
        assert_eq!(index_of(&GAME_STATE_FIELDS, "health"), 4);
        assert_eq!(ACTION_FIELDS.len(), ACTION_KINDS.len());
    }

    #[test]
    fn champion_rule() {
        assert!(champion_ok("Kai'Sa"));
        assert!(!champion_ok(""));
        assert!(!champion_ok("Ahri\n"));
        assert!(!champion_ok(&"a".repeat(33)));
    }
}
