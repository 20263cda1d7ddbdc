//! The browser playground's boundary: JSON strings in, JSON strings out.
//! The wasm-bindgen layer and the static site come with the playground issue;
//! these functions are what that layer will export.

/// Lints a topology (any supported format) and returns the diagnostics as JSON.
pub fn lint_json(source: &str) -> String {
    let report = lvsdr_core::analyze(source, None);
    serde_json::to_string(&report.diagnostics).unwrap_or_else(|_| "[]".into())
}
