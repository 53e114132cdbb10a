//! `check --shard K/N` and `check --merge`: the shards of a check together are the
//! whole check (same schedules, so the same verdicts, counts and coverage), and a
//! batch scheduler's array variable selects the shard.

use std::process::{Command, Output};

/// `lazymm ARGS` with no batch-scheduler variable inherited, plus `env`.
fn lazymm(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lazymm"));
    for v in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "JOB_COMPLETION_INDEX",
        "LAZYMM_SHARD_COUNT",
    ] {
        c.env_remove(v);
    }
    c.envs(env.iter().copied())
        .args(args)
        .output()
        .expect("the binary runs")
}

/// The JSON Lines of `check --json` as one value: `shard` (every row's), and the rows
/// by kind under `schemes` and `mutants`.
fn json(o: &Output) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!(
                    "not JSON ({e}): {l}\n{}",
                    String::from_utf8_lossy(&o.stderr)
                )
            })
        })
        .collect();
    let shard = rows.first().map(|r| r["shard"].clone()).unwrap_or_default();
    assert!(rows.iter().all(|r| r["shard"] == shard), "one shard a file");
    let of = |kind: &str| -> Vec<serde_json::Value> {
        rows.iter().filter(|r| r["kind"] == kind).cloned().collect()
    };
    serde_json::json!({ "shard": shard, "schemes": of("scheme"), "mutants": of("mutant") })
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("lazymm-shard-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A check with a clean scheme, a broken one (a finding's configuration, which
/// `--mutant` hunts) and a mutant hunt, whole and in two shards.
#[test]
fn two_shards_merge_to_the_whole_run() {
    let dir = scratch("merge");
    let replays = dir.join("replays");
    let base = [
        "check",
        "--scheme",
        "shootdown",
        "--iterations",
        "45",
        "--seed",
        "7",
        "--mutant",
        "x86-cpumask-before-sentinel",
        "--json",
        "--replay-dir",
        replays.to_str().unwrap(),
    ];
    let whole = lazymm(&base, &[]);
    assert_eq!(whole.status.code(), Some(0));
    let mut files = Vec::new();
    for k in ["1/2", "2/2"] {
        let mut args = base.to_vec();
        args.extend(["--shard", k]);
        let o = lazymm(&args, &[]);
        assert_eq!(o.status.code(), Some(0), "{k}");
        let v = json(&o);
        assert_eq!(v["shard"], k);
        let f = dir.join(format!("shard-{}.json", &k[..1]));
        std::fs::write(&f, &o.stdout).unwrap();
        files.push(f);
    }
    let mut args = vec!["check", "--json", "--merge"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let merged = lazymm(&args, &[]);
    assert_eq!(merged.status.code(), Some(0));
    let (w, m) = (json(&whole), json(&merged));
    // The schemes: the same schedules, so every count and the coverage are the same.
    assert_eq!(w["schemes"], m["schemes"]);
    let total: u64 = w["schemes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["iterations"].as_u64().unwrap())
        .sum();
    // Every arch, each configuration an arch declares for the scheme, and each
    // finding's fix on it.
    let fixed = lazymm_engine::registry::findings()
        .into_iter()
        .filter(|m| m.kind() == lazymm::Kind::Fixed);
    let configs = lazymm_engine::registry::configs()
        .into_iter()
        .chain(fixed)
        .filter(|c| c.scheme() == "shootdown")
        .count();
    let targets = (lazymm_engine::registry::ARCHS.len() + configs) as u64;
    assert_eq!(total, targets * 45);
    // The hunt: each shard stops at its own first catch; the merged first catch is the
    // whole hunt's, with its replay.
    let (wm, mm) = (&w["mutants"][0], &m["mutants"][0]);
    assert_eq!(wm["caught"], true);
    assert_eq!(mm["iterations_to_catch"], wm["iterations_to_catch"]);
    assert_eq!(mm["replay"], wm["replay"]);
    assert_eq!(mm["arch"], wm["arch"]);
    // One shard alone is not the whole check.
    let one = lazymm(&["check", "--merge", files[0].to_str().unwrap()], &[]);
    assert_eq!(
        one.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failing_verdict_survives_the_merge() {
    // A mutant not caught within a small budget (exec-mmap-irqs-on-activate takes over
    // a hundred iterations at seed 7): the whole run fails (exit 3), and so does the
    // merge of its shards, with the same counts.
    let dir = scratch("verdict");
    let base = [
        "check",
        "--mutant",
        "exec-mmap-irqs-on-activate",
        "--budget",
        "9",
        "--seed",
        "7",
        "--json",
        "--replay-dir",
        dir.to_str().unwrap(),
    ];
    let whole = lazymm(&base, &[]);
    assert_eq!(whole.status.code(), Some(3));
    let mut files = Vec::new();
    for k in ["1/3", "2/3", "3/3"] {
        let mut args = base.to_vec();
        args.extend(["--shard", k]);
        let o = lazymm(&args, &[]);
        assert_eq!(o.status.code(), Some(3), "{k}");
        let f = dir.join(format!("{}.json", &k[..1]));
        std::fs::write(&f, &o.stdout).unwrap();
        files.push(f);
    }
    let mut args = vec!["check", "--json", "--merge"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let merged = lazymm(&args, &[]);
    assert_eq!(merged.status.code(), Some(3));
    let (w, m) = (json(&whole), json(&merged));
    assert_eq!(m["mutants"][0]["caught"], false);
    assert_eq!(m["mutants"], w["mutants"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn slurm_and_kubernetes_variables_select_the_shard() {
    let args = [
        "check",
        "--scheme",
        "refcount",
        "--arch",
        "generic",
        "--iterations",
        "10",
        "--seed",
        "7",
        "--json",
    ];
    // sbatch --array=0-1: task 1 is shard 2/2, iterations 1, 3, 5, 7, 9.
    let slurm = lazymm(
        &args,
        &[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
        ],
    );
    assert_eq!(slurm.status.code(), Some(0));
    let v = json(&slurm);
    assert_eq!(v["shard"], "2/2");
    assert_eq!(v["schemes"][0]["iterations"], 5);
    assert!(String::from_utf8_lossy(&slurm.stderr).contains("shard 2/2, from the batch"));
    // The same shard from --shard: the same schedules.
    let mut a = args.to_vec();
    a.extend(["--shard", "2/2"]);
    assert_eq!(json(&lazymm(&a, &[]))["schemes"], v["schemes"]);
    // A Kubernetes Indexed Job's index, with the count the Job sets.
    let k8s = lazymm(
        &args,
        &[("JOB_COMPLETION_INDEX", "0"), ("LAZYMM_SHARD_COUNT", "5")],
    );
    let v = json(&k8s);
    assert_eq!(v["shard"], "1/5");
    assert_eq!(v["schemes"][0]["iterations"], 2);
    // The index without the count is a usage error.
    let bad = lazymm(&args, &[("JOB_COMPLETION_INDEX", "0")]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_merge_names_a_listed_finding_as_the_whole_run_does() {
    // shootdown-debug on x86 is the listed finding finding-x86-shootdown-lazy-trim: from
    // seed 7 its first violation is iteration 143. The merge's console says what the
    // whole run's says, and both pass.
    let dir = scratch("listed");
    let base = [
        "check",
        "--scheme",
        "shootdown-debug",
        "--arch",
        "x86",
        "--iterations",
        "150",
        "--seed",
        "7",
        "--replay-dir",
        dir.to_str().unwrap(),
    ];
    let line = "a listed finding, finding-x86-shootdown-lazy-trim";
    let whole = lazymm(&base, &[]);
    assert_eq!(whole.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&whole.stdout).contains(line));
    let mut files = Vec::new();
    for k in ["1/2", "2/2"] {
        let mut args = base.to_vec();
        args.extend(["--shard", k, "--json"]);
        let o = lazymm(&args, &[]);
        assert_eq!(o.status.code(), Some(0), "{k}");
        let f = dir.join(format!("{}.json", &k[..1]));
        std::fs::write(&f, &o.stdout).unwrap();
        files.push(f);
    }
    let mut args = vec!["check", "--merge"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let merged = lazymm(&args, &[]);
    assert_eq!(merged.status.code(), Some(0));
    let out = String::from_utf8_lossy(&merged.stdout);
    assert!(out.contains(line), "{out}");
    assert!(!out.contains("NOT only the listed finding"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
