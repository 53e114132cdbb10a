//! The one atomic writer of every file the tool writes: a whole file ([`write_file`]) or
//! a whole directory ([`write_dir`]), or nothing, with what was there before left intact.
//!
//! Both write into a temporary beside the target (`tempfile`), which removes itself when
//! dropped, so no failure leaves a temporary behind; only a finished temporary is renamed
//! into place.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// `--out` names something that is not a previous report: it is left alone.
    #[error("'{0}' exists and is not a lazymm report (no results.json in it); give another --out")]
    NotAReport(PathBuf),
    /// A file's text could not be made (a template, CSV or JSON error: a bug, not bad
    /// input).
    #[error("cannot render the report's {file}: {err}")]
    Render {
        /// The file.
        file: &'static str,
        /// What went wrong.
        err: String,
    },
    /// A file could not be written or moved.
    #[error("cannot write the report to '{path}': {err}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        err: std::io::Error,
    },
}

impl ReportError {
    /// A [`ReportError::Render`] of `file` from any error.
    pub fn render(file: &'static str) -> impl FnOnce(&dyn std::fmt::Display) -> ReportError {
        move |err| ReportError::Render {
            file,
            err: err.to_string(),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |err| ReportError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// The directory `path` lives in (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The prefix of a temporary beside `path`: hidden, and named after it.
fn prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or("lazymm".into(), |n| n.to_string_lossy().into_owned());
    format!(".{name}.")
}

/// A temporary-file builder with `prefix` and the permissions an ordinary create would
/// give (`mode`, less the umask).
fn builder(prefix: &str, mode: u32) -> tempfile::Builder<'_, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    b
}

/// Writes `bytes` as the whole of the file `path`, or nothing: a temporary file in the
/// same directory, synced, then renamed over `path`.
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = parent_of(path);
    let mut tmp = builder(&prefix(path), 0o666).tempfile_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Checks that `out` may receive a report: it does not exist, or is an empty directory,
/// or holds a previous report (`results.json`). Anything else is left alone.
pub fn check_out(out: &Path) -> Result<(), ReportError> {
    match std::fs::metadata(out) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => {
            let empty = std::fs::read_dir(out).map_err(io(out))?.next().is_none();
            if empty || out.join("results.json").is_file() {
                Ok(())
            } else {
                Err(ReportError::NotAReport(out.to_path_buf()))
            }
        }
        Ok(_) => Err(ReportError::NotAReport(out.to_path_buf())),
    }
}

/// Writes `files` (name inside `out`, text) as the whole content of the directory `out`,
/// all or nothing. Returns the names written.
///
/// `out` must pass [`check_out`]. Everything is first written into a temporary directory
/// beside `out`; only when every file is there does it replace `out` (a previous report
/// is moved aside into a second temporary directory, which is removed). A failure leaves
/// `out` as it was and nothing beside it.
pub fn write_dir(out: &Path, files: &[(String, String)]) -> Result<Vec<String>, ReportError> {
    write_dir_with(out, files, &|from, to| std::fs::rename(from, to))
}

/// [`write_dir`] with the rename it makes (the tests make one fail).
fn write_dir_with(
    out: &Path,
    files: &[(String, String)],
    rename: &dyn Fn(&Path, &Path) -> std::io::Result<()>,
) -> Result<Vec<String>, ReportError> {
    check_out(out)?;
    let parent = parent_of(out);
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    // INVARIANT: `new` and `aside` remove themselves when dropped, so every return below
    // leaves no temporary beside `out`.
    let prefix = prefix(out);
    let new = builder(&prefix, 0o777)
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    for (f, text) in files {
        let p = new.path().join(f);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(io(d))?;
        }
        std::fs::write(&p, text).map_err(io(&p))?;
    }
    let aside = builder(&prefix, 0o700)
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    let old = aside.path().join("previous");
    let had_old = out.exists();
    if had_old {
        rename(out, &old).map_err(io(out))?;
    }
    if let Err(e) = rename(new.path(), out) {
        if had_old {
            // Put the previous report back; `aside` is removed only once it is empty of it.
            if std::fs::rename(&old, out).is_err() {
                let _ = aside.keep();
            }
        }
        return Err(io(out)(e));
    }
    // `new` is `out` now: it must not be removed.
    let _ = new.keep();
    Ok(files.iter().map(|(f, _)| f.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir().expect("scratch directory")
    }

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn report(text: &str) -> Vec<(String, String)> {
        vec![
            ("results.json".into(), text.into()),
            ("index.html".into(), "<html></html>".into()),
        ]
    }

    #[test]
    fn a_file_is_written_whole_and_replaces_the_old_one() {
        let d = scratch();
        let p = d.path().join("x.json");
        write_file(&p, b"one").expect("first");
        write_file(&p, b"two").expect("second");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "two");
        assert_eq!(entries(d.path()), ["x.json"]);
        // A file in a directory that does not exist fails, and leaves nothing.
        let bad = d.path().join("missing").join("x.json");
        assert!(write_file(&bad, b"x").is_err());
        assert_eq!(entries(d.path()), ["x.json"]);
    }

    #[test]
    fn a_directory_replaces_a_report_and_leaves_no_temporary() {
        let d = scratch();
        let out = d.path().join("rep");
        write_dir(&out, &report("1")).expect("first");
        std::fs::write(out.join("stale.txt"), "old").expect("stale");
        write_dir(&out, &report("2")).expect("second");
        assert_eq!(entries(&out), ["index.html", "results.json"]);
        assert_eq!(
            std::fs::read_to_string(out.join("results.json")).expect("read"),
            "2"
        );
        assert_eq!(entries(d.path()), ["rep"]);
    }

    #[test]
    fn a_failed_rename_keeps_the_old_report_and_leaks_nothing() {
        let d = scratch();
        let out = d.path().join("rep");
        write_dir(&out, &report("old")).expect("first");
        // The move of the new directory into place fails (the first rename, moving the
        // old report aside, succeeds).
        let calls = std::cell::Cell::new(0);
        let failing = |from: &Path, to: &Path| {
            calls.set(calls.get() + 1);
            if calls.get() == 2 {
                Err(std::io::Error::other("injected"))
            } else {
                std::fs::rename(from, to)
            }
        };
        let e = write_dir_with(&out, &report("new"), &failing).expect_err("must fail");
        assert!(matches!(e, ReportError::Io { .. }), "{e}");
        assert_eq!(
            std::fs::read_to_string(out.join("results.json")).expect("old kept"),
            "old"
        );
        assert_eq!(entries(d.path()), ["rep"], "a temporary leaked");
        // Moving the old report aside fails: the same.
        let first =
            |_: &Path, _: &Path| -> std::io::Result<()> { Err(std::io::Error::other("injected")) };
        assert!(write_dir_with(&out, &report("new"), &first).is_err());
        assert_eq!(
            std::fs::read_to_string(out.join("results.json")).expect("old kept"),
            "old"
        );
        assert_eq!(entries(d.path()), ["rep"], "a temporary leaked");
    }

    #[test]
    fn a_directory_that_is_not_a_report_is_left_alone() {
        let d = scratch();
        let other = d.path().join("precious");
        std::fs::create_dir(&other).expect("mkdir");
        std::fs::write(other.join("notes.txt"), "keep me").expect("write");
        assert!(matches!(
            write_dir(&other, &report("x")),
            Err(ReportError::NotAReport(_))
        ));
        assert_eq!(entries(&other), ["notes.txt"]);
        assert_eq!(entries(d.path()), ["precious"]);
    }
}
