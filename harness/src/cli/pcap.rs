//! `lvsdr lab --pcap FILE`: the frames each lab captured, written as pcapng,
//! and the frames that show each failed check, by number.

use super::Exit;
use lvsdr_harness::Report;
use std::path::{Path, PathBuf};

/// The file of the `n`th lab (from 0): FILE itself, then `FILE-2.pcapng`, `FILE-3.pcapng`…
fn nth(file: &Path, n: usize) -> PathBuf {
    if n == 0 {
        return file.to_path_buf();
    }
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match file.extension() {
        Some(ext) => format!("{stem}-{}.{}", n + 1, ext.to_string_lossy()),
        None => format!("{stem}-{}", n + 1),
    };
    file.with_file_name(name)
}

/// Writes each report's frames; says where, how many, and which frames show
/// each failed check (on standard output beside a human report, else on
/// standard error, so that JSON stays JSON).
pub fn write_all(file: &Path, reports: &[Report], human: bool) -> Result<(), Exit> {
    for (n, report) in reports.iter().enumerate() {
        let path = nth(file, n);
        let Some(bytes) = report.pcapng() else {
            eprintln!("warning: {}: the lab captured no frames", report.topology);
            continue;
        };
        if let Err(e) = std::fs::write(&path, bytes) {
            eprintln!("error: {}: {e}", path.display());
            return Err(Exit::Broken);
        }
        let shown = path.display().to_string();
        let mut text = String::new();
        if let Some(log) = &report.frames {
            text.push_str(&format!(
                "  pcap: {shown}: {} frame(s) on {} port(s){}{}\n",
                log.frames.len(),
                log.ports.len(),
                if log.dropped > 0 {
                    format!(", {} more seen but not kept (bounds)", log.dropped)
                } else {
                    String::new()
                },
                if log.lost > 0 {
                    format!(", {} lost by the socket", log.lost)
                } else {
                    String::new()
                }
            ));
        }
        text.push_str(&report.render_evidence(&shown));
        if human {
            print!("{text}");
        } else {
            eprint!("{text}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_lab_after_the_first_gets_its_number() {
        assert_eq!(nth(Path::new("out/lab.pcapng"), 0), PathBuf::from("out/lab.pcapng"));
        assert_eq!(nth(Path::new("out/lab.pcapng"), 1), PathBuf::from("out/lab-2.pcapng"));
        assert_eq!(nth(Path::new("lab"), 2), PathBuf::from("lab-3"));
    }
}
