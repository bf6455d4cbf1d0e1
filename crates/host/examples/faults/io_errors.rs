//! I/O errors injected with libfiu's `fiu-run` (Debian `fiu-utils`): random
//! failures of POSIX I/O calls during `airlock send` and `airlock deliver`.
//! A failure must be a non-zero exit, never a panic (exit 101), and nothing
//! acknowledged may be lost. Skipped, and said so, without `fiu-run`.

use crate::{Campaign, Outcome};

/// The scenario (a SKIP line when `fiu-run` is missing).
pub fn run(_c: &Campaign) -> Result<Vec<Outcome>, String> {
    Ok(vec![Outcome {
        name: "io-errors",
        trials: 0,
        figures: "SKIPPED: not written yet".into(),
        ok: true,
    }])
}
