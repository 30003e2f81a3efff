//! The house rules, checked on the source the way the route/OpenAPI test checks the
//! contract: a change that breaks one fails here, naming the file and the rule.
//!
//! - `src/service` has three tiers: `model` (data) ← `kernel` (mechanisms) ← `ops` (use
//!   cases). A tier uses only the tiers below it; no use case uses another (not by a path,
//!   not by calling a `Sigil` method defined in another use case's file); the model and
//!   the kernel have no import cycle.
//! - Every commit goes through the one mutation path: outside `kernel/mutation.rs` and the
//!   journal it drives, nothing in `src/service` calls the store's commit or apply, the
//!   journal's commit functions, or defines a retry bound.
//! - Layers: `store` imports neither `crypto` nor the process error nor anything above
//!   it; `crypto` does no file I/O and imports nothing above it; `http` never touches
//!   `crypto` or `store` (handlers get paths, never keys); file I/O lives at the process
//!   edge (`datadir`, `config`, `main`) and in the store engine's own files.
//!
//! Test modules (`#[cfg(test)]`) are left out: tests may reach across tiers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, relative to `src/`, with its non-test source (comments
/// and string contents removed).
fn sources(dir: &Path) -> BTreeMap<String, String> {
    sources_with(dir, false)
}

/// [`sources`], keeping string literals.
fn sources_with_strings(dir: &Path) -> BTreeMap<String, String> {
    sources_with(dir, true)
}

fn sources_with(dir: &Path, keep_strings: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(src()).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(rel, strip_tests(&std::fs::read_to_string(&p).unwrap(), keep_strings));
            }
        }
    }
    // A file that is itself a test module.
    out.remove("service/ops/races.rs");
    out
}

/// The source without `#[cfg(test)]` items and comments (and string contents unless kept).
fn strip_tests(s: &str, keep_strings: bool) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "#[cfg(test)]" {
            // Skip the next item: up to its matching closing brace, or a `;` line.
            i += 1;
            let mut depth = 0i32;
            let mut opened = false;
            while i < lines.len() {
                let l = code(lines[i]);
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                opened |= l.contains('{');
                i += 1;
                if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        if keep_strings {
            out.push_str(lines[i].split(" //").next().unwrap_or(""));
        } else {
            out.push_str(&code(lines[i]));
        }
        out.push('\n');
        i += 1;
    }
    out
}

/// A line without its `//` comment and string contents (good enough for this source).
fn code(line: &str) -> String {
    let mut out = String::new();
    let mut in_str = false;
    let mut prev = ' ';
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_str {
            if c == '"' && prev != '\\' {
                in_str = false;
                out.push('"');
            }
            prev = if prev == '\\' && c == '\\' { ' ' } else { c };
            continue;
        }
        if c == '/' && chars.peek() == Some(&'/') {
            break;
        }
        if c == '"' {
            in_str = true;
            prev = ' ';
        }
        out.push(c);
    }
    out
}

/// `service/<tier>/<name>.rs` → (tier, name).
fn module_of(rel: &str) -> Option<(&str, &str)> {
    let rest = rel.strip_prefix("service/")?;
    let (tier, file) = rest.split_once('/')?;
    let name = file.strip_suffix(".rs")?;
    (name != "mod").then_some((tier, name))
}

/// The `Sigil` methods defined in `src` (inside `impl Sigil` blocks).
fn sigil_methods(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut depth = 0i32;
    let mut in_impl: Option<i32> = None;
    for line in src.lines() {
        if in_impl.is_none() && line.starts_with("impl Sigil {") {
            in_impl = Some(depth);
        }
        if let Some(base) = in_impl {
            if depth == base + 1 {
                let t = line.trim_start();
                let t = t.strip_prefix("pub(crate) ").or_else(|| t.strip_prefix("pub ")).unwrap_or(t);
                let t = t.strip_prefix("pub(in crate::service::kernel) ").unwrap_or(t);
                let t = t.strip_prefix("async ").unwrap_or(t);
                if let Some(rest) = t.strip_prefix("fn ") {
                    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    out.insert(name);
                }
            }
        }
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        if in_impl.is_some_and(|base| depth <= base) {
            in_impl = None;
        }
    }
    out
}

/// The service modules a file uses, by path (`crate::service::{tier}::{name}` and the
/// re-exported `crate::service::{name}`), and by calling another file's `Sigil` methods.
/// A service module: (tier, file stem).
type Module = (String, String);
/// Each module's uses: the module used, and how (a path or a call).
type Edges = BTreeMap<Module, BTreeSet<(Module, String)>>;

fn service_edges(files: &BTreeMap<String, String>) -> Edges {
    // Where each re-exported short path points (`crate::service::agents` → ops/agents).
    let root = &files["service/mod.rs"];
    let mut alias: BTreeMap<String, (String, String)> = BTreeMap::new();
    for line in root.lines() {
        for tier in ["kernel", "model", "ops"] {
            if let Some(rest) = line.strip_prefix(&format!("pub use {tier}::{{")) {
                for name in rest.trim_end_matches("};").split(',') {
                    let name = name.trim();
                    if !name.is_empty() && name.chars().all(|c| c.is_lowercase() || c == '_') {
                        alias.insert(name.to_owned(), (tier.to_owned(), name.to_owned()));
                    }
                }
            }
        }
    }
    let mut owner: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (rel, text) in files {
        if let Some((tier, name)) = module_of(rel) {
            for m in sigil_methods(text) {
                owner.insert(m, (tier.to_owned(), name.to_owned()));
            }
        }
    }
    let mut edges = BTreeMap::new();
    for (rel, text) in files {
        let Some((tier, name)) = module_of(rel) else { continue };
        let me = (tier.to_owned(), name.to_owned());
        let mut out: BTreeSet<((String, String), String)> = BTreeSet::new();
        for (i, _) in text.match_indices("crate::service::") {
            let rest = &text[i + "crate::service::".len()..];
            let seg: Vec<&str> = rest.split("::").take(2).collect();
            let first: String = seg[0].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let target = if ["kernel", "model", "ops"].contains(&first.as_str()) && seg.len() > 1 {
                let second: String = seg[1].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                Some((first.clone(), second))
            } else {
                alias.get(&first).cloned()
            };
            if let Some(t) = target {
                if t != me {
                    out.insert((t, format!("path crate::service::{}", rest.split(['{', ';', ' ', '(']).next().unwrap_or(""))));
                }
            }
        }
        for (i, _) in text.match_indices('.') {
            let rest = &text[i + 1..];
            let ident: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if ident.is_empty() || !rest[ident.len()..].starts_with('(') {
                continue;
            }
            if let Some(t) = owner.get(&ident) {
                if *t != me {
                    out.insert((t.clone(), format!("calls Sigil::{ident}")));
                }
            }
        }
        edges.insert(me, out);
    }
    edges
}

#[test]
fn service_tiers_point_one_way() {
    let files = sources(&src().join("service"));
    let edges = service_edges(&files);
    let rank = |t: &str| match t {
        "model" => 0,
        "kernel" => 1,
        _ => 2,
    };
    let mut bad = Vec::new();
    for ((tier, name), outs) in &edges {
        for ((t2, n2), why) in outs {
            if rank(t2) > rank(tier) {
                bad.push(format!("{tier}/{name} uses the higher tier {t2}/{n2} ({why})"));
            } else if tier == "ops" && t2 == "ops" {
                bad.push(format!("use case {name} uses use case {n2} ({why}); move the shared step to the kernel"));
            }
        }
    }
    for (rel, text) in &files {
        if rel.starts_with("service/model/") && text.contains("Sigil") {
            bad.push(format!("{rel}: the model must not know the Sigil type"));
        }
    }
    assert!(bad.is_empty(), "tier rules broken:\n  {}", bad.join("\n  "));
}

#[test]
fn kernel_and_model_have_no_import_cycle() {
    let files = sources(&src().join("service"));
    let edges = service_edges(&files);
    let graph: BTreeMap<&(String, String), Vec<&(String, String)>> = edges
        .iter()
        .filter(|((t, _), _)| t != "ops")
        .map(|(k, outs)| (k, outs.iter().map(|(t, _)| t).filter(|(t, _)| t != "ops").collect()))
        .collect();
    // Depth-first search for a back edge; reports the cycle it closes.
    fn visit<'a>(
        n: &'a (String, String),
        g: &BTreeMap<&'a (String, String), Vec<&'a (String, String)>>,
        stack: &mut Vec<&'a (String, String)>,
        done: &mut BTreeSet<&'a (String, String)>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|s| *s == n) {
            let mut cyc: Vec<String> = stack[pos..].iter().map(|(t, m)| format!("{t}/{m}")).collect();
            cyc.push(format!("{}/{}", n.0, n.1));
            return Some(cyc);
        }
        if !done.insert(n) {
            return None;
        }
        stack.push(n);
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, &graph, &mut Vec::new(), &mut done) {
            let why: Vec<String> = c
                .windows(2)
                .map(|w| {
                    let from = w[0].split_once('/').map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap();
                    let to = w[1].split_once('/').map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap();
                    let reasons: Vec<&String> = edges[&from].iter().filter(|(t, _)| *t == to).map(|(_, r)| r).collect();
                    format!("{} → {}: {:?}", w[0], w[1], reasons)
                })
                .collect();
            panic!("import cycle: {}\n  {}", c.join(" → "), why.join("\n  "));
        }
    }
}

#[test]
fn every_commit_goes_through_the_mutation_path() {
    let files = sources(&src().join("service"));
    let allowed = ["service/kernel/mutation.rs", "service/kernel/journal.rs"];
    let forbidden = [
        "store.commit(",
        "store.apply(",
        ".commit_audited(",
        ".try_commit_audited(",
        ".commit_audited_with(",
        ".commit_first_entry(",
        "MAX_ATTEMPTS",
        "MAX_RETRIES",
    ];
    let mut bad = Vec::new();
    for (rel, text) in &files {
        if allowed.contains(&rel.as_str()) {
            continue;
        }
        for f in forbidden {
            if text.contains(f) {
                bad.push(format!("{rel}: `{f}` outside the mutation path"));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Every non-test line of `src/{dir}` that contains one of `needles`.
fn offending(dir: &str, needles: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in sources(&src().join(dir)) {
        for (n, line) in text.lines().enumerate() {
            for needle in needles {
                if line.contains(needle) {
                    out.push(format!("{rel}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    out
}

#[test]
fn layers_point_downwards() {
    let mut bad = Vec::new();
    bad.extend(offending("store", &["crate::crypto", "crate::error", "crate::service", "crate::http", "crate::datadir"]));
    bad.extend(offending("crypto", &["crate::store", "crate::service", "crate::http", "crate::datadir"]));
    bad.extend(offending("http", &["crate::crypto", "crate::store", "crate::datadir"]));
    for lower in ["vc", "policy", "audit"] {
        bad.extend(offending(lower, &["crate::service", "crate::http", "crate::store", "crate::datadir"]));
    }
    bad.extend(offending("service", &["crate::http"]));
    assert!(bad.is_empty(), "layer rules broken:\n  {}", bad.join("\n  "));
}

#[test]
fn file_io_lives_at_the_process_edge() {
    let io = ["std::fs", "tokio::fs", "File::", "OpenOptions", "DirBuilder"];
    // The process edge, and the store engine's own files (its database and journal).
    let allowed = ["datadir.rs", "config.rs", "main.rs", "store/sled_store.rs", "store/journal.rs"];
    let mut bad = Vec::new();
    for (rel, text) in sources(&src()) {
        if allowed.contains(&rel.as_str()) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if io.iter().any(|needle| line.contains(needle)) {
                bad.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "file I/O outside the process edge:\n  {}", bad.join("\n  "));
}

#[test]
fn problem_codes_are_spelled_once() {
    // The wire strings of `sigil::codes::ErrorCode`, read from its source.
    let codes_src = std::fs::read_to_string(src().join("codes.rs")).unwrap();
    let codes: Vec<String> =
        codes_src.lines().filter_map(|l| l.trim().split_once(" => \"").map(|(_, s)| s.trim_end_matches("\",").to_owned())).collect();
    assert!(codes.len() > 30, "read {} codes from src/codes.rs", codes.len());
    let mut bad = Vec::new();
    for dir in ["service", "http", "policy"] {
        for (rel, text) in sources_with_strings(&src().join(dir)) {
            // Documentation (`//!`, `///`) and attributes (OpenAPI examples) may name codes.
            let code_lines: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//") && !l.trim_start().starts_with("#["))
                .collect::<Vec<_>>()
                .join("\n");
            for code in &codes {
                if code_lines.contains(&format!("\"{code}\"")) {
                    bad.push(format!("{rel}: \"{code}\" spelled out; use ErrorCode"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn mechanisms_take_typed_ids() {
    // A tenant or agent crosses the service as `TenantId` / `AgentId`, parsed once at the
    // edge; a `&str` parameter with those names is a string that skipped the parse.
    let mut bad = Vec::new();
    for (rel, text) in sources(&src().join("service")) {
        let flat = text.replace('\n', " ");
        for (i, _) in flat.match_indices("fn ") {
            let sig: String = flat[i..].chars().take_while(|c| *c != '{' && *c != ';').collect();
            for name in ["tenant", "t", "agent", "a"] {
                for ty in [": &str", ": Option<&str>", ": &String"] {
                    if sig.contains(&format!("({name}{ty}")) || sig.contains(&format!(" {name}{ty}")) {
                        bad.push(format!("{rel}: `{}` takes {name}{ty}", sig.split('(').next().unwrap_or("").trim()));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "untyped ids:\n  {}", bad.join("\n  "));
}
