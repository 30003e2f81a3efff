//! The `sigil` command line: `serve`, `openapi`, and the tools beside them.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sigil::config::{Config, LogFormat, ServeArgs};
use sigil::error::SigilError;

/// mimalloc rather than glibc malloc: under load the server spent about 12% of its CPU in
/// glibc's allocator (`_int_malloc`, `cfree`, `malloc_consolidate`; perf on the
/// presentation hot path), where per-request JSON, sled's page cache and TLS buffers
/// allocate and free across threads. See docs/PERFORMANCE.md for the measured difference.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "sigil", version, about = "Cloud ID wallet for AI agents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTPS API server.
    Serve(Box<ServeArgs>),
    /// Print the OpenAPI document.
    Openapi,
    /// Re-wrap every tenant data key under a new root key (server stopped). The current root
    /// key comes from the same options as `serve` (--root-key-file or SIGIL_ROOT_PASSPHRASE).
    RotateRootKey(RotateRootArgs),
    /// Rotate or revoke the operator token on a stopped data directory. The root key comes
    /// from the same options as `serve` (--root-key-file or SIGIL_ROOT_PASSPHRASE).
    #[command(subcommand)]
    OperatorToken(OperatorTokenCmd),
    /// Download a consistent backup from a running server (operator token).
    Backup(BackupArgs),
    /// Rebuild an empty data directory from a backup file (server stopped).
    Restore(RestoreArgs),
    /// Audit trail tools.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Verify a presentation (ldp_vp JSON or jwt_vp compact JWS) from FILE ('-' for stdin).
    /// Exit code 0 only when verified.
    Verify(VerifyArgs),
    /// Serve MCP on stdin/stdout for a local MCP host, forwarding every message to a Sigil
    /// server's /mcp with an agent token (newline-delimited JSON-RPC; logs go to stderr).
    Mcp(McpArgs),
    /// Fast seeding for benchmarks and capacity tests (server stopped): one new tenant and N
    /// agents with an identity and a delegation each, flushed once at the end.
    Seed(SeedArgs),
}

#[derive(Debug, Subcommand)]
enum OperatorTokenCmd {
    /// Replace every operator token with a new one, written to --out (mode 0600).
    Rotate {
        /// Where to write the new token. Keep it outside the data directory.
        #[arg(long)]
        out: std::path::PathBuf,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Revoke every operator token: the operator routes answer 401 until `rotate`.
    Revoke {
        #[command(flatten)]
        serve: ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCmd {
    /// Verify an exported trail (JSON Lines) offline: hash chain, and signed checkpoints
    /// against the audit keys of the tenant, taken from a pinned DID document or a trusted
    /// tenant URL (never from the export). Exit code 0 only when every entry is intact and
    /// the export ends with a checkpoint.
    Verify(AuditVerifyArgs),
    /// Watch a tenant's published checkpoints: prove that the latest extends the last one
    /// this watcher accepted (kept in --state), re-hashing every entry between them with an
    /// auditor token. Exit code 1 and a FAIL line on a lower sequence (rollback), another
    /// head at the same sequence (fork) or a chain that does not extend.
    Watch(AuditWatchArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("anchor").required(true).args(["did_document", "trust_tenant"])))]
struct AuditVerifyArgs {
    /// The export (`GET /v1/tenants/{tenant}/audit/export`).
    file: std::path::PathBuf,
    /// The tenant's DID document (JSON), pinned from a source you trust; its `id` must be
    /// the DID of the export's tenant.
    #[arg(long)]
    did_document: Option<std::path::PathBuf>,
    /// The tenant's URL, `https://host[:port]/tenants/{t}`, which you trust: its DID
    /// document is resolved from there.
    #[arg(long)]
    trust_tenant: Option<String>,
    /// Extra PEM CA for fetching the DID document (a development server's tls/ca.pem).
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// Let the fetch reach `HOST` or `HOST:PORT` beyond public addresses on port 443.
    #[arg(long)]
    resolver_allow: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct AuditWatchArgs {
    /// The tenant's URL, `https://host[:port]/tenants/{t}`: its DID document and latest
    /// checkpoint (`…/audit/checkpoint`) are read from there.
    url: String,
    /// The watcher's memory: the last checkpoint it accepted. Created by the first run
    /// (which re-hashes the whole trail); rewritten only after a successful check.
    #[arg(long)]
    state: std::path::PathBuf,
    /// File holding an auditor (or admin) token of the tenant, to read the entries.
    #[arg(long)]
    token_file: std::path::PathBuf,
    /// Extra PEM CA to trust (a development server's tls/ca.pem).
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// Check again every SECONDS until a check fails (default: check once).
    #[arg(long)]
    interval: Option<u64>,
}

fn audit_verify_cmd(a: AuditVerifyArgs) -> ExitCode {
    use sigil::audit::{Entry, verify_trail};
    let text = match std::fs::read_to_string(&a.file) {
        Ok(t) => t,
        Err(e) => return fail(SigilError::Config(format!("cannot read {}: {e}", a.file.display()))),
    };
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str::<Entry>(line) {
            Ok(e) => entries.push(e),
            Err(e) => {
                println!("FAIL line {}: not an audit entry ({e})", i + 1);
                return ExitCode::from(1);
            }
        }
    }
    let Some(tenant) = entries.first().map(|e| e.tenant.clone()) else {
        println!("FAIL the export is empty");
        return ExitCode::from(1);
    };
    // The keys come from what the auditor trusts, never from the export: anyone can
    // re-chain entries and sign a checkpoint with a key of their own.
    let doc: serde_json::Value = match (&a.did_document, &a.trust_tenant) {
        (Some(p), _) => {
            match std::fs::read(p).map_err(|e| e.to_string()).and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string())) {
                Ok(d) => d,
                Err(e) => return fail(SigilError::Config(format!("cannot read DID document {}: {e}", p.display()))),
            }
        }
        (None, Some(url)) => {
            let did = match sigil::vc::trust::tenant_did_of_url(url) {
                Ok(d) => d,
                Err(e) => return fail(SigilError::Config(format!("--trust-tenant {e}"))),
            };
            let resolver = match cli_resolver(a.ca.as_deref(), &a.resolver_allow) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return fail(SigilError::Startup(e.to_string())),
            };
            match rt.block_on(sigil::verify::Resolver::resolve_did(&resolver, &did)) {
                Ok(d) => std::sync::Arc::unwrap_or_clone(d),
                Err(e) => return fail(SigilError::Startup(format!("could not resolve {did}: {e}"))),
            }
        }
        (None, None) => return fail(SigilError::Config("pass --did-document FILE or --trust-tenant URL".into())),
    };
    let report = verify_trail(&entries, &doc);
    match &report.first_bad {
        Some(b) => {
            println!("FAIL entry {} (line {}): {}", b.seq.map(|s| s.to_string()).unwrap_or_default(), b.position + 1, b.reason);
            ExitCode::from(1)
        }
        None if entries.last().is_some_and(|e| e.event != sigil::audit::CHECKPOINT_EVENT) => {
            println!("FAIL the export does not end with a signed checkpoint; its tail is unauthenticated");
            ExitCode::from(1)
        }
        None => {
            println!(
                "ok: tenant {tenant}, {} entries, {} signed checkpoints, head {}",
                report.entries, report.checkpoints, report.head_hash
            );
            ExitCode::SUCCESS
        }
    }
}

fn audit_watch_cmd(a: AuditWatchArgs) -> ExitCode {
    use sigil::monitor::{Seen, WatchError, WatchedTenant, client, watch_once};
    let tenant = match WatchedTenant::from_url(&a.url) {
        Ok(t) => t,
        Err(e) => return fail(SigilError::Config(e)),
    };
    let token = match std::fs::read_to_string(&a.token_file) {
        Ok(t) => t.trim().to_owned(),
        Err(e) => return fail(SigilError::Config(format!("cannot read {}: {e}", a.token_file.display()))),
    };
    let ca = match a.ca.as_deref().map(std::fs::read).transpose() {
        Ok(c) => c,
        Err(e) => return fail(SigilError::Config(format!("cannot read the CA file: {e}"))),
    };
    let http = match client(ca.as_deref(), !a.url.starts_with("http://")) {
        Ok(c) => c,
        Err(e) => return fail(SigilError::Config(e)),
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(SigilError::Startup(e.to_string())),
    };
    loop {
        let last: Option<Seen> = match std::fs::read(&a.state) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(s) => Some(s),
                Err(e) => return fail(SigilError::Config(format!("{} is not a watcher state: {e}", a.state.display()))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return fail(SigilError::Config(format!("cannot read {}: {e}", a.state.display()))),
        };
        match rt.block_on(watch_once(&http, &tenant, &token, last.as_ref())) {
            Ok(acc) => {
                let cp = &acc.seen.checkpoint;
                match (&last, acc.rehashed) {
                    (None, n) => {
                        println!("ok: {}: first checkpoint seen, seq {} head {} ({n} entries re-hashed)", tenant.did, cp.seq, cp.head)
                    }
                    (Some(_), 0) => println!("ok: {}: no new checkpoint since seq {}", tenant.did, cp.seq),
                    (Some(_), n) => println!(
                        "ok: {}: checkpoint seq {} head {} extends seq {} ({n} entries re-hashed)",
                        tenant.did, cp.seq, cp.head, acc.from_seq
                    ),
                }
                let state = match serde_json::to_vec_pretty(&acc.seen) {
                    Ok(s) => s,
                    Err(e) => return fail(SigilError::Startup(e.to_string())),
                };
                if let Err(e) = sigil::datadir::write_private_file(&a.state, &state) {
                    return fail(e);
                }
            }
            Err(WatchError::Inconsistent(why)) => {
                println!("FAIL {}: {why}", tenant.did);
                eprintln!(
                    "sigil: ALERT: the audit trail of {} is not the one this watcher saw before; state kept in {}",
                    tenant.did,
                    a.state.display()
                );
                return ExitCode::from(1);
            }
            Err(e @ WatchError::Unavailable(_)) => return fail(SigilError::Startup(e.to_string())),
        }
        match a.interval {
            Some(secs) => std::thread::sleep(std::time::Duration::from_secs(secs.max(1))),
            None => return ExitCode::SUCCESS,
        }
    }
}

#[derive(Debug, clap::Args)]
struct BackupArgs {
    /// Base URL of the server, e.g. https://127.0.0.1:8443.
    #[arg(long)]
    url: String,
    /// File holding the operator token.
    #[arg(long)]
    token_file: std::path::PathBuf,
    /// Extra PEM CA to trust (a development server's tls/ca.pem).
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// Where to write the backup.
    #[arg(long)]
    out: std::path::PathBuf,
}

#[derive(Debug, clap::Args)]
struct McpArgs {
    /// Base URL of the server, e.g. https://127.0.0.1:8443.
    #[arg(long)]
    url: String,
    /// File holding the agent's token.
    #[arg(long)]
    token_file: std::path::PathBuf,
    /// Extra PEM CA to trust (a development server's tls/ca.pem).
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
}

/// `sigil mcp`: stdin lines in, `/mcp` answers out, one at a time and in order.
fn mcp_cmd(a: McpArgs) -> ExitCode {
    use std::io::{BufRead, Write};
    let token = match std::fs::read_to_string(&a.token_file) {
        Ok(t) => t.trim().to_owned(),
        Err(e) => return fail(SigilError::Config(format!("cannot read {}: {e}", a.token_file.display()))),
    };
    let ca = match a.ca.as_deref().map(std::fs::read).transpose() {
        Ok(c) => c,
        Err(e) => return fail(SigilError::Config(format!("cannot read the CA file: {e}"))),
    };
    // The same client as the other commands that call a server: HTTPS only (unless the URL
    // says http://), the system roots plus --ca, no redirects, no proxy.
    let http = match sigil::monitor::client(ca.as_deref(), !a.url.starts_with("http://")) {
        Ok(c) => c,
        Err(e) => return fail(SigilError::Config(e)),
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(SigilError::Startup(e.to_string())),
    };
    let mut bridge = sigil::mcp_bridge::Bridge::new(http, &a.url, token);
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => return fail(SigilError::Startup(format!("stdin: {e}"))),
        };
        if line.trim().is_empty() {
            continue;
        }
        if let Some(answer) = rt.block_on(bridge.forward(&line)) {
            // A host that closed stdout is gone: end quietly.
            if writeln!(out, "{answer}").and_then(|()| out.flush()).is_err() {
                return ExitCode::SUCCESS;
            }
        }
    }
    ExitCode::SUCCESS
}

#[derive(Debug, clap::Args)]
struct RestoreArgs {
    /// Empty data directory to restore into (sled).
    #[arg(long, required_unless_present = "store", conflicts_with = "store")]
    data: Option<std::path::PathBuf>,
    /// Empty PostgreSQL database to restore into instead (`postgres://…`; the password
    /// from SIGIL_STORE_PASSWORD[_FILE]).
    #[arg(long)]
    store: Option<String>,
    /// Backup file (`sigil backup`).
    #[arg(long = "in", required_unless_present = "after_pg_restore")]
    input: Option<std::path::PathBuf>,
    /// With --store, no backup file: the database was just restored with pg_restore.
    /// Marks it restored (presentations created before now are refused, as after
    /// `sigil restore`: challenges spent after the dump are not in it).
    #[arg(long, requires = "store", conflicts_with = "input")]
    after_pg_restore: bool,
}

fn backup_cmd(a: BackupArgs) -> ExitCode {
    let run = async {
        let token = std::fs::read_to_string(&a.token_file)
            .map_err(|e| SigilError::Config(format!("cannot read {}: {e}", a.token_file.display())))?;
        let mut b = reqwest::Client::builder().https_only(!a.url.starts_with("http://"));
        if let Some(ca) = &a.ca {
            let pem = std::fs::read(ca).map_err(|e| SigilError::Config(format!("cannot read {}: {e}", ca.display())))?;
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).map_err(|e| SigilError::Config(e.to_string()))?);
        }
        let client = b.build().map_err(|e| SigilError::Startup(e.to_string()))?;
        let url = format!("{}/v1/system/backup", a.url.trim_end_matches('/'));
        let resp = client.get(&url).bearer_auth(token.trim()).send().await.map_err(|e| SigilError::Startup(format!("{url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(SigilError::Startup(format!("{url}: HTTP {}", resp.status().as_u16())));
        }
        let bytes = resp.bytes().await.map_err(|e| SigilError::Startup(e.to_string()))?;
        sigil::store::backup::decode(&bytes).map_err(SigilError::Startup)?;
        sigil::datadir::write_private_file(&a.out, &bytes)?;
        Ok::<usize, SigilError>(bytes.len())
    };
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => match rt.block_on(run) {
            Ok(n) => {
                println!("wrote {} ({n} bytes)", a.out.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Err(e) => fail(SigilError::Startup(e.to_string())),
    }
}

#[derive(Debug, clap::Args)]
struct RotateRootArgs {
    /// File holding the new 32-byte root key.
    #[arg(long)]
    new_root_key_file: std::path::PathBuf,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, clap::Args)]
struct SeedArgs {
    /// Tenant id to create.
    #[arg(long, default_value = "bench")]
    tenant: String,
    /// Number of agents.
    #[arg(long)]
    agents: u64,
    /// Agents (spread evenly) whose access tokens are written to --tokens-out.
    #[arg(long, default_value_t = 1000)]
    hot: u64,
    /// Output file (mode 0600) for the tenant admin token and the hot agents' tokens.
    #[arg(long)]
    tokens_out: std::path::PathBuf,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// File holding the presentation.
    file: std::path::PathBuf,
    /// Expected challenge.
    #[arg(long)]
    challenge: Option<String>,
    /// Expected domain.
    #[arg(long)]
    domain: Option<String>,
    /// Expected action as JSON: {"action": …, "resource": …, "context": {…}}.
    #[arg(long)]
    action: Option<String>,
    /// Extra PEM CA to trust for did:web and status lists (e.g. a dev server's tls/ca.pem).
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// Do not fetch status lists.
    #[arg(long)]
    no_status: bool,
    /// Trust this issuer DID (`DID` or `DID=Type1,Type2`). Repeatable. Without --trust or
    /// --trust-tenant nothing is trusted, and nothing verifies.
    #[arg(long)]
    trust: Vec<String>,
    /// Trust a Sigil tenant (`https://host[:port]/tenants/{t}`), only for its own agents, or
    /// every tenant of a deployment (`https://host[:port]`). Repeatable.
    #[arg(long)]
    trust_tenant: Vec<String>,
    /// Let fetches reach `HOST` or `HOST:PORT` although it is not a public address on port
    /// 443 (a development server: `--resolver-allow 127.0.0.1:8443`). Repeatable.
    #[arg(long)]
    resolver_allow: Vec<String>,
    /// A JSON-LD context for `eddsa-rdfc-2022` proofs beside the bundled ones: `URL=PATH`.
    /// Repeatable. Contexts are never fetched.
    #[arg(long)]
    jsonld_context: Vec<String>,
    /// Refuse proofs that expire further than this many seconds ahead.
    #[arg(long)]
    max_ttl: Option<u64>,
}

/// The HTTP resolver the CLI commands use: the egress policy plus `allow`, and `ca`.
fn cli_resolver(ca: Option<&std::path::Path>, allow: &[String]) -> Result<sigil::verify::HttpResolver, SigilError> {
    let extra_ca_pem = match ca {
        Some(p) => Some(std::fs::read(p).map_err(|e| SigilError::Config(format!("cannot read CA file {}: {e}", p.display())))?),
        None => None,
    };
    let egress = sigil::verify::EgressPolicy::with_allowed(allow).map_err(SigilError::Config)?;
    sigil::verify::HttpResolver::new(sigil::verify::ResolverConfig { extra_ca_pem, egress, cache_bytes: 0 }).map_err(SigilError::Config)
}

fn verify_cmd(a: VerifyArgs) -> ExitCode {
    let text = if a.file.as_os_str() == "-" {
        let mut s = String::new();
        match std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
            Ok(_) => s,
            Err(e) => return fail(SigilError::Config(format!("cannot read stdin: {e}"))),
        }
    } else {
        match std::fs::read_to_string(&a.file) {
            Ok(s) => s,
            Err(e) => return fail(SigilError::Config(format!("cannot read {}: {e}", a.file.display()))),
        }
    };
    let trimmed = text.trim();
    // A compact JWS is a bare string; anything else must be JSON.
    let presentation = match serde_json::from_str::<serde_json::Value>(trimmed) {
        Ok(v) => v,
        Err(_) if trimmed.split('.').count() == 3 && !trimmed.contains(char::is_whitespace) => {
            serde_json::Value::String(trimmed.to_owned())
        }
        Err(e) => return fail(SigilError::Config(format!("{} is neither JSON nor a compact JWS: {e}", a.file.display()))),
    };
    let action = match a.action.as_deref().map(serde_json::from_str::<serde_json::Value>).transpose() {
        Ok(v) => v,
        Err(e) => return fail(SigilError::Config(format!("--action is not JSON: {e}"))),
    };
    let resolver = match cli_resolver(a.ca.as_deref(), &a.resolver_allow) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    // A trusted Sigil deployment's own context (`{base}/ns/v1`) is the one this binary
    // bundles: its rdfc-signed credentials verify without configuring it.
    let own_contexts = a.trust_tenant.iter().map(|t| {
        let base = t.split("/tenants/").next().unwrap_or(t).trim_end_matches('/');
        (sigil::vc::credential::context_url(base), sigil::vc::credential::SIGIL_CONTEXT.to_owned())
    });
    let own_contexts: Vec<(String, String)> = own_contexts.collect();
    match sigil::config::read_jsonld_contexts(&a.jsonld_context)
        .and_then(|c| sigil::vc::jsonld::Contexts::new(None, &[own_contexts, c].concat()).map_err(SigilError::Config))
    {
        Ok(c) => drop(sigil::vc::jsonld::install(c)),
        Err(e) => return fail(e),
    }
    let mut trust = sigil::verify::TrustPolicy::none();
    for t in &a.trust {
        match sigil::verify::TrustRule::parse(t) {
            Ok(rule) => trust = trust.with_rule(rule),
            Err(e) => return fail(SigilError::Config(format!("--trust {e}"))),
        }
    }
    for u in &a.trust_tenant {
        match trust.trust_tenant_url(u) {
            Ok(t) => trust = t,
            Err(e) => return fail(SigilError::Config(format!("--trust-tenant {e}"))),
        }
    }
    if trust.is_empty() {
        eprintln!("sigil: no trusted issuer: pass --trust DID or --trust-tenant URL; without one nothing can be verified");
    }
    let opts = sigil::verify::PresentationOptions {
        challenge: a.challenge,
        domain: a.domain,
        action,
        skip_status: a.no_status,
        trust,
        max_ttl: a.max_ttl.map(|s| jiff::SignedDuration::from_secs(i64::try_from(s).unwrap_or(i64::MAX))),
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(SigilError::Startup(e.to_string())),
    };
    let report = rt.block_on(sigil::verify::verify_presentation(&presentation, &opts, &resolver, jiff::Timestamp::now()));
    for c in &report.report.checks {
        match (c.ok, c.code) {
            (false, Some(code)) => println!("FAIL {:<36} {code}: {}", c.check, c.detail),
            (ok, _) => println!("{} {:<36} {}", if ok { "ok  " } else { "FAIL" }, c.check, c.detail),
        }
    }
    if report.verified() {
        println!("verified: holder {}", report.holder.unwrap_or_default());
        ExitCode::SUCCESS
    } else {
        println!("NOT verified");
        ExitCode::from(1)
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,actix_server=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
        LogFormat::Text => builder.init(),
    }
}

fn fail(e: SigilError) -> ExitCode {
    eprintln!("sigil: {e}");
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Verify(a) => verify_cmd(a),
        Command::Seed(a) => {
            let config = match Config::from_args(a.serve) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            init_logging(LogFormat::Text);
            let opts = sigil::seed::SeedOptions { tenant: a.tenant, agents: a.agents, hot: a.hot, tokens_out: a.tokens_out };
            match actix_web::rt::System::new().block_on(sigil::seed::seed(&config, &opts)) {
                Ok(r) => {
                    println!("{}", serde_json::to_string(&r).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Backup(a) => backup_cmd(a),
        Command::Mcp(a) => mcp_cmd(a),
        Command::Audit(AuditCmd::Verify(a)) => audit_verify_cmd(a),
        Command::Audit(AuditCmd::Watch(a)) => audit_watch_cmd(a),
        Command::Restore(a) => {
            let target = match (&a.data, &a.store) {
                (Some(d), _) => sigil::startup::RestoreTarget::Sled(d.clone()),
                (None, Some(url)) => {
                    let serve = ServeArgs { store: Some(url.clone()), ..Default::default() };
                    match Config::from_args(serve) {
                        Ok(Config { store: sigil::config::StoreConfig::Postgres(o), .. }) => sigil::startup::RestoreTarget::Postgres(o),
                        Ok(_) => return fail(SigilError::Config("--store must be a postgres:// URL".into())),
                        Err(e) => return fail(e),
                    }
                }
                (None, None) => return fail(SigilError::Config("give --data or --store".into())),
            };
            let run = sigil::startup::restore(target, a.input.as_deref());
            match actix_web::rt::System::new().block_on(run) {
                Ok(n) => {
                    println!("restored {n} records; start Sigil on it with the root key of the backup");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::OperatorToken(cmd) => {
            let (serve, command) = match cmd {
                OperatorTokenCmd::Rotate { out, serve } => (serve, sigil::startup::OperatorTokenCommand::Rotate { out }),
                OperatorTokenCmd::Revoke { serve } => (serve, sigil::startup::OperatorTokenCommand::Revoke),
            };
            let config = match Config::from_args(serve) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            init_logging(LogFormat::Text);
            match actix_web::rt::System::new().block_on(sigil::startup::operator_token_offline(config, command)) {
                Ok(said) => {
                    println!("{said}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::RotateRootKey(a) => {
            let config = match Config::from_args(a.serve) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            init_logging(LogFormat::Text);
            match actix_web::rt::System::new().block_on(sigil::startup::rotate_root_key_offline(config, &a.new_root_key_file)) {
                Ok(v) => {
                    println!("root key rotated to version {v}; start the server with the new root key");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Openapi => {
            print!("{}", sigil::http::openapi::document_json());
            ExitCode::SUCCESS
        }
        Command::Serve(args) => {
            let config = match Config::from_args(*args) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            init_logging(config.log_format);
            // actix-web runs its own per-worker runtimes under one System.
            match actix_web::rt::System::new().block_on(sigil::startup::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
    }
}
