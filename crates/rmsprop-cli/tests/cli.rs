//! The `rmsprop` binary: the classic example's output, and replay's exit codes and messages.

use std::path::Path;
use std::process::{Command, Output};

fn rmsprop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rmsprop"))
        .args(args)
        .output()
        .expect("run rmsprop")
}

/// Runs `args`, which must exit 2 with `expected` in its message (and never panic).
fn fails_with(args: &[&str], expected: &str) {
    let out = rmsprop(args);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(expected),
        "{args:?}: expected `{expected}` in {err}"
    );
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

fn vector(name: &str) -> String {
    format!(
        "{}/../../reference/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

const LESSON: &str = "\
Epoch 0, current state: [4.68377233 3.68377236]
Epoch 20, current state: [2.3688824  1.47561697]
Epoch 40, current state: [0.95903672 0.35004133]
Epoch 60, current state: [0.13761293 0.00745214]
Epoch 80, current state: [3.91649374e-04 3.12725069e-09]
Epoch 100, current state: [-3.07701828e-17  2.18862195e-20]
";

#[test]
fn no_arguments_prints_the_lesson_table() {
    let out = rmsprop(&[]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), LESSON);
    assert_eq!(
        String::from_utf8(rmsprop(&["lesson"]).stdout).unwrap(),
        LESSON
    );
}

#[test]
fn replay_reports_deviation_and_exits_zero_within_tolerance() {
    let out = rmsprop(&["replay", &vector("torch_centered_momentum_sphere_f32.json")]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("max abs deviation:"), "{text}");
    assert!(text.contains("max rel deviation:"), "{text}");
    assert!(text.contains("within tolerance: 1e-1 lr"), "{text}");
}

#[test]
fn replay_json_gives_our_trajectory_in_the_same_schema() {
    let path = vector("optax_nesterov_rosenbrock_f32.json");
    let out = rmsprop(&["replay", &path, "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let ours: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(ours["framework"], "rmsprop");
    assert_eq!(ours["schema_version"], 1);
    assert_eq!(ours["gradients"], theirs["gradients"]);
    let (a, b) = (
        ours["trajectory"].as_array().unwrap(),
        theirs["trajectory"].as_array().unwrap(),
    );
    assert_eq!(a.len(), b.len());
    assert_eq!(a[0].as_array().unwrap().len(), 2);
    // float32 numbers are written as the shortest f32 decimal, as in the recorded files.
    let x = a[0][0].as_f64().unwrap();
    assert_eq!(x.to_string(), (x as f32).to_string());
    // optax's trace is the negative of our buffer: the JSON uses optax's convention.
    let (mo, mt) = (
        &ours["final_state"]["momentum_buffer"][0],
        &theirs["final_state"]["momentum_buffer"][0],
    );
    assert_eq!(mo.as_f64().unwrap().signum(), mt.as_f64().unwrap().signum());
    assert_eq!(ours["replay"]["within_tolerance"], true);
}

#[test]
fn replay_rejects_bad_files_with_a_message_naming_file_and_field() {
    let dir = std::env::temp_dir().join(format!("rmsprop-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(vector("torch_default_sphere_f64.json")).unwrap(),
    )
    .unwrap();
    let write = |name: &str, value: &serde_json::Value| {
        let p = dir.join(name);
        std::fs::write(&p, value.to_string()).unwrap();
        p
    };
    let mut cases: Vec<(std::path::PathBuf, &str)> = vec![];
    let p = dir.join("not_json.json");
    std::fs::write(&p, "{ not json").unwrap();
    cases.push((p, "not_json.json: .:"));
    let mut v = good.clone();
    v["normalized"].as_object_mut().unwrap().remove("lr");
    cases.push((write("no_lr.json", &v), "normalized: missing field `lr`"));
    let mut v = good.clone();
    v["normalized"]["amsgrad"] = true.into();
    cases.push((write("unknown_option.json", &v), "unknown field `amsgrad`"));
    let mut v = good.clone();
    v["normalized"]["decay"] = 1.5.into();
    cases.push((
        write("bad_decay.json", &v),
        "unsupported: invalid hyperparameter `rho` = 1.5",
    ));
    let mut v = good.clone();
    v["framework"] = "mxnet".into();
    cases.push((write("mxnet.json", &v), "no preset for framework `mxnet`"));
    let mut v = good.clone();
    v["dtype"] = "bfloat16".into();
    cases.push((write("bf16.json", &v), "dtype: unsupported: `bfloat16`"));
    let mut v = good.clone();
    v["trajectory"].as_array_mut().unwrap().pop();
    cases.push((
        write("short.json", &v),
        "trajectory: 199 rows but steps = 200",
    ));
    let mut v = good.clone();
    v["gradients"][3] = serde_json::json!([1.0]);
    cases.push((write("ragged.json", &v), "gradients[3]: 1 values"));
    // Generated (long) vectors: a generator with stored values, an absurd length.
    let mut v = good.clone();
    v["generator"] =
        serde_json::json!({"kind": "splitmix64", "grad_seed": 1, "param_seed": 2, "scales": [1.0]});
    v["shape"] = serde_json::json!([2]);
    v["sample"] = serde_json::json!([0, 1]);
    v["sample_steps"] = serde_json::json!([200]);
    v["trajectory_sample"] = serde_json::json!([[0.0, 0.0]]);
    cases.push((
        write("generated_and_stored.json", &v),
        "initial_params: a generated vector stores no values here",
    ));
    let mut v = good;
    for field in ["initial_params", "gradients", "trajectory"] {
        v.as_object_mut().unwrap().remove(field);
    }
    v["generator"] =
        serde_json::json!({"kind": "splitmix64", "grad_seed": 1, "param_seed": 2, "scales": [1.0]});
    v["shape"] = serde_json::json!([100_000_000_000u64]);
    cases.push((
        write("huge.json", &v),
        "shape: expected [n] with 1 <= n <= 10000000",
    ));
    cases.push((dir.join("missing.json"), "missing.json: cannot read"));

    for (path, expected) in &cases {
        let out = rmsprop(&["replay", path.to_str().unwrap()]);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{path:?}: {err}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(
            err.contains(expected),
            "{path:?}: expected `{expected}` in: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(Path::new(&vector("torch_default_sphere_f64.json")).exists());
}

#[test]
fn replay_with_a_mismatched_formulation_exits_one() {
    // The vector gives the hyperparameters; the preset gives what a framework leaves implicit.
    // TF1 rounds every hyperparameter through float32: PyTorch's float64 run then departs.
    let out = rmsprop(&[
        "replay",
        &vector("torch_default_rosenbrock_f64.json"),
        "--preset",
        "tf1",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("EXCEEDS tolerance"), "{text}");
}

#[test]
fn malformed_arguments_get_a_message_and_a_non_zero_exit_never_a_panic() {
    let cases: &[(&[&str], &str)] = &[
        (&["frobnicate"], "unrecognized subcommand"),
        (&["replay"], "required"),
        (
            &["replay", "a.json", "--preset", "mxnet"],
            "invalid value 'mxnet'",
        ),
        (&["bench", "--sizes", "ten"], "not a number"),
        (&["bench", "--sizes", "0"], "whole number from 1"),
        (&["bench", "--sizes", "1e3x"], "not a number"),
        (&["bench", "--threads", "0", "--sizes", "2"], "at least 1"),
        (&["bench", "--threads", "-3"], "unexpected argument"),
        (&["lesson", "extra"], "unexpected argument"),
    ];
    for (args, expected) in cases {
        let out = rmsprop(args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_ne!(out.status.code(), Some(101), "{args:?} panicked: {err}");
        assert!(
            err.contains(expected),
            "{args:?}: expected `{expected}` in: {err}"
        );
    }
}

#[test]
fn a_resumed_run_ends_exactly_where_an_uninterrupted_one_does() {
    let dir = std::env::temp_dir().join(format!("rmsprop-run-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("run.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    for (optimizer, extra) in [
        ("rmsprop", vec!["--preset", "keras"]),
        ("adam", vec![]),
        ("nesterov", vec![]),
    ] {
        let base = |steps: &'static str| {
            let mut a = vec![
                "run",
                "--objective",
                "rosenbrock",
                "--optimizer",
                optimizer,
                "--lr",
                "0.001",
                "--steps",
                steps,
            ];
            a.extend(extra.iter().copied());
            a
        };
        let straight = rmsprop(&base("300"));
        assert!(straight.status.success());
        let mut first = base("120");
        first.extend(["--checkpoint", ckpt, "--checkpoint-every", "50"]);
        assert!(rmsprop(&first).status.success());
        let mut second = base("300");
        second.extend(["--resume", ckpt]);
        let resumed = rmsprop(&second);
        assert!(
            resumed.status.success(),
            "{}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        assert_eq!(
            String::from_utf8(resumed.stdout).unwrap(),
            String::from_utf8(straight.stdout).unwrap(),
            "{optimizer}"
        );
        if optimizer == "rmsprop" {
            // Flags asking for another configuration than the checkpoint's are refused, by name.
            for (flags, expected) in [
                (vec!["--lr", "0.5"], "--lr conflicts with the checkpoint"),
                (
                    vec!["--preset", "tf1"],
                    "--preset conflicts with the checkpoint",
                ),
            ] {
                let mut args = vec!["run", "--optimizer", "rmsprop", "--steps", "10"];
                args.extend(["--resume", ckpt]);
                args.extend(flags);
                fails_with(&args, expected);
            }
        }
    }
    // Resuming with another optimizer is refused with a message naming the file.
    let out = rmsprop(&[
        "run",
        "--optimizer",
        "sgd",
        "--steps",
        "10",
        "--resume",
        ckpt,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--optimizer sgd conflicts"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_writes_its_trajectory_as_csv_and_json() {
    let dir = std::env::temp_dir().join(format!("rmsprop-run-out-{}", std::process::id()));
    let out = rmsprop(&[
        "run",
        "--objective",
        "sphere",
        "--optimizer",
        "rmsprop",
        "--preset",
        "lesson",
        "--steps",
        "101",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let csv = std::fs::read_to_string(dir.join("trajectory.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "step,x0,x1,f");
    assert_eq!(lines.len(), 1 + 102);
    assert!(lines[1].starts_with("0,5.0,4.0,"));
    // The lesson's last state, as its numpy run computed it.
    assert!(
        lines[102].starts_with("101,-3.0770182845888756e-17,2.1886219485527558e-20,"),
        "{}",
        lines[102]
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("trajectory.json")).unwrap())
            .unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 102);
    std::fs::remove_dir_all(&dir).unwrap();
    for (args, expected) in [
        (
            vec!["run", "--objective", "moon"],
            "unknown objective `moon`",
        ),
        (vec!["run", "--start", "1,2,3"], "takes 2 coordinates"),
        (
            vec!["run", "--optimizer", "adam", "--preset", "keras"],
            "--preset applies to rmsprop",
        ),
        (vec!["run", "--lr=-1"], "invalid hyperparameter `lr`"),
        (
            vec!["run", "--resume", "/nonexistent/x.safetensors"],
            "/nonexistent/x.safetensors",
        ),
    ] {
        fails_with(&args, expected);
    }
}

#[test]
fn compare_writes_a_table_and_png_and_svg_pictures() {
    let dir = std::env::temp_dir().join(format!("rmsprop-compare-{}", std::process::id()));
    let out = rmsprop(&[
        "compare",
        "--objective",
        "rosenbrock",
        "--optimizers",
        "rmsprop,adam,sgd",
        "--steps",
        "500",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with(
            "| optimizer | lr | first step | early gap (first 10%) | final f - f_min |"
        ),
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("| rmsprop")
                || l.starts_with("| adam")
                || l.starts_with("| sgd"))
            .count(),
        3
    );
    for name in ["trajectories.png", "loss.png", "step_length.png"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{name}");
    }
    for name in ["trajectories.svg", "loss.svg", "step_length.svg"] {
        let svg = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("rmsprop (lr 0.01)"),
            "{name}"
        );
    }
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("table.json")).unwrap()).unwrap();
    assert_eq!(table["outcomes"].as_array().unwrap().len(), 3);
    assert_eq!(table["experiment"]["objective"], "rosenbrock");
    std::fs::remove_dir_all(&dir).unwrap();
    for (args, expected) in [
        (
            vec!["compare", "--optimizers", "rmsprop,adamax"],
            "unknown optimizer `adamax`",
        ),
        (
            vec!["compare", "--objective", "moon"],
            "unknown objective `moon`",
        ),
        (
            vec!["compare", "--lr", "rmsprop:0.1"],
            "expected optimizer=value",
        ),
        (
            vec!["compare", "--lr", "adagrad=0.1"],
            "not in --optimizers",
        ),
    ] {
        fails_with(&args, expected);
    }
}

#[test]
fn sweep_prints_the_grid_and_draws_a_heatmap() {
    let dir = std::env::temp_dir().join(format!("rmsprop-sweep-{}", std::process::id()));
    let args = [
        "sweep",
        "--objective",
        "sphere",
        "--rho",
        "0.5,0.9",
        "--lr",
        "0.01,0.1",
        "--steps",
        "50",
        "--out",
        dir.to_str().unwrap(),
    ];
    let out = rmsprop(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("| rho \\ lr | 0.01 | 0.1 |"), "{text}");
    assert!(text.contains("| 0.9 |"), "{text}");
    // Deterministic: the same grid twice gives the same numbers.
    assert_eq!(String::from_utf8(rmsprop(&args).stdout).unwrap(), text);
    assert_eq!(
        &std::fs::read(dir.join("heatmap.png")).unwrap()[1..4],
        b"PNG"
    );
    assert!(std::fs::read_to_string(dir.join("heatmap.svg"))
        .unwrap()
        .contains("learning rate"));
    std::fs::remove_dir_all(&dir).unwrap();
    let out = rmsprop(&["sweep", "--rho", "1.5", "--steps", "1"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("invalid hyperparameter `rho` = 1.5"), "{err}");
}

fn write_temp(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("rmsprop-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// The table without the wall-time column, which is the only thing allowed to differ.
fn without_times(table: &str) -> Vec<String> {
    table
        .lines()
        .map(|l| l.rsplitn(3, '|').skip(2).collect::<String>())
        .collect()
}

#[test]
fn an_experiment_file_runs_like_the_flags_and_is_deterministic_for_a_seed() {
    let config = write_temp(
        "noisy.toml",
        r#"
title = "noisy sphere"
objective = "sphere"
noise = 0.5
seeds = [1, 2]
steps = 300
lr_grid = [0.01, 0.1]

[[optimizer]]
name = "rmsprop"
rho = 0.9

[[optimizer]]
name = "sgd"
label = "GD"
lr = 0.05
"#,
    );
    let dir = std::env::temp_dir().join(format!("rmsprop-config-{}", std::process::id()));
    let args = [
        "compare",
        "--config",
        config.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ];
    let first = rmsprop(&args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let text = String::from_utf8(first.stdout).unwrap();
    assert!(text.contains("tail gap (mean ± sd over 2 seeds)"), "{text}");
    assert!(text.contains("| GD | 0.05 |"), "{text}");
    // 0.1 is the grid's end: the search went on to 1.0, which did worse.
    assert!(
        text.contains("| rmsprop | 0.1 (grid, extended) |"),
        "{text}"
    );
    let again = String::from_utf8(rmsprop(&args).stdout).unwrap();
    assert_eq!(
        without_times(&again),
        without_times(&text),
        "same seeds, same numbers"
    );
    let svg = std::fs::read_to_string(dir.join("loss.svg")).unwrap();
    assert!(svg.contains("gradient noise sd 0.5") && svg.contains("mean of 2 seeds"));
    let other = write_temp(
        "noisy2.toml",
        &std::fs::read_to_string(&config)
            .unwrap()
            .replace("[1, 2]", "[3, 4]"),
    );
    let changed =
        String::from_utf8(rmsprop(&["compare", "--config", other.to_str().unwrap()]).stdout)
            .unwrap();
    assert_ne!(
        without_times(&changed),
        without_times(&text),
        "other seeds, other noise"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn seeded_noise_and_mini_batches_make_run_reproducible() {
    let out = |seed: &str, objective: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "--objective",
            objective,
            "--steps",
            "200",
            "--seed",
            seed,
        ];
        args.extend_from_slice(extra);
        let o = rmsprop(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let noisy = ["--noise", "0.3"];
    assert_eq!(
        out("7", "rosenbrock", &noisy),
        out("7", "rosenbrock", &noisy)
    );
    assert_ne!(
        out("7", "rosenbrock", &noisy),
        out("8", "rosenbrock", &noisy)
    );
    let batch = ["--batch", "16", "--optimizer", "sgd"];
    assert_eq!(
        out("1", "least_squares", &batch),
        out("1", "least_squares", &batch)
    );
    assert_ne!(
        out("1", "least_squares", &batch),
        out("2", "least_squares", &batch)
    );
}

#[test]
fn malformed_experiment_files_get_a_clear_message_and_exit_two() {
    let base = "objective = \"sphere\"\nsteps = 10\n[[optimizer]]\nname = \"adam\"\n";
    for (text, expected) in [
        ("objective = ", "TOML parse error"),
        ("objective = 3\nsteps = 1\n", "at `objective`"),
        (&*format!("{base}colour = \"red\"\n"), "unknown field `colour`"),
        (&*format!("{base}[[optimizer]]\nname = \"adamax\"\n"), "unknown optimizer `adamax`"),
        (&*format!("{base}[[optimizer]]\nname = \"sgd\"\nrho = 0.9\n"), "`rho` does not apply to sgd"),
        (&*format!("{base}[[optimizer]]\nname = \"rmsprop\"\nrho = 1.5\n"), "invalid hyperparameter `rho` = 1.5"),
        (&*format!("{base}[[optimizer]]\nname = \"adam\"\n"), "two optimizers are labelled `adam`"),
        (&*format!("{base}[[optimizer]]\nname = \"rmsprop\"\nbatch = 4\n"), "batch applies to least_squares only"),
        (&*format!("{base}[[optimizer]]\nname = \"rmsprop\"\nlr = \"fast\"\n"), "at `optimizer[1].lr`"),
        ("objective = \"moon\"\nsteps = 1\n[[optimizer]]\nname = \"adam\"\n", "unknown objective `moon`"),
        ("objective = \"sphere\"\n[[optimizer]]\nname = \"adam\"\n", "give steps"),
        ("objective = \"sphere\"\nsteps = 1\n", "missing field `optimizer`"),
        (&*format!("{base}[[verdict]]\nsubject = \"rmsprop\"\nagainst = [\"adam\"]\nmetric = \"tail_gap\"\nexpect = \"better\"\n"), "verdict names `rmsprop`"),
        (&*format!("noise = -1.0\n{base}"), "noise must be"),
    ] {
        let path = write_temp("bad.toml", text);
        fails_with(&["compare", "--config", path.to_str().unwrap()], expected);
    }
    let out = rmsprop(&["compare", "--config", "/nonexistent/x.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("cannot read"));
    let out = rmsprop(&["compare", "--config", "x.toml", "--steps", "3"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--config with other flags is refused"
    );
}

#[test]
fn every_report_experiment_is_a_valid_experiment_file() {
    for (name, text) in rmsprop_cli::report::EXPERIMENTS {
        let e = rmsprop_cli::compare::Experiment::from_toml(text)
            .unwrap_or_else(|err| panic!("{name}: {err:#}"));
        assert!(
            e.claim.is_none() || !e.verdict.is_empty(),
            "{name}: a claim needs checks"
        );
        let committed = format!(
            "{}/../../docs/experiments/{name}/experiment.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        assert_eq!(
            &std::fs::read_to_string(&committed).unwrap_or_default(),
            text,
            "{committed} is stale: rerun `cargo run --release -- report`"
        );
    }
}

#[test]
fn truncated_or_garbled_experiment_files_never_panic() {
    for (_, text) in rmsprop_cli::report::EXPERIMENTS {
        for cut in (0..text.len()).step_by(4) {
            if text.is_char_boundary(cut) {
                let _ = rmsprop_cli::compare::Experiment::from_toml(&text[..cut]);
                let garbled = format!("{}={}", &text[..cut], &text[cut..]);
                let _ = rmsprop_cli::compare::Experiment::from_toml(&garbled);
            }
        }
    }
}

#[test]
fn train_digits_mlp_reports_accuracy_reproducibly_and_resumes_exactly() {
    let run = |args: &[&str]| {
        let mut all = vec!["train", "digits-mlp", "--epochs", "3"];
        all.extend_from_slice(args);
        let o = rmsprop(&all);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let text = run(&[]);
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("test accuracy: 0."), "{text}");
    assert_eq!(last.len(), "test accuracy: 0.NNN".len(), "{last}");
    assert!(text
        .lines()
        .next()
        .unwrap()
        .starts_with("epoch 1/3: train loss "));
    assert_eq!(run(&[]), text, "same seed, same run");
    assert_ne!(run(&["--seed", "1"]), text, "another seed, another run");

    let dir = std::env::temp_dir().join(format!("rmsprop-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("mlp.ckpt");
    let c = ckpt.to_str().unwrap();
    let first = rmsprop(&["train", "digits-mlp", "--epochs", "2", "--checkpoint", c]);
    assert!(first.status.success());
    let resumed = run(&["--resume", c]);
    let tail: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(
        resumed.lines().collect::<Vec<_>>(),
        tail,
        "resumed epochs = uninterrupted ones"
    );
    for (args, expected) in [
        (
            vec!["train", "digits-mlp", "--optimizer", "adamax"],
            "unknown optimizer `adamax`",
        ),
        (
            vec!["train", "digits-mlp", "--lr=-1"],
            "invalid hyperparameter `lr`",
        ),
        (
            vec!["train", "digits-mlp", "--resume", "/nonexistent/x.ckpt"],
            "--resume /nonexistent/x.ckpt",
        ),
        (
            vec!["train", "digits-mlp", "--optimizer", "adam", "--resume", c],
            "checkpoint is for",
        ),
        (vec!["train", "mnist"], "invalid value 'mnist'"),
        // A resume continues with the checkpoint's configuration: a conflicting rate is refused.
        (
            vec!["train", "digits-mlp", "--resume", c, "--lr", "0.5"],
            "--lr conflicts with the checkpoint",
        ),
        (
            vec!["train", "digits-mlp", "--resume", c, "--lr", "1e6"],
            "it sets lr = 1000000.0, the checkpoint holds lr = 0.01",
        ),
    ] {
        fails_with(&args, expected);
    }
    // The checkpoint's own rate, given explicitly, is no conflict.
    assert_eq!(run(&["--resume", c, "--lr", "0.01"]), resumed);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// 8-bit state, bf16 parameters and both checkpoint like f32 training: two epochs, a
/// checkpoint, a resume, and the third epoch is the uninterrupted run's. A checkpoint resumed
/// with other storage flags or another optimizer is refused, naming what to pass.
#[test]
fn train_with_8_bit_state_or_bf16_parameters_resumes_exactly() {
    let dir = std::env::temp_dir().join(format!("rmsprop-train-storage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (k, flags) in [
        &["--state-bits", "8"][..],
        &["--dtype", "bf16"][..],
        &["--dtype", "bf16", "--state-bits", "8"][..],
    ]
    .into_iter()
    .enumerate()
    {
        let ckpt = dir.join(format!("run{k}.ckpt"));
        let c = ckpt.to_str().unwrap();
        let run = |extra: &[&str]| {
            let mut all = vec!["train", "digits-mlp", "--optimizer", "adam"];
            all.extend_from_slice(flags);
            all.extend_from_slice(extra);
            let o = rmsprop(&all);
            assert!(
                o.status.success(),
                "{all:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8(o.stdout).unwrap()
        };
        let straight = run(&["--epochs", "3"]);
        run(&["--epochs", "2", "--checkpoint", c]);
        let resumed = run(&["--epochs", "3", "--resume", c]);
        let tail: Vec<&str> = straight.lines().skip(2).collect();
        assert_eq!(resumed.lines().collect::<Vec<_>>(), tail, "{flags:?}");
        fails_with(
            &["train", "digits-mlp", "--optimizer", "adam", "--resume", c],
            &format!(
                "the checkpoint was written with {}",
                match k {
                    0 => "--dtype f32 --state-bits 8",
                    1 => "--dtype bf16 --state-bits 32",
                    _ => "--dtype bf16 --state-bits 8",
                }
            ),
        );
        let mut other = vec!["train", "digits-mlp", "--resume", c];
        other.extend_from_slice(flags);
        fails_with(&other, "checkpoint is for optimizer `adam`");
    }
    // A library checkpoint without the weights: refused rather than resumed on fresh weights.
    let bare = dir.join("bare.ckpt");
    let opt = rmsprop::blockwise::Blockwise8::<rmsprop::AdamConfig, f32>::new(
        rmsprop::AdamConfig::pytorch(),
        4096,
    )
    .unwrap();
    opt.save(&bare).unwrap();
    fails_with(
        &[
            "train",
            "digits-mlp",
            "--optimizer",
            "adam",
            "--state-bits",
            "8",
            "--resume",
            bare.to_str().unwrap(),
        ],
        "holds the optimizer's state but no weights",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_digits_data_is_the_uci_set() {
    let (x, y) = rmsprop_cli::train::digits().unwrap();
    assert_eq!(y.len(), 1797);
    assert_eq!(x.len(), 1797 * 64);
    assert!(x.iter().all(|p| (0.0..=1.0).contains(p)));
    for class in 0..10 {
        let n = y.iter().filter(|&&c| c == class).count();
        assert!((174..=183).contains(&n), "class {class}: {n}");
    }
}

/// 8-bit blockwise optimizer state, bf16 parameters, and both, train the digits MLP to within
/// half a point of f32 parameters with 32-bit state, in mean test accuracy over seeds 0-2 (the
/// 128x64 weight matrix is the tensor large enough for 8 bits; one test image is 0.28 points);
/// and the flags' misuses are refused with a message.
#[test]
fn train_with_8_bit_state_and_bf16_parameters_reaches_the_f32_accuracy() {
    let mean_accuracy = |extra: &[&str]| {
        // The three seeds run side by side (separate processes).
        let sum: f64 = std::thread::scope(|scope| {
            let runs: Vec<_> = ["0", "1", "2"]
                .into_iter()
                .map(|seed| {
                    scope.spawn(move || {
                        let mut args = vec!["train", "digits-mlp", "--seed", seed];
                        args.extend_from_slice(extra);
                        let o = rmsprop(&args);
                        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                        let text = String::from_utf8(o.stdout).unwrap();
                        let last = text.lines().last().unwrap().to_string();
                        last.strip_prefix("test accuracy: ")
                            .unwrap()
                            .parse::<f64>()
                            .unwrap()
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).sum()
        });
        sum / 3.0
    };
    let full = mean_accuracy(&[]);
    assert!(full > 0.95, "f32: {full}");
    for extra in [
        &["--state-bits", "8"][..],
        &["--dtype", "bf16"],
        &["--dtype", "bf16", "--state-bits", "8"],
    ] {
        let got = mean_accuracy(extra);
        assert!(
            full - got <= 0.005 + 1e-9,
            "{extra:?}: {got} against f32 {full}"
        );
    }
    for (args, expected) in [
        (
            vec![
                "train",
                "digits-mlp",
                "--dtype",
                "bf16",
                "--resume",
                "/nonexistent/x.ckpt",
            ],
            "--resume /nonexistent/x.ckpt",
        ),
        (
            vec!["train", "digits-mlp", "--state-bits", "4"],
            "invalid value '4'",
        ),
        (
            vec!["train", "digits-mlp", "--dtype", "f16"],
            "invalid value 'f16'",
        ),
    ] {
        let o = rmsprop(&args);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

/// `rmsprop precision`: the table README shows (f32 and three bf16 runs, and the bf16 floor),
/// and its verdict; a bad rate is refused.
#[test]
fn precision_runs_f32_and_bf16_and_says_its_verdict() {
    let o = rmsprop(&["precision"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    for row in [
        "| f32 |",
        "| bf16 nearest |",
        "| bf16 stochastic |",
        "| bf16 + f32 master |",
        "| f32, 8-bit state |",
        "| bf16 stochastic, 8-bit state |",
        "| (the answer rounded to bf16) |",
    ] {
        assert!(text.contains(row), "{row}: {text}");
    }
    // README states this verdict; the rule itself is tested on made-up runs (precision::holds).
    assert!(text.contains("verdict: holds ("), "{text}");
    let bad = rmsprop(&["precision", "--lr", "0"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--lr must be finite and > 0"));
}
