//! The model's outputs, read once: the non-finite check and the action of each row.

/// Why a batch's outputs cannot answer its requests.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// Fewer rows than requests, or no columns.
    Shape {
        rows: usize,
        cols: usize,
        need: usize,
    },
    /// NaN or infinity in a real (not padding) row.
    NonFinite { row: usize },
}

/// The action of each of the first `n` rows of the row-major `(len / cols, cols)` matrix
/// `out`: the index of its largest value, the first one on a tie (as `numpy.argmax`). Padding
/// rows past `n` are not read: their values answer nobody.
pub fn scan(out: &[f32], cols: usize, n: usize) -> Result<Vec<i64>, Refused> {
    let rows = out.len().checked_div(cols).unwrap_or(0);
    if cols == 0 || rows < n {
        return Err(Refused::Shape {
            rows,
            cols,
            need: n,
        });
    }
    let mut actions = Vec::with_capacity(n);
    for (r, row) in out.chunks_exact(cols).take(n).enumerate() {
        let mut best = 0usize;
        let mut top = f32::NEG_INFINITY;
        for (j, &v) in row.iter().enumerate() {
            if !v.is_finite() {
                return Err(Refused::NonFinite { row: r });
            }
            if v > top || j == 0 {
                top = v;
                best = j;
            }
        }
        actions.push(best as i64);
    }
    Ok(actions)
}
