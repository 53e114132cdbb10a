//! Every `--json` output against its JSON Schema: the schemas under `docs/schema/` are
//! the ones the row types generate (set `LAZYMM_BLESS=1` to rewrite them after changing a
//! row), and each command's real output, one row a line, validates against its schema.
//!
//! The validator is a small one, below, for the part of JSON Schema that schemars emits
//! (`type`, `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`,
//! `oneOf`, `anyOf`, `$ref` into `$defs`, `minimum`): the `jsonschema` crate would bring
//! some forty crates (regex engines, URL and e-mail parsers) into the build for it.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema")
}

#[test]
fn the_checked_in_schemas_are_the_generated_ones() {
    let bless = std::env::var_os("LAZYMM_BLESS").is_some();
    let schemas = lazymm_cli::schemas();
    assert_eq!(
        schemas.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["run", "check", "predict", "replay", "lab"]
    );
    for (name, text) in schemas {
        let path = schema_dir().join(format!("{name}.json"));
        if bless {
            std::fs::create_dir_all(schema_dir()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (LAZYMM_BLESS=1 writes it)", path.display()));
        assert!(
            on_disk == text,
            "{} differs from the schema the rows generate (LAZYMM_BLESS=1 rewrites it)",
            path.display()
        );
    }
}

/// The rows `lazymm ARGS` prints, each checked against `docs/schema/SCHEMA.json`.
fn validate_output(schema: &str, args: &[&str]) -> usize {
    let o = Command::new(env!("CARGO_BIN_EXE_lazymm"))
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(
        matches!(o.status.code(), Some(0 | 3)),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(schema_dir().join(format!("{schema}.json"))).unwrap();
    let s: Value = serde_json::from_str(&text).unwrap();
    let out = String::from_utf8(o.stdout).expect("UTF-8");
    let mut n = 0;
    for line in out.lines() {
        let row: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{args:?}: not one JSON object a line ({e}): {line}"));
        if let Err(e) = validate(&s, &s, &row, "") {
            panic!("{args:?}: {e}\n{line}");
        }
        n += 1;
    }
    n
}

#[test]
fn every_json_output_validates_against_its_schema() {
    let tmp = std::env::temp_dir().join(format!("lazymm-schema-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let dir = |n: &str| tmp.join(n).display().to_string();
    let run = validate_output(
        "run",
        &[
            "run",
            "--scheme",
            "refcount",
            "--workload",
            "exit-storm",
            "--cpus",
            "2",
            "--switches",
            "5000",
            "--json",
        ],
    );
    assert_eq!(run, 1);
    let mutant = validate_output(
        "run",
        &[
            "run",
            "--mutant",
            "refcount-no-grab",
            "--workload",
            "exit-storm",
            "--cpus",
            "2",
            "--switches",
            "5000",
            "--json",
        ],
    );
    assert_eq!(mutant, 1);
    let check = validate_output(
        "check",
        &[
            "check",
            "--scheme",
            "refcount",
            "--arch",
            "generic",
            "--mutant",
            "refcount-no-grab",
            "--iterations",
            "5",
            "--seed",
            "7",
            "--json",
            "--replay-dir",
            &dir("replays"),
        ],
    );
    assert_eq!(check, 2);
    let predict = validate_output(
        "predict",
        &[
            "predict",
            "--quick",
            "--machine",
            "epyc-zen4-2s",
            "--schemes",
            "none,refcount",
            "--workloads",
            "threads,exit-storm",
            "--cpus",
            "2",
            "--out",
            &dir("p"),
            "--json",
        ],
    );
    assert_eq!(predict, 4);
    let trace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lazymm-trace/tests/fixtures/tracecmd_raw.txt")
        .display()
        .to_string();
    let replay = validate_output(
        "replay",
        &[
            "replay",
            &trace,
            "--schemes",
            "refcount,hazptr-luto",
            "--machine",
            "epyc-zen4-2s",
            "--json",
        ],
    );
    assert_eq!(replay, 2);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// `predict --kernel 6.1 --vs 6.12 --quick --json`: every row carries the what-if's
/// before, after, change and interval (low <= change <= high, after = the row's own
/// switches per second), and validates against `docs/schema/predict.json`.
#[test]
fn what_if_rows_carry_the_change_and_validate() {
    let tmp = std::env::temp_dir().join(format!("lazymm-schema-whatif-{}", std::process::id()));
    let out = tmp.display().to_string();
    let args = [
        "predict",
        "--kernel",
        "6.1",
        "--vs",
        "6.12",
        "--quick",
        "--json",
        "--machine",
        "spr-2s",
        "--archs",
        "x86",
        "--schemes",
        "refcount,none",
        "--workloads",
        "threads",
        "--cpus",
        "2,8",
        "--out",
        &out,
    ];
    assert_eq!(validate_output("predict", &args), 4);
    let o = Command::new(env!("CARGO_BIN_EXE_lazymm"))
        .args(args)
        .output()
        .expect("the binary runs");
    for line in String::from_utf8(o.stdout).expect("UTF-8").lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let num = |k: &str| {
            row[k]
                .as_f64()
                .unwrap_or_else(|| panic!("{k} is not a number: {line}"))
        };
        assert_eq!(row["kernel_profile"], "6.12", "{line}");
        assert_eq!(row["before_kernel_profile"], "6.1", "{line}");
        let (before, after) = (
            num("before_switches_per_sec"),
            num("after_switches_per_sec"),
        );
        assert_eq!(after, num("switches_per_sec"), "{line}");
        assert!(
            (num("change") - (after / before - 1.0)).abs() < 1e-12,
            "{line}"
        );
        assert!(
            num("change_low") <= num("change") && num("change") <= num("change_high"),
            "{line}"
        );
    }
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.join("results.json")).unwrap()).unwrap();
    let assumed = results["what_if"]["assumed"]
        .as_array()
        .expect("assumed values");
    assert!(
        !assumed.is_empty() && assumed.iter().all(|a| a["source"] == "assumed"),
        "{assumed:?}"
    );
    let page = std::fs::read_to_string(tmp.join("index.html")).unwrap();
    let key = assumed[0]["key"].as_str().unwrap();
    assert!(
        page.contains(r#"<h2 id="what-if">What-if</h2>"#) && page.contains(key),
        "the page has no what-if table naming {key}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// `lab --json` without booting a guest: the rows of a recorded two-CPU trace (the lab's
/// evidence fixture) analysed as a lab run analyses a phase, checked against
/// `docs/schema/lab.json` as the command prints them.
#[test]
fn lab_rows_validate_against_their_schema() {
    use lazymm_lab::spec::{GuestArch, Phase};
    let trace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lazymm-lab/tests/fixtures/two-cpus.trace.txt");
    let text = std::fs::read_to_string(&trace).expect("the fixture");
    let console = "lab: cpu 0 llc 0-1 package 0\nlab: cpu 1 llc 0-1 package 0\n";
    let phase = Phase {
        pairs: 0,
        pin: false,
    };
    let phases = lazymm_lab::analyse(
        GuestArch::X86,
        &[phase],
        console,
        vec![text],
        &lazymm_lab::kernel::Implied {
            scheme: "refcount",
            evidence: Vec::new(),
            notes: Vec::new(),
            profile: lazymm::Profile::BARE.name(),
            model_profile: lazymm::Profile::BARE,
        },
        &mut |_| {},
    )
    .expect("the fixture analyses");
    let rows = lazymm_lab::report::rows_of("x86", 2, "exit-storm", "tcg", &phases);
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(schema_dir().join("lab.json")).expect("lab.json"),
    )
    .unwrap();
    for row in &rows {
        let v = serde_json::to_value(row).unwrap();
        if let Err(e) = validate(&schema, &schema, &v, "") {
            panic!("{e}\n{v}");
        }
        let back: lazymm_lab::report::LabRow = serde_json::from_value(v).expect("reads back");
        assert_eq!(&back, row);
    }
    // Every kind of row the report has: the comparison, placement (a rate invalid
    // under TCG), the kernel's remote calls and flushes, and each scheme's IPIs.
    let tables: std::collections::BTreeSet<String> = rows
        .iter()
        .map(|r| {
            serde_json::to_value(r.table)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        tables.into_iter().collect::<Vec<_>>(),
        [
            "compare",
            "kernel remote calls",
            "kernel tlb_flush",
            "model ipis_sent",
            "placement"
        ]
    );
    assert!(rows
        .iter()
        .any(|r| r.valid == "no: guest time under TCG"
            && r.quantity == "migrations per guest second"));
}

#[test]
fn the_validator_can_fail() {
    let text = std::fs::read_to_string(schema_dir().join("check.json")).unwrap();
    let s: Value = serde_json::from_str(&text).unwrap();
    let good = serde_json::json!({"kind": "mutant", "shard": "1/1", "seed": 7,
        "planned": 10, "name": "m", "arch": "x86", "iterations": 10, "violations": 0,
        "stalled": 0, "decisions": 100, "first_iteration": null, "replay": null,
        "mixes": {"usual": {"iterations": 10, "violations": 0}},
        "coverage": {"ipi_handlers": {}, "paths": {}, "irq_windows": {}, "ipis_in_windows": {}},
        "caught": false});
    validate(&s, &s, &good, "").unwrap();
    let with = |k: &str, v: Value| {
        let mut r = good.clone();
        r[k] = v;
        r
    };
    let without = |k: &str| {
        let mut r = good.clone();
        r.as_object_mut().unwrap().remove(k);
        r
    };
    let bad = [
        with("caught", serde_json::json!("no")),
        without("arch"),
        with("iterations_to_catch", serde_json::json!(-1)),
        with("kind", serde_json::json!("other")),
        with("decisions", serde_json::json!(-5)),
    ];
    for b in bad {
        assert!(validate(&s, &s, &b, "").is_err(), "accepted {b}");
    }
}

/// Checks `v` against `s` (a schema within `root`); the error names the path.
fn validate(root: &Value, s: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r
            .strip_prefix("#/$defs/")
            .ok_or(format!("{at}: unsupported $ref {r}"))?;
        return validate(root, &root["$defs"][name], v, at);
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return Err(format!("{at}: bad type {t}")),
        };
        let ok = types.iter().any(|t| match *t {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            _ => false,
        });
        if !ok {
            return Err(format!("{at}: {v} is not of type {t}"));
        }
    }
    if let (Some(min), Some(x)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if x < min {
            return Err(format!("{at}: {x} is below the minimum {min}"));
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            return Err(format!("{at}: {v} is not {c}"));
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            return Err(format!("{at}: {v} is not one of {e:?}"));
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            let matching = alts
                .iter()
                .filter(|a| validate(root, a, v, at).is_ok())
                .count();
            if matching == 0 || (key == "oneOf" && matching > 1) {
                return Err(format!("{at}: {v} matches {matching} of the {key} schemas"));
            }
        }
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap_or_default();
            if !obj.contains_key(r) {
                return Err(format!("{at}: no key {r}"));
            }
        }
        for (k, x) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(root, ps, x, &format!("{at}.{k}"))?,
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{at}: key {k} is not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            validate(root, items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}
