//! The kernel commands: `ipvs-check`, `marks-check`, `kernel-exec` and `clean`.

use super::{Exit, Outcome};
use lvsdr_harness::run::{self, KernelChoice};

/// `lvsdr ipvs-check`: lvsdr's IPVS client against this kernel.
pub fn ipvs_check() -> Outcome {
    match lvsdr_harness::ipvs::check::run() {
        Ok(lines) => {
            for l in &lines {
                println!("{l}");
            }
            println!("{} passed, 0 failed", lines.len());
            Ok(Exit::Success)
        }
        Err(e) => {
            println!("{e}");
            Err(Exit::Failed)
        }
    }
}

/// `lvsdr marks-check`: the lab's firewall marks against this kernel's IPVS.
pub fn marks_check() -> Outcome {
    match lvsdr_harness::marks::self_check() {
        Ok(log) => {
            println!("{}", log.trim_end());
            Ok(Exit::Success)
        }
        Err(e) => {
            println!("{e}");
            Err(Exit::Failed)
        }
    }
}

/// `lvsdr kernel-exec`: a command on the lab's kernel.
pub fn kernel_exec(kernel: KernelChoice, timeout: u64, command: Vec<String>) -> Outcome {
    if !run::is_root() {
        eprintln!("error: {}", run::RunError::NotRoot);
        return Err(Exit::Unusable);
    }
    let choice = kernel;
    match lvsdr_harness::launch::exec_in_kernel(choice, &command, std::time::Duration::from_secs(timeout)) {
        Ok((code, stdout)) => {
            print!("{stdout}");
            if code == 0 {
                Ok(Exit::Success)
            } else {
                Err(Exit::Command(code.clamp(1, 255) as u8))
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(Exit::Broken)
        }
    }
}

/// `lvsdr clean`: what labs killed outright left behind.
pub fn clean() -> Outcome {
    let c = lvsdr_harness::leftovers::clean();
    let list = |v: Vec<String>| {
        if v.is_empty() {
            String::new()
        } else {
            format!(": {}", v.join(", "))
        }
    };
    println!(
        "removed {} stale lab namespace(s){}",
        c.namespaces.len(),
        list(c.namespaces.clone())
    );
    println!(
        "removed {} stale lab folder(s){}",
        c.folders.len(),
        list(c.folders.iter().map(|f| f.display().to_string()).collect())
    );
    println!(
        "killed {} leftover process(es){}",
        c.processes.len(),
        list(c.processes.iter().map(i32::to_string).collect())
    );
    Ok(Exit::Success)
}
