//! The kernel a lab run boots: Debian 13's 6.12 kernel for the arch, fetched with apt
//! (which checks the archive's signature with the machine's
//! `/usr/share/keyrings/debian-archive-keyring.gpg`) and cached, or the user's own image.
//! Its `.config` decides what the model must mirror ([`Implied`]): never assumed.

use crate::spec::{GuestArch, KernelChoice};
use crate::LabError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The keyring apt checks Debian's archive signatures with.
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// The suite the kernels come from.
pub const SUITE: &str = "trixie";
/// The mirror.
pub const MIRROR: &str = "http://deb.debian.org/debian";

/// A kernel ready to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The image QEMU boots.
    pub image: PathBuf,
    /// Its configuration, parsed.
    pub config: KernelConfig,
    /// Where the configuration came from.
    pub config_path: PathBuf,
    /// Its release as the package or file name gives it (the guest's `uname -r` is
    /// recorded beside it).
    pub release: String,
    /// Where it came from: the Debian package and version, or the user's file.
    pub origin: String,
}

/// A kernel `.config`: `CONFIG_X` → value (`y`, `m`, a number, a string); options set
/// to `n` (`# CONFIG_X is not set`) are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelConfig {
    values: BTreeMap<String, String>,
}

impl KernelConfig {
    /// Parses `.config` text. Lines that are neither `CONFIG_X=V` nor comments are an
    /// error naming the line.
    pub fn parse(text: &str) -> Result<KernelConfig, String> {
        let mut values = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some((k, v)) if k.starts_with("CONFIG_") => {
                    values.insert(k.to_string(), v.trim_matches('"').to_string());
                }
                _ => {
                    return Err(format!(
                        "line {}: expected CONFIG_NAME=VALUE, found '{}'",
                        i + 1,
                        line.chars().take(60).collect::<String>()
                    ))
                }
            }
        }
        if values.is_empty() {
            return Err("no CONFIG_ option in it: not a kernel .config".into());
        }
        Ok(KernelConfig { values })
    }

    /// The value of `CONFIG_<name>` (give the name without `CONFIG_`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(&format!("CONFIG_{name}"))
            .map(|s| s.as_str())
    }

    /// Whether `CONFIG_<name>=y`.
    pub fn enabled(&self, name: &str) -> bool {
        self.get(name) == Some("y")
    }
}

/// A kernel release `MAJOR.MINOR.PATCH` read from the front of a release string
/// (`6.12.117+deb13-amd64` → (6, 12, 117)).
pub fn parse_release(s: &str) -> Option<(u32, u32, u32)> {
    let digits = |t: &str| {
        let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        t[..end].parse::<u32>().ok()
    };
    let mut it = s.trim().splitn(3, '.');
    let major = digits(it.next()?)?;
    let minor = digits(it.next()?)?;
    let patch = it.next().and_then(digits).unwrap_or(0);
    Some((major, minor, patch))
}

/// What the kernel's config and version say the model must mirror.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Implied {
    /// The model's scheme for this kernel: `shootdown` with
    /// `CONFIG_MMU_LAZY_TLB_SHOOTDOWN=y`, else `refcount` (`CONFIG_MMU_LAZY_TLB_REFCOUNT`).
    pub scheme: &'static str,
    /// The config lines that decided it.
    pub evidence: Vec<String>,
    /// Notes on version-dependent behaviour: what the kernel does, and whether the model
    /// mirrors it.
    pub notes: Vec<String>,
    /// The kernel profile the model side runs, with its items (docs/profiles.md).
    pub profile: String,
    /// That profile ([`lazymm::Profile::for_kernel`] of the release and config).
    #[serde(skip)]
    pub model_profile: lazymm::Profile,
}

/// Reads [`Implied`] from the config, the arch and the release.
pub fn implied(config: &KernelConfig, arch: GuestArch, release: &str) -> Implied {
    let mut evidence = Vec::new();
    let mut notes = Vec::new();
    let scheme = if config.enabled("MMU_LAZY_TLB_SHOOTDOWN") {
        evidence.push("CONFIG_MMU_LAZY_TLB_SHOOTDOWN=y".into());
        "shootdown"
    } else {
        if config.enabled("MMU_LAZY_TLB_REFCOUNT") {
            evidence.push("CONFIG_MMU_LAZY_TLB_REFCOUNT=y".into());
        } else {
            evidence.push(
                "neither CONFIG_MMU_LAZY_TLB_SHOOTDOWN nor CONFIG_MMU_LAZY_TLB_REFCOUNT set (a kernel before 6.4: refcounting is all there is)"
                    .into(),
            );
        }
        "refcount"
    };
    let irqs_off = config.enabled("ARCH_WANT_IRQS_OFF_ACTIVATE_MM");
    evidence.push(format!(
        "CONFIG_ARCH_WANT_IRQS_OFF_ACTIVATE_MM={}",
        if irqs_off { "y" } else { "n" }
    ));
    let v = parse_release(release);
    match arch {
        GuestArch::X86 => {
            notes.push(format!(
                "exec_mmap: {} (the model: IRQs off on x86, as mainline since af8967158f9a, 6.16); the order of one switch, not a count the lab compares",
                if irqs_off { "IRQs stay off across activate_mm" } else { "IRQs are enabled before activate_mm" }
            ));
            if let Some(v) = v {
                if v < (6, 18, 0) {
                    notes.push(format!(
                        "switch_mm_irqs_off: {}.{} predates 83b0177a6c48 (the smp_mb when the mm_cpumask bit is already set, 6.18); the model has it: one fence per such switch, no IPI or flush",
                        v.0, v.1
                    ));
                }
                if v < (6, 15, 0) {
                    notes.push(
                        "no INVLPGB global ASIDs before 6.15: every remote flush is an IPI, as the model's x86 assumes".into(),
                    );
                }
                if v < (6, 13, 0) {
                    notes.push(
                        "mm_cpumask trimming: the kernel trims at most once a second per mm (should_trim_cpumask) or not at all before it; the model trims on every 8th flush of an mm (review B2)".into(),
                    );
                }
            }
        }
        GuestArch::Powerpc => {
            notes.push(format!(
                "radix: exit_mmap's fullmm flush calls exit_flush_lazy_tlbs (do_exit_flush_lazy_tlb IPIs to mm_cpumask) when CONFIG_MMU_LAZY_TLB_SHOOTDOWN is {}; the model's powerpc has no exit flush (review V1/B3), only cleanup_lazy_tlbs' do_shoot_lazy_tlb",
                if scheme == "shootdown" { "set" } else { "not set" }
            ));
            notes.push(
                "radix: single-threaded munmap flushes trim mm_cpumask with exit_flush_lazy_tlbs (flush_type_needed); the model's powerpc trims the same way (review V1), but a replayed trace carries no flush events, so the replayed model never trims".into(),
            );
        }
    }
    let model_profile = lazymm::Profile::for_kernel(
        v.map_or((6, 1), |v| (v.0, v.1)),
        config.enabled("DEBUG_VM"),
        config.enabled("SCHED_MM_CID"),
        config.enabled("NO_HZ_COMMON"),
    );
    Implied {
        scheme,
        evidence,
        notes,
        profile: model_profile.describe(),
        model_profile,
    }
}

/// The cache directory: `$XDG_CACHE_HOME/lazymm`, else `~/.cache/lazymm`.
pub fn default_cache() -> Result<PathBuf, LabError> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("lazymm"));
    }
    match std::env::var_os("HOME").filter(|x| !x.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".cache").join("lazymm")),
        None => Err(LabError::Usage(
            "neither XDG_CACHE_HOME nor HOME is set: give --cache DIR for the kernel cache".into(),
        )),
    }
}

/// Finds or fetches the kernel `choice` names.
pub fn get(
    choice: &KernelChoice,
    arch: GuestArch,
    cache: &Path,
    say: &mut dyn FnMut(&str),
) -> Result<Kernel, LabError> {
    match choice {
        KernelChoice::Image { image, config } => user_kernel(image, config.as_deref()),
        KernelChoice::Debian => debian_kernel(arch, cache, say),
    }
}

fn read_config(path: &Path) -> Result<KernelConfig, LabError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        LabError::Usage(format!(
            "cannot read the kernel config '{}': {e}",
            path.display()
        ))
    })?;
    KernelConfig::parse(&text)
        .map_err(|e| LabError::Usage(format!("kernel config '{}': {e}", path.display())))
}

fn user_kernel(image: &Path, config: Option<&Path>) -> Result<Kernel, LabError> {
    if !image.is_file() {
        return Err(LabError::Usage(format!(
            "--kernel '{}' is not a file (give the image QEMU boots: bzImage or vmlinuz for x86, vmlinux for powerpc)",
            image.display()
        )));
    }
    let name = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // vmlinuz-6.12.1-foo → config-6.12.1-foo beside it, as /boot lays them out.
    let release = name
        .split_once('-')
        .map(|(_, r)| r.to_string())
        .unwrap_or_default();
    let config_path = match config {
        Some(c) => c.to_path_buf(),
        None => {
            let beside = image.with_file_name(format!("config-{release}"));
            let dot = image.with_file_name(".config");
            if !release.is_empty() && beside.is_file() {
                beside
            } else if dot.is_file() {
                dot
            } else {
                return Err(LabError::Usage(format!(
                    "--kernel '{}' needs --config FILE (its .config): the scheme the model mirrors is read from it, never assumed",
                    image.display()
                )));
            }
        }
    };
    Ok(Kernel {
        image: image.to_path_buf(),
        config: read_config(&config_path)?,
        config_path,
        release: if release.is_empty() {
            "(see the guest's uname)".into()
        } else {
            release
        },
        origin: format!("user image {}", image.display()),
    })
}

/// A cached, unpacked Debian kernel: `CACHE/kernels/ARCH/PACKAGE/` with `boot/` and
/// `package.txt` (package, version, how it was verified).
fn cached(arch: GuestArch, dir: &Path) -> Option<Kernel> {
    let rd = std::fs::read_dir(dir).ok()?;
    let mut best: Option<(u32, Kernel)> = None;
    for e in rd.flatten() {
        let pkg = e.path();
        let origin = std::fs::read_to_string(pkg.join("package.txt")).ok()?;
        let boot = pkg.join("boot");
        let mut image = None;
        let mut config = None;
        for f in std::fs::read_dir(&boot).ok()?.flatten() {
            let n = f.file_name().to_string_lossy().into_owned();
            let want = match arch {
                GuestArch::X86 => "vmlinuz-",
                GuestArch::Powerpc => "vmlinux-",
            };
            if let Some(release) = n.strip_prefix(want) {
                image = Some((f.path(), release.to_string()));
            } else if n.starts_with("config-") {
                config = Some(f.path());
            }
        }
        let ((image, release), config_path) = (image?, config?);
        let patch = parse_release(&release).map_or(0, |v| v.2);
        let config = read_config(&config_path).ok()?;
        let k = Kernel {
            image,
            config,
            config_path,
            release,
            origin: origin.trim().to_string(),
        };
        if best.as_ref().is_none_or(|b| patch > b.0) {
            best = Some((patch, k));
        }
    }
    best.map(|b| b.1)
}

fn which(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

fn run(cmd: &mut Command, what: &str) -> Result<String, LabError> {
    let out = cmd
        .output()
        .map_err(|e| LabError::Missing(format!("cannot run {what}: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| l.starts_with("E:") || l.contains("rror"))
            .or_else(|| err.lines().last())
            .unwrap_or("")
            .to_string();
        return Err(LabError::Fetch(format!(
            "{what} failed ({}): {last}",
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fetches (or finds in the cache) Debian 13's newest 6.12 kernel for `arch`.
fn debian_kernel(
    arch: GuestArch,
    cache: &Path,
    say: &mut dyn FnMut(&str),
) -> Result<Kernel, LabError> {
    let dir = cache.join("kernels").join(arch.debian_arch());
    if let Some(k) = cached(arch, &dir) {
        return Ok(k);
    }
    for tool in ["apt-get", "apt-cache", "dpkg-deb"] {
        if !which(tool) {
            return Err(LabError::Missing(format!(
                "{tool} not found: the Debian kernel is fetched with apt (or give --kernel IMAGE --config FILE)"
            )));
        }
    }
    if !Path::new(KEYRING).is_file() {
        return Err(LabError::Missing(format!(
            "{KEYRING} not found (Debian package debian-archive-keyring): apt cannot check the kernel package's signature"
        )));
    }
    say(&format!(
        "fetching Debian {SUITE}'s 6.12 kernel for {}",
        arch.debian_arch()
    ));
    let apt = cache.join("apt");
    for d in ["lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(apt.join(d))
            .map_err(|e| LabError::Io(format!("cannot create {}: {e}", apt.join(d).display())))?;
    }
    let sources = apt.join("sources.list");
    std::fs::write(
        &sources,
        format!("deb [arch=amd64,ppc64el signed-by={KEYRING}] {MIRROR} {SUITE} main\n"),
    )
    .map_err(|e| LabError::Io(format!("cannot write {}: {e}", sources.display())))?;
    let opts: Vec<String> = vec![
        format!("-oDir::Etc::SourceList={}", sources.display()),
        "-oDir::Etc::SourceParts=/dev/null".into(),
        format!("-oDir::State::Lists={}", apt.join("lists").display()),
        format!("-oDir::Cache={}", apt.join("cache").display()),
        "-oAPT::Architectures::=amd64".into(),
        "-oAPT::Architectures::=ppc64el".into(),
        // The download lands in our own directory, which apt's sandbox user cannot write.
        "-oAPT::Sandbox::User=root".into(),
    ];
    // apt-get update verifies the suite's InRelease signature with KEYRING (signed-by);
    // apt-get download then checks the package's hash against the signed index.
    run(
        Command::new("apt-get").args(&opts).args(["-q", "update"]),
        "apt-get update (private sources list for Debian trixie)",
    )?;
    let names = run(
        Command::new("apt-cache")
            .args(&opts)
            .args(["pkgnames", "linux-image-6.12"]),
        "apt-cache pkgnames",
    )?;
    let suffix = format!("+deb13-{}", arch.debian_flavour());
    let mut candidates: Vec<(u32, String)> = names
        .lines()
        .filter_map(|n| {
            let rest = n.strip_prefix("linux-image-6.12.")?;
            let patch = rest.strip_suffix(suffix.as_str())?;
            Some((patch.parse::<u32>().ok()?, n.to_string()))
        })
        .collect();
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    if candidates.is_empty() {
        return Err(LabError::Fetch(format!(
            "no linux-image-6.12.*{suffix} package in Debian {SUITE} for {}",
            arch.debian_arch()
        )));
    }
    let dl = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(&apt)
        .map_err(|e| LabError::Io(format!("cannot create a download directory: {e}")))?;
    let mut last_err = String::new();
    // The newest first; a mirror that has not caught up with its index (a 404) falls
    // back to the one before.
    for (_, name) in candidates.iter().take(3) {
        let r = run(
            Command::new("apt-get")
                .current_dir(dl.path())
                .args(&opts)
                .args(["-q", "download", &format!("{name}:{}", arch.debian_arch())]),
            &format!("apt-get download {name}"),
        );
        match r {
            Ok(_) => {
                let deb = std::fs::read_dir(dl.path())
                    .map_err(|e| LabError::Io(e.to_string()))?
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == "deb"))
                    .ok_or_else(|| {
                        LabError::Fetch(format!("apt-get download {name} left no .deb"))
                    })?;
                let version = run(
                    Command::new("dpkg-deb")
                        .args(["-f"])
                        .arg(&deb)
                        .arg("Version"),
                    "dpkg-deb -f",
                )?;
                let unpack = tempfile::Builder::new()
                    .prefix(".unpack-")
                    .tempdir_in(&apt)
                    .map_err(|e| LabError::Io(e.to_string()))?;
                say(&format!("unpacking {name} {}", version.trim()));
                run(
                    Command::new("dpkg-deb")
                        .arg("-x")
                        .arg(&deb)
                        .arg(unpack.path()),
                    "dpkg-deb -x",
                )?;
                // Only boot/ is kept (the modules are not used: the guest needs none).
                let keep = tempfile::Builder::new()
                    .prefix(".keep-")
                    .tempdir_in(&apt)
                    .map_err(|e| LabError::Io(e.to_string()))?;
                std::fs::rename(unpack.path().join("boot"), keep.path().join("boot"))
                    .map_err(|e| LabError::Io(format!("the package has no boot/: {e}")))?;
                std::fs::write(
                    keep.path().join("package.txt"),
                    format!(
                        "Debian {SUITE} package {name} {} ({}), fetched with apt-get download; archive signature checked by apt with {KEYRING}\n",
                        version.trim(),
                        arch.debian_arch()
                    ),
                )
                .map_err(|e| LabError::Io(e.to_string()))?;
                std::fs::create_dir_all(&dir).map_err(|e| LabError::Io(e.to_string()))?;
                let target = dir.join(name);
                let _ = std::fs::remove_dir_all(&target);
                std::fs::rename(keep.keep(), &target).map_err(|e| {
                    LabError::Io(format!("cannot move the kernel into the cache: {e}"))
                })?;
                return cached(arch, &dir).ok_or_else(|| {
                    LabError::Fetch(format!("{name}: no image and config under boot/"))
                });
            }
            Err(e) => last_err = e.to_string(),
        }
    }
    Err(LabError::Fetch(last_err))
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86: &str = "#\n# Automatically generated file; DO NOT EDIT.\nCONFIG_MMU_LAZY_TLB_REFCOUNT=y\n# CONFIG_MMU_LAZY_TLB_SHOOTDOWN is not set\nCONFIG_HZ=250\nCONFIG_LOCALVERSION=\"\"\n";
    const PPC: &str = "CONFIG_MMU_LAZY_TLB_REFCOUNT=y\nCONFIG_MMU_LAZY_TLB_SHOOTDOWN=y\nCONFIG_ARCH_WANT_IRQS_OFF_ACTIVATE_MM=y\n";

    #[test]
    fn config_values_and_unset_options() {
        let c = KernelConfig::parse(X86).unwrap();
        assert!(c.enabled("MMU_LAZY_TLB_REFCOUNT"));
        assert!(!c.enabled("MMU_LAZY_TLB_SHOOTDOWN"));
        assert_eq!(c.get("HZ"), Some("250"));
        assert_eq!(c.get("LOCALVERSION"), Some(""));
        let e = KernelConfig::parse("CONFIG_A=y\nhello\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("hello"), "{e}");
        assert!(KernelConfig::parse("# nothing\n").is_err());
    }

    #[test]
    fn scheme_comes_from_the_config_not_the_arch() {
        let x = KernelConfig::parse(X86).unwrap();
        let p = KernelConfig::parse(PPC).unwrap();
        assert_eq!(
            implied(&x, GuestArch::X86, "6.12.117+deb13-amd64").scheme,
            "refcount"
        );
        assert_eq!(
            implied(&p, GuestArch::Powerpc, "6.12.107").scheme,
            "shootdown"
        );
        // A powerpc kernel built without the option is refcount, and says so.
        let i = implied(&x, GuestArch::Powerpc, "6.12.107");
        assert_eq!(i.scheme, "refcount");
        assert!(i.evidence[0].contains("REFCOUNT=y"));
        // An x86 config with the option set (a user's build) is shootdown.
        assert_eq!(implied(&p, GuestArch::X86, "6.19.0").scheme, "shootdown");
        let old = KernelConfig::parse("CONFIG_SMP=y\n").unwrap();
        assert!(implied(&old, GuestArch::X86, "5.15.0").evidence[0].contains("before 6.4"));
    }

    #[test]
    fn version_notes_follow_the_release() {
        let x = KernelConfig::parse(X86).unwrap();
        let n612 = implied(&x, GuestArch::X86, "6.12.117+deb13-amd64").notes;
        assert!(n612.iter().any(|n| n.contains("83b0177a6c48")));
        assert!(n612
            .iter()
            .any(|n| n.contains("IRQs are enabled before activate_mm")));
        assert!(n612.iter().any(|n| n.contains("INVLPGB")));
        let mut with = X86.to_string();
        with.push_str("CONFIG_ARCH_WANT_IRQS_OFF_ACTIVATE_MM=y\n");
        let c = KernelConfig::parse(&with).unwrap();
        let n619 = implied(&c, GuestArch::X86, "6.19.2").notes;
        assert!(!n619.iter().any(|n| n.contains("83b0177a6c48")));
        assert!(!n619.iter().any(|n| n.contains("INVLPGB")));
        assert!(n619.iter().any(|n| n.contains("IRQs stay off")));
    }

    #[test]
    fn releases() {
        assert_eq!(parse_release("6.12.117+deb13-amd64"), Some((6, 12, 117)));
        assert_eq!(parse_release("6.19-rc1"), Some((6, 19, 0)));
        assert_eq!(parse_release("x"), None);
    }
}
