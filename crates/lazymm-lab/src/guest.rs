//! The guest program: `guest/init.c`, built static at run time with the host's C
//! compiler for the guest's arch (`gcc` for x86-64, Debian's `powerpc64le-linux-gnu-gcc`
//! with `libc6-dev-ppc64el-cross` for powerpc: no Rust cross target can be installed on
//! these machines, a Debian cross C toolchain can). Built at run time rather than in
//! `build.rs` so that the lazymm build itself needs no cross compiler.

use crate::spec::GuestArch;
use crate::LabError;
use std::path::Path;
use std::process::Command;

/// The guest program's source.
pub const SOURCE: &str = include_str!("../guest/init.c");

/// Builds the static guest program for `arch` in `dir`; returns its bytes.
pub fn build(arch: GuestArch, dir: &Path) -> Result<Vec<u8>, LabError> {
    let (cc, packages) = arch.compiler();
    let src = dir.join("init.c");
    let out = dir.join("init");
    std::fs::write(&src, SOURCE)
        .map_err(|e| LabError::Io(format!("cannot write {}: {e}", src.display())))?;
    let result = Command::new(cc)
        .args(["-static", "-O2", "-Wall", "-pthread", "-o"])
        .arg(&out)
        .arg(&src)
        .output();
    let output = match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LabError::Missing(format!(
                "{cc} not found: the {} guest program is C built static (install the Debian packages {packages})",
                arch.name()
            )))
        }
        Err(e) => return Err(LabError::Missing(format!("cannot run {cc}: {e}"))),
        Ok(o) => o,
    };
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        let first = err
            .lines()
            .find(|l| l.contains("error"))
            .unwrap_or_else(|| err.lines().next().unwrap_or(""));
        return Err(LabError::Missing(format!(
            "{cc} could not build the static guest program ({first}); a static libc is needed (Debian packages {packages})"
        )));
    }
    std::fs::read(&out).map_err(|e| LabError::Io(format!("cannot read {}: {e}", out.display())))
}
