//! The one look of every HTML page the tool writes: a minijinja base template
//! (`templates/base.html`: the head and its CSS, the header, the navigation, the
//! marking of what the numbers are, the footer) that each page extends with its
//! `{% block content %}`.
//!
//! A page is rendered with [`render`]: its template, what [`Kind`] of numbers it shows,
//! its sections for the navigation, and its own context. Templates are named `*.html`,
//! so minijinja escapes every value for HTML; markup goes in only through
//! `Value::from_safe_string` (the charts this crate draws).

use super::columns::Column;
use super::svg::Chart;
use minijinja::{context, Environment, Value};

/// The base template every page extends.
pub const BASE_HTML: &str = include_str!("templates/base.html");

/// The parts every report page shows the same way (`{% import "parts.html" as parts %}`):
/// `parts.charts(charts)` and `parts.table(columns, rows)`.
pub const PARTS_HTML: &str = include_str!("templates/parts.html");

/// The sections of a report page, for its navigation.
pub const REPORT_NAV: &[(&str, &str)] = &[
    ("summary", "Summary"),
    ("charts", "Charts"),
    ("table", "Table"),
    ("terminal", "Terminal table"),
];

/// The charts as the page's `charts`: each SVG inline (the one markup put on a page,
/// drawn by this crate), its caption and its file.
pub fn charts<'c>(charts: impl IntoIterator<Item = (&'c Chart, &'c str)>) -> Vec<Value> {
    charts
        .into_iter()
        .map(|(c, caption)| {
            context! {
                svg => Value::from_safe_string(c.svg.clone()),
                caption => caption,
                file => c.file,
            }
        })
        .collect()
}

/// The table's head as the page's `columns`.
pub fn columns(columns: &[Column]) -> Vec<Value> {
    columns
        .iter()
        .map(|c| context! { head => c.head, means => c.means })
        .collect()
}

/// The table's rows as the page's `rows`: each serialized row's cells under `columns`;
/// `row_class(i)` is row `i`'s class, `cell_class(i, column)` what a cell adds to its
/// alignment's class.
pub fn rows(
    columns: &[Column],
    rows: &[serde_json::Value],
    row_class: impl Fn(usize) -> &'static str,
    cell_class: impl Fn(usize, &Column) -> &'static str,
) -> Vec<Value> {
    rows.iter()
        .enumerate()
        .map(|(i, v)| {
            let cells: Vec<Value> = columns
                .iter()
                .map(|c| {
                    let align = if c.left { "l" } else { "" };
                    context! {
                        text => c.cell.format(v),
                        class => format!("{align} {}", cell_class(i, c)).trim().to_string(),
                    }
                })
                .collect();
            context! { cells => cells, class => row_class(i) }
        })
        .collect()
}

/// What the numbers on a page are: the marking in its header and its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Timed on this host (`lazymm bench`).
    Measurement,
    /// Computed by a coherence cost model of a machine (`lazymm predict`).
    Prediction,
    /// Counted by the model on a recorded schedule (`lazymm replay`).
    Replay,
    /// A real kernel's own counts beside the model's on the same schedule (`lazymm lab`).
    Lab,
}

impl Kind {
    /// The CSS class suffix (`kind-measurement`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Measurement => "measurement",
            Kind::Prediction => "prediction",
            Kind::Replay => "replay",
            Kind::Lab => "lab",
        }
    }

    /// The marking in the header.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Measurement => "Measurement",
            Kind::Prediction => "Prediction",
            Kind::Replay => "Replay",
            Kind::Lab => "Real kernel",
        }
    }

    /// The sentence under the header that says what the numbers are.
    pub fn note(self) -> &'static str {
        match self {
            Kind::Measurement => "Every number below was timed on the machine named below, running the model natively, one thread per simulated CPU.",
            Kind::Prediction => "Every number below is computed by the simulator from the model's own recorded accesses, priced by a coherence cost model of the machine named below: a prediction, not a measurement.",
            Kind::Replay => "Every number below is counted by the model while it replays a recorded schedule, once per scheme and arch: what each scheme's bookkeeping did on that schedule, not a timing.",
            Kind::Lab => "The kernel's numbers are counted from its own trace events, recorded in a guest under QEMU; the model's are counted while it replays that same schedule. Counts and decisions are valid; rates are per guest second (see Time), not a measurement of any machine.",
        }
    }
}

/// One page: its template and what the base needs to know about it.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    /// The template's name (ending in `.html`).
    pub name: &'static str,
    /// The template's text: `{% extends "base.html" %}` and a `content` block.
    pub source: &'static str,
    /// The subcommand whose report it is (`bench`).
    pub subcommand: &'static str,
    /// What its numbers are.
    pub kind: Kind,
    /// Its sections, as `(id, title)`, for the navigation.
    pub nav: &'a [(&'static str, &'static str)],
}

/// Renders `page` with its own context `ctx` over the base template.
pub fn render(page: &Page<'_>, ctx: Value) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.add_template("base.html", BASE_HTML)?;
    env.add_template("parts.html", PARTS_HTML)?;
    env.add_template(page.name, page.source)?;
    let nav: Vec<Value> = page
        .nav
        .iter()
        .map(|(id, title)| context! { id => id, title => title })
        .collect();
    env.get_template(page.name)?.render(context! {
        subcommand => page.subcommand,
        kind => page.kind.name(),
        kind_label => page.kind.label(),
        kind_note => page.kind.note(),
        version => env!("CARGO_PKG_VERSION"),
        nav => nav,
        ..ctx
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHILD: &str =
        "{% extends \"base.html\" %}{% block content %}<p id=\"x\">{{ text }}</p>{% endblock %}";

    #[test]
    fn a_page_gets_the_base_look_and_its_kind_and_escapes_its_values() {
        for kind in [Kind::Measurement, Kind::Prediction, Kind::Replay, Kind::Lab] {
            let page = Page {
                name: "child.html",
                source: CHILD,
                subcommand: "demo",
                kind,
                nav: &[("x", "The x")],
            };
            let html = render(&page, context! { text => "<b>&" }).expect("renders");
            assert!(html.starts_with("<!DOCTYPE html>"));
            assert!(html.contains(&format!("class=\"kind kind-{}\"", kind.name())));
            // The note is text: escaped like every value (its apostrophes too).
            assert!(
                html.contains(&kind.note().replace('\'', "&#x27;")),
                "{html}"
            );
            assert!(html.contains("<a href=\"#x\">The x</a>"));
            assert!(html.contains("<p id=\"x\">&lt;b&gt;&amp;</p>"), "{html}");
            assert!(html.contains("<footer>"));
        }
    }
}
