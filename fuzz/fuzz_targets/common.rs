// Shared by every target: parse the input strictly and leniently as one format, then
// run who-is-who and the schedule builder on what was parsed. Nothing may panic.
use lazymm_trace::tasks::{census, KthreadRules};
use lazymm_trace::{parse_bytes, schedule::schedule, Format, Options};

pub fn run(format: Format, data: &[u8]) {
    let _ = parse_bytes(
        "fuzz",
        data,
        &Options {
            format: Some(format),
            lenient: false,
        },
    );
    if let Ok(t) = parse_bytes(
        "fuzz",
        data,
        &Options {
            format: Some(format),
            lenient: true,
        },
    ) {
        let c = census(&t, &KthreadRules::builtin());
        let _ = c.guessed();
        let s = schedule(&t);
        assert!(s.trace_switches + s.self_switches == t.stats.count("sched_switch"));
    }
}
