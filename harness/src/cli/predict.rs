//! `lvsdr predict`: which real server the kernel gives each new connection.

use super::{load, Exit, InputOptions, Outcome, OutputFormat, TrafficOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct PredictArgs {
    /// The input: a topology (TOML, JSON), or one or more of: ipvsadm scripts, `ipvsadm -S`
    /// dumps, keepalived.conf files, read as one setup (a director's script with the real
    /// servers' script, a keepalived.conf with a real-server script).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Only this service, as `tcp/80`.
    #[arg(long)]
    service: Option<String>,
    #[command(flatten)]
    traffic: TrafficOptions,
    #[arg(long, value_enum, default_value = "human")]
    format: OutputFormat,
    #[command(flatten)]
    input: InputOptions,
}

pub fn predict(a: PredictArgs) -> Outcome {
    let (_, t) = load(&a.files, &a.input)?;
    let TrafficOptions {
        connections,
        clients,
        hold,
    } = a.traffic;
    let mut predictions = lvsdr_core::predict::predict_held(&t, connections, clients, hold);
    if let Some(s) = &a.service {
        predictions.retain(|p| &p.service == s);
        if predictions.is_empty() {
            eprintln!(
                "error: no service `{s}` in {}; it has: {}",
                a.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" "),
                t.services.iter().map(|s| t.label(s)).collect::<Vec<_>>().join(", ")
            );
            return Err(Exit::Unusable);
        }
    }
    if a.format == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&predictions).unwrap_or_default());
        return Ok(Exit::Success);
    }
    let held = match hold {
        0 => String::new(),
        n if n >= connections => ", each held open to the end".to_string(),
        n => format!(", each held open until {n} more have opened"),
    };
    for p in &predictions {
        let picks: Vec<String> = p.pick_names().into_iter().map(|x| x.unwrap_or_else(|| "-".into())).collect();
        let counts: Vec<String> = p.counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        println!(
            "{} ({}), {connections} connections from {clients} client(s){held}:",
            p.service, p.scheduler
        );
        println!("  picks:  {}", picks.join(" "));
        let unscheduled = if p.unscheduled > 0 {
            format!(", unscheduled: {}", p.unscheduled)
        } else {
            String::new()
        };
        println!("  split:  {}{unscheduled}", counts.join(", "));
    }
    Ok(Exit::Success)
}
