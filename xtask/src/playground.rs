//! `cargo xtask playground`: build the browser playground (with its real
//! kernel in `kernel/`, see [`crate::guest_kernel`]), serve it on 127.0.0.1,
//! and run its browser tests.

use crate::commands::{cargo, have, root, run, step};
use crate::install::{apt_install, npm_package, setup, PLAYWRIGHT_CORE};
use crate::wasm::{build_core, CoreModule};
use crate::Result;
use std::path::PathBuf;
use std::process::Command;

/// Builds the playground into target/playground: the core as two
/// WebAssembly modules (TOML and JSON only, loaded first; with the importers,
/// loaded when a tab needs them), the page bundled with its editor, the
/// static files, and the examples from fixtures/.
pub(crate) fn build_playground() -> Result<PathBuf> {
    setup(false)?;
    let out = root().join("target/playground");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(out.join("pkg")).map_err(|e| e.to_string())?;
    // The first module is built for size, the second (fetched when needed) for
    // speed.
    build_core(&out.join("pkg"), CoreModule::Lite)?;
    build_core(&out.join("pkg"), CoreModule::Full)?;
    bundle_site(&out)?;
    write_examples(&out)?;
    // The rule docs, from the same source as `lvsdr explain` (kept out of the wasm).
    run(cargo().args(["build", "--quiet", "--bin", "lvsdr"]))?;
    let rules = Command::new(root().join("target/debug/lvsdr"))
        .args(["rules", "--format", "json"])
        .output()
        .map_err(|e| e.to_string())?;
    if !rules.status.success() {
        return Err("lvsdr rules --format json failed".into());
    }
    std::fs::write(out.join("rules.json"), rules.stdout).map_err(|e| e.to_string())?;
    // The real kernel, loaded by the page only when asked (cached: seconds).
    crate::guest_kernel::stage(&out.join("kernel"))?;
    let size = |f: &str| std::fs::metadata(out.join(f)).map(|m| m.len() / 1024).unwrap_or(0);
    eprintln!(
        "xtask: playground built in {} (app.js {} KB, lvsdr_lite_bg.wasm {} KB, lvsdr_wasm_bg.wasm {} KB)",
        out.display(),
        size("app.js"),
        size("pkg/lvsdr_lite_bg.wasm"),
        size("pkg/lvsdr_wasm_bg.wasm")
    );
    Ok(out)
}

/// The page's npm packages (CodeMirror and esbuild), installed with `npm ci`
/// from playground-web's lockfile into target/tools/playground, once per lockfile.
fn site_packages() -> Result<PathBuf> {
    if !have("node") || !have("npm") {
        apt_install(&["nodejs", "npm"])?;
    }
    let tools = root().join("target/tools/playground");
    let lock = std::fs::read(root().join("playground-web/package-lock.json")).map_err(|e| e.to_string())?;
    let installed = tools.join("node_modules/.lvsdr-lock");
    if std::fs::read(&installed).ok().as_deref() != Some(&lock[..]) {
        step("installing the playground's npm packages (npm ci)");
        std::fs::create_dir_all(&tools).map_err(|e| e.to_string())?;
        for f in ["package.json", "package-lock.json"] {
            std::fs::copy(root().join("playground-web").join(f), tools.join(f)).map_err(|e| e.to_string())?;
        }
        run(Command::new("npm")
            .args(["ci", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&tools))?;
        std::fs::write(&installed, &lock).map_err(|e| e.to_string())?;
    }
    Ok(tools.join("node_modules"))
}

/// Bundles site/app.js with CodeMirror into one minified module (esbuild),
/// and copies the static files. The wasm glue and the examples stay separate
/// files: the first is loaded on demand, the second is data.
fn bundle_site(out: &std::path::Path) -> Result {
    let modules = site_packages()?;
    step("bundling the page (esbuild)");
    let site = root().join("playground-web/site");
    // Split: what a dynamic import() names (the capture reader, the editor's
    // languages, …) becomes a chunk of its own, fetched at its first use.
    run(Command::new(modules.join(".bin/esbuild"))
        .arg(site.join("app.js"))
        .args([
            "--bundle",
            "--splitting",
            "--minify",
            "--format=esm",
            "--target=es2020",
            "--legal-comments=none",
            "--external:./pkg/*",
            "--external:./examples.js",
            "--external:./kernel/*",
            "--entry-names=[name]",
            "--chunk-names=chunks/[name]-[hash]",
        ])
        .arg(format!("--outdir={}", out.display()))
        // Where the bytes go, for `esbuild --analyze`-style reading: beside the site, not in it.
        .arg(format!("--metafile={}", root().join("target/playground-meta.json").display()))
        .env("NODE_PATH", &modules))?;
    for f in std::fs::read_dir(&site).map_err(|e| e.to_string())?.flatten() {
        if f.path().extension().is_some_and(|e| e == "js") {
            continue;
        }
        std::fs::copy(f.path(), out.join(f.file_name())).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// examples.js: each example's files, from fixtures/.
fn write_examples(out: &std::path::Path) -> Result {
    let fixtures = root().join("fixtures");
    let one = |name: &str, file: &str| (name.to_string(), vec![fixtures.join(file)]);
    let mut examples = vec![
        one("The seed setup as a topology", "seed-dr.toml"),
        one("The seed's scripts (ipvsadm, ifconfig, route)", "seed-dr.sh"),
        (
            "A director's script with the real servers' script".to_string(),
            vec![
                fixtures.join("real/split-scripts/director.sh"),
                fixtures.join("real/split-scripts/real-server.sh"),
            ],
        ),
        (
            "A keepalived pair: two keepalived.conf and a real-server script".to_string(),
            vec![
                fixtures.join("real/keepalived-pair/lb1.conf"),
                fixtures.join("real/keepalived-pair/lb2.conf"),
                fixtures.join("real/keepalived-pair/rs.sh"),
            ],
        ),
        one("A clean DR setup", "clean-dr.toml"),
        one("keepalived.conf written by hand", "seed-keepalived.conf"),
        one("Dual stack: three VIPs, IPv4 and IPv6", "dual-stack.toml"),
        one("IPv6 direct routing", "ipv6-dr.toml"),
        one("Clients behind a router", "routed-dr.toml"),
        one("An active/backup director pair (VRRP, sync)", "pair-dr.toml"),
        one("A fwmark service: ports 80 and 443 as one", "fwmark-dr.toml"),
        one("An ipvsadm -S dump with three VIPs", "multi-vip.dump"),
        one("keepalived.conf on an IPv6 director", "ipv6-keepalived.conf"),
    ];
    let mut faults: Vec<PathBuf> = std::fs::read_dir(fixtures.join("faults"))
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .collect();
    faults.sort();
    for f in faults {
        let name = f.file_stem().map(|s| s.to_string_lossy().replace('-', " ")).unwrap_or_default();
        examples.push((format!("Mistake: {name}"), vec![f]));
    }
    let mut js = String::from("// Generated by `cargo xtask playground` from fixtures/.\nexport const EXAMPLES = [\n");
    for (name, paths) in examples {
        js.push_str(&format!("  {{ name: {}, files: [", json_string(&name)?));
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            js.push_str(&format!("{{ name: {}, text: {} }}, ", json_string(&file)?, json_string(&text)?));
        }
        js.push_str("] },\n");
    }
    js.push_str("];\n");
    std::fs::write(out.join("examples.js"), js).map_err(|e| e.to_string())
}

/// The playground's Content-Security-Policy, also in the `<meta>` of
/// playground-web/site/index.html (the browser tests check they match): a
/// share link's text must never run, so no inline script or style at all.
/// `wasm-unsafe-eval` is what `WebAssembly.instantiate` needs.
/// `worker-src blob:` is for v86 (the real kernel), whose timer runs in a worker
/// it makes from a fixed function of its own; nothing of a share link's text
/// ever becomes a worker.
pub(crate) const PLAYGROUND_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                              img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'none'";

/// A JavaScript string literal: JSON's, with U+2028/9 escaped too
/// (serde_json leaves them raw, and old JavaScript engines end a line there).
fn json_string(s: &str) -> Result<String> {
    let quoted = serde_json::to_string(s).map_err(|e| e.to_string())?;
    Ok(quoted.replace('\u{2028}', "\\u2028").replace('\u{2029}', "\\u2029"))
}

/// A static file server for the playground, on 127.0.0.1 only.
pub(crate) fn serve(dir: PathBuf, listener: std::net::TcpListener) {
    use std::io::{BufRead, BufReader, Write};
    for stream in listener.incoming().flatten() {
        let dir = dir.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(match stream.try_clone() {
                Ok(s) => s,
                Err(_) => return,
            });
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                return;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            let path = request
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .split(['?', '#'])
                .next()
                .unwrap_or("/")
                .to_string();
            let rel = if path == "/" {
                "index.html".to_string()
            } else {
                path.trim_start_matches('/').to_string()
            };
            let mut stream = stream;
            if rel.split('/').any(|p| p == ".." || p.is_empty()) {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                return;
            }
            match std::fs::read(dir.join(&rel)) {
                Ok(body) => {
                    let mime = match rel.rsplit('.').next() {
                        Some("html") => "text/html; charset=utf-8",
                        Some("js" | "mjs") => "text/javascript",
                        Some("json") => "application/json",
                        Some("css") => "text/css",
                        Some("wasm") => "application/wasm",
                        _ => "application/octet-stream",
                    };
                    let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: {mime}\r\nContent-Length: {}\r\nContent-Security-Policy: {PLAYGROUND_CSP}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n", body.len());
                    let _ = stream.write_all(&body);
                }
                Err(_) => {
                    let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
                }
            }
        });
    }
}

pub(crate) fn playground(args: &[String]) -> Result {
    let dir = build_playground()?;
    if args.iter().any(|a| a == "--build-only") {
        return Ok(());
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let url = format!("http://127.0.0.1:{port}/");
    if args.iter().any(|a| a == "--test") {
        std::thread::spawn(move || serve(dir, listener));
        return browser_tests(&url).map(|_| ());
    }
    println!("lvsdr playground: {url}  (Ctrl-C to stop)");
    serve(dir, listener);
    Ok(())
}

/// The browser tests: Debian's Chromium driven by playwright-core.
/// Returns (passed, failed).
pub(crate) fn browser_tests(url: &str) -> Result<(u64, u64)> {
    apt_install(&["chromium", "chromium-driver"])?;
    let modules = npm_package("playwright-core", PLAYWRIGHT_CORE)?;
    step("browser tests (Chromium, playwright-core)");
    let shots = root().join("target/playground-screenshots");
    std::fs::create_dir_all(&shots).map_err(|e| e.to_string())?;
    let counts = crate::commands::node_tests(
        Command::new("node")
            .arg(root().join("playground-web/tests/browser.mjs"))
            .arg(url)
            .arg(&shots)
            .env("LVSDR_NODE_MODULES", modules.join("node_modules")),
        "browser",
        "browser test(s)",
    )?;
    eprintln!("xtask: screenshots in {}", shots.display());
    Ok(counts)
}
