//! The `rmsprop` binary: the classic example's output, and replay's exit codes and messages.

use std::path::Path;
use std::process::{Command, Output};

fn rmsprop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rmsprop"))
        .args(args)
        .output()
        .expect("run rmsprop")
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
    let mut v = good;
    v["gradients"][3] = serde_json::json!([1.0]);
    cases.push((write("ragged.json", &v), "gradients[3]: 1 values"));
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
    assert!(
        err.contains("--resume") && err.contains("optimizer"),
        "{err}"
    );
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
        let out = rmsprop(&args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(expected),
            "{args:?}: expected `{expected}` in {err}"
        );
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
        text.starts_with("| optimizer | lr | final loss |"),
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
    for name in ["trajectories.png", "loss.png"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{name}");
    }
    for name in ["trajectories.svg", "loss.svg"] {
        let svg = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("rmsprop (lr 0.01)"),
            "{name}"
        );
    }
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("table.json")).unwrap()).unwrap();
    assert_eq!(table.as_array().unwrap().len(), 3);
    std::fs::remove_dir_all(&dir).unwrap();
    for (args, expected) in [
        (
            vec!["compare", "--optimizers", "rmsprop,lion"],
            "unknown optimizer `lion`",
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
        let out = rmsprop(&args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(expected),
            "{args:?}: expected `{expected}` in {err}"
        );
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
