//! The sharded optimizer under `mpirun` with 2 and 4 ranks: bit-exact against one process on
//! the same gradients, deterministic, checkpoints that resume on the same or another rank
//! count, damaged checkpoints refused by name, data-parallel training, and a killed rank.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rmsprop-mpi");

fn mpirun(ranks: usize, args: &[&str]) -> Output {
    Command::new("mpirun")
        .args([
            "--allow-run-as-root",
            "--oversubscribe",
            "-np",
            &ranks.to_string(),
            BIN,
        ])
        .args(args)
        .output()
        .expect("mpirun runs (apt-get install openmpi-bin)")
}

fn ok(ranks: usize, args: &[&str]) -> String {
    let out = mpirun(ranks, args);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "mpirun -np {ranks} {args:?} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rmsprop-mpi-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn the_sharded_step_equals_one_process_bit_for_bit() {
    for ranks in [2, 4] {
        let out = ok(ranks, &["check", "exact"]);
        assert!(
            out.contains(&format!("exact: ok on {ranks} ranks")),
            "{out}"
        );
    }
}

#[test]
fn runs_with_the_same_rank_count_give_the_same_bits() {
    for ranks in [2, 4] {
        let a = ok(ranks, &["check", "determinism"]);
        let b = ok(ranks, &["check", "determinism"]);
        assert!(a.starts_with("hash "), "{a}");
        assert_eq!(a, b);
    }
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or_default()
}

#[test]
fn checkpoints_resume_bit_exact_on_the_same_or_another_rank_count() {
    // The same gradients on every rank: any rank count then gives one process's bits, so an
    // uninterrupted run is the reference for every resumed one.
    let reference = ok(1, &["check", "resume", "--steps", "10"]);
    let (four, two) = (scratch("four"), scratch("two"));
    let f = four.to_str().unwrap();
    let t = two.to_str().unwrap();
    assert_eq!(
        last_line(&ok(4, &["check", "resume", "--save", f])),
        last_line(&reference)
    );
    assert_eq!(
        last_line(&ok(2, &["check", "resume", "--save", t])),
        last_line(&reference)
    );
    for (ranks, from) in [(4, f), (2, f), (4, t), (2, t)] {
        let resumed = ok(ranks, &["check", "resume", "--resume", from]);
        assert_eq!(
            last_line(&resumed),
            last_line(&reference),
            "{ranks} ranks from {from}"
        );
    }

    // A damaged or missing shard is refused with its name.
    let folder = four.join(std::fs::read_to_string(four.join("latest")).unwrap().trim());
    let shard1 = folder.join("shard-1.safetensors");
    let bytes = std::fs::read(&shard1).unwrap();
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    std::fs::write(&shard1, &flipped).unwrap();
    let out = mpirun(2, &["check", "resume", "--resume", f]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("shard-1.safetensors") && err.contains("CRC-32"),
        "{err}"
    );
    std::fs::write(&shard1, &bytes[..mid]).unwrap();
    let out = mpirun(2, &["check", "resume", "--resume", f]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shard-1.safetensors") && err.contains("bytes"),
        "{err}"
    );
    std::fs::write(&shard1, &bytes).unwrap();
    std::fs::remove_file(folder.join("shard-2.safetensors")).unwrap();
    let out = mpirun(4, &["check", "resume", "--resume", f]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("shard-2.safetensors"), "{err}");
    let _ = std::fs::remove_dir_all(&four);
    let _ = std::fs::remove_dir_all(&two);
}

fn accuracy(text: &str) -> f64 {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("test accuracy: "))
        .unwrap_or_else(|| panic!("no accuracy in:\n{text}"));
    line.trim().parse().unwrap()
}

#[test]
fn data_parallel_training_matches_one_process_with_a_quarter_of_the_state() {
    let one = ok(1, &["train", "digits-mlp", "--epochs", "20"]);
    let four = ok(4, &["train", "digits-mlp", "--epochs", "20"]);
    let (a, b) = (accuracy(&one), accuracy(&four));
    assert!((a - b).abs() <= 0.01, "one process {a}, four ranks {b}");
    assert!(a > 0.9, "{one}");
    for r in 0..4 {
        let line = four
            .lines()
            .find(|l| l.starts_with(&format!("rank {r}: optimizer state")))
            .unwrap_or_else(|| panic!("no line for rank {r}:\n{four}"));
        let share: f64 = line
            .split('(')
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.2..=0.3).contains(&share), "{line}");
        assert!(
            line.contains("communication") && line.contains("compute"),
            "{line}"
        );
    }
}

fn wait_for(path: &Path, limit: Duration) -> bool {
    let began = Instant::now();
    while began.elapsed() < limit {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_killed_rank_ends_the_job_and_the_last_checkpoint_resumes() {
    let dir = scratch("killed");
    let d = dir.to_str().unwrap();
    let mut job = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "2", BIN])
        .args(["train", "digits-mlp", "--epochs", "1000", "--checkpoint", d])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(&dir.join("latest"), Duration::from_secs(120)),
        "no checkpoint written"
    );
    let pid = std::fs::read_to_string(dir.join("pid-1")).unwrap();
    let killed = Instant::now();
    let status = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(status.success());
    // The job must end, with a failure, within seconds: no rank waits forever.
    let status = loop {
        if let Some(status) = job.try_wait().unwrap() {
            break status;
        }
        if killed.elapsed() > Duration::from_secs(30) {
            let _ = job.kill();
            panic!("mpirun still running 30 s after a rank was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    eprintln!(
        "job ended {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );
    // The newest complete checkpoint loads and the run continues.
    let latest = std::fs::read_to_string(dir.join("latest")).unwrap();
    let epoch: usize = serde_json::from_slice::<serde_json::Value>(
        &std::fs::read(dir.join(latest.trim()).join("manifest.json")).unwrap(),
    )
    .unwrap()["extra"]["epoch"]
        .as_u64()
        .unwrap() as usize;
    let target = (epoch + 2).to_string();
    let out = ok(
        2,
        &["train", "digits-mlp", "--epochs", &target, "--resume", d],
    );
    assert!(out.contains(&format!("at epoch {epoch}")), "{out}");
    assert!(out.contains(&format!("epoch {target}/{target}")), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
