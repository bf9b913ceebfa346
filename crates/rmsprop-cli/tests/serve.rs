//! `rmsprop serve` against a real server: the binary started on a free loopback port, spoken to
//! over HTTP. Runs reproduce the numpy lesson and `rmsprop compare` bit for bit; bad input gets
//! 400 with the field named; the server keeps serving after abuse and under 200 concurrent
//! requests.

mod common;
use common::{hex_rows, seed_sphere};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

/// A server process, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start() -> Self {
        Self::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rmsprop"))
            .args(["serve", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("rmsprop serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("rmsprop playground: ")
            .unwrap_or_else(|| panic!("first line names the URL: {line:?}"))
            .trim_end_matches('/')
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Server { child, url }
    }

    fn get(&self, path: &str) -> (u16, String) {
        answer(ureq::get(&format!("{}{path}", self.url)).call())
    }

    fn post(&self, body: &str) -> (u16, Value) {
        let (status, text) = answer(
            ureq::post(&format!("{}/api/run", self.url))
                .set("Content-Type", "application/json")
                .send_string(body),
        );
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON answer ({e}): {text}")),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match r {
        Ok(resp) => (resp.status(), resp.into_string().unwrap()),
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap()),
        Err(e) => panic!("transport error: {e}"),
    }
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// The lesson's 101 states, as numpy recorded them (reference/seed_sphere.json), come back from
/// the API bit for bit: the playground's opening view is the lesson.
#[test]
fn the_lesson_runs_bit_for_bit_as_numpy_recorded_it() {
    let server = Server::start();
    let (status, body) = server.post(
        &json!({
            "objective": "sphere", "start": [5.0, 4.0], "steps": 101,
            "optimizers": [{"name": "rmsprop", "preset": "lesson", "lr": 0.1, "rho": 0.9, "eps": 1e-6}]
        })
        .to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let seed = seed_sphere();
    let states = hex_rows(&seed["trajectory"]);
    let square_avg = hex_rows(&seed["square_avg_trajectory"]);
    let run = &body["runs"][0];
    let path: Vec<Vec<f64>> = run["path"].as_array().unwrap().iter().map(floats).collect();
    assert_eq!(path.len(), 102);
    assert_eq!(path[0], [5.0, 4.0]);
    for (k, want) in states.iter().enumerate() {
        for i in 0..2 {
            assert_eq!(
                path[k + 1][i].to_bits(),
                want[i].to_bits(),
                "x[{i}] after step {}",
                k + 1
            );
        }
    }
    let v: Vec<Vec<f64>> = run["accumulator"]["square_avg"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    assert_eq!(v, square_avg);
    // The effective rate is lr / (sqrt(v) + eps), the lesson's placement, from numpy's v.
    let eff: Vec<Vec<f64>> = run["accumulator"]["effective_lr"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    assert_eq!(eff[0][0], 0.1 / (square_avg[0][0].sqrt() + 1e-6));
    // f - f_min on the sphere is x^2 + y^2.
    let loss = floats(&run["loss"]);
    assert_eq!(
        loss[1],
        states[0][0] * states[0][0] + states[0][1] * states[0][1]
    );
    assert!(body["runs"][0]["summary"]["steps_to_tolerance"].is_u64());
}

/// A run equals `rmsprop compare` on the same experiment, number for number (wall time aside).
#[test]
fn a_run_equals_rmsprop_compare_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("rmsprop-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = r#"
objective = "rosenbrock"
start = [-1.5, 2.0]
steps = 400
noise = 0.5
seeds = [7]
tolerance = 0.01

[[optimizer]]
name = "rmsprop"
preset = "keras"
lr = 0.003
rho = 0.95
centered = true

[[optimizer]]
name = "adam"
lr = 0.02
amsgrad = true

[[optimizer]]
name = "nesterov"
lr = 0.0005
"#;
    std::fs::write(dir.join("e.toml"), toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rmsprop"))
        .args(["compare", "--config"])
        .arg(dir.join("e.toml"))
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/table.json")).unwrap())
            .unwrap();

    let server = Server::start();
    let (status, body) = server.post(
        &json!({
            "objective": "rosenbrock", "start": [-1.5, 2.0], "steps": 400, "noise": 0.5, "seed": 7,
            "tolerance": 0.01,
            "optimizers": [
                {"name": "rmsprop", "preset": "keras", "lr": 0.003, "rho": 0.95, "centered": true},
                {"name": "adam", "lr": 0.02, "amsgrad": true},
                {"name": "nesterov", "lr": 0.0005}
            ]
        })
        .to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let wanted = table["outcomes"].as_array().unwrap();
    let runs = body["runs"].as_array().unwrap();
    assert_eq!(runs.len(), wanted.len());
    for (run, want) in runs.iter().zip(wanted) {
        let (mut got, mut want) = (run["summary"].clone(), want.clone());
        got.as_object_mut().unwrap().remove("seconds");
        want.as_object_mut().unwrap().remove("seconds");
        assert_eq!(got, want);
        // The path ends where compare's distance to the minimum (1, 1) says.
        let last = floats(run["path"].as_array().unwrap().last().unwrap());
        let d = ((last[0] - 1.0).powi(2) + (last[1] - 1.0).powi(2)).sqrt();
        assert_eq!(d, want["distance_to_minimum"].as_f64().unwrap());
    }
    // The paths, point for point, against `rmsprop run` (its own loop, not compare's): noise
    // off, one optimizer per run.
    let (status, body) = server.post(
        &json!({"objective": "rosenbrock", "start": [-1.5, 2.0], "steps": 300,
                "optimizers": [{"name": "rmsprop", "preset": "keras", "lr": 0.003}, {"name": "nesterov", "lr": 0.0005}]})
        .to_string(),
    );
    assert_eq!(status, 200, "{body}");
    for (k, (name, preset, lr)) in [
        ("rmsprop", Some("keras"), "0.003"),
        ("nesterov", None, "0.0005"),
    ]
    .into_iter()
    .enumerate()
    {
        let out_dir = dir.join(format!("run-{name}"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rmsprop"));
        cmd.args([
            "run",
            "--objective",
            "rosenbrock",
            "--optimizer",
            name,
            "--lr",
            lr,
            "--steps",
            "300",
            "--start",
            "-1.5,2.0",
            "--out",
        ])
        .arg(&out_dir);
        if let Some(p) = preset {
            cmd.args(["--preset", p]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let t: Value = serde_json::from_str(
            &std::fs::read_to_string(out_dir.join("trajectory.json")).unwrap(),
        )
        .unwrap();
        let rows = t["rows"].as_array().unwrap();
        let path = body["runs"][k]["path"].as_array().unwrap();
        let loss = floats(&body["runs"][k]["loss"]);
        assert_eq!(rows.len(), path.len(), "{name}");
        for (i, (row, point)) in rows.iter().zip(path).enumerate() {
            let (x, p) = (floats(&row["x"]), floats(point));
            assert_eq!(
                (x[0].to_bits(), x[1].to_bits()),
                (p[0].to_bits(), p[1].to_bits()),
                "{name} step {i}"
            );
            // Rosenbrock's minimum value is 0: the loss is f itself.
            assert_eq!(
                row["f"].as_f64().unwrap().to_bits(),
                loss[i].to_bits(),
                "{name} f at step {i}"
            );
        }
    }
    // amsgrad was on for adam: the answer differs from the same run without it.
    let (_, plain) = server.post(
        &json!({"objective": "rosenbrock", "start": [-1.5, 2.0], "steps": 400, "noise": 0.5, "seed": 7,
                "optimizers": [{"name": "adam", "lr": 0.02}]})
        .to_string(),
    );
    assert_ne!(plain["runs"][0]["path"], runs[1]["path"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_gets_400_naming_the_field_and_the_server_keeps_serving() {
    let server = Server::start();
    let ok = json!({"objective": "sphere", "optimizers": [{"name": "rmsprop"}]});
    let with = |patch: Value| {
        let mut v = ok.clone();
        for (k, x) in patch.as_object().unwrap() {
            v[k] = x.clone();
        }
        v.to_string()
    };
    let opt = |o: Value| with(json!({ "optimizers": [o] }));
    #[rustfmt::skip]
    let cases: Vec<(String, &str, &str)> = vec![
        (with(json!({"objective": "sphere2"})), "objective", "one of sphere, rosenbrock"),
        (opt(json!({"name": "adamax"})), "optimizers[0].name", "one of rmsprop, sgd"),
        (opt(json!({"name": "rmsprop", "rho": 1.5})), "optimizers[0].rho", "a finite number in [0, 1)"),
        (opt(json!({"name": "rmsprop", "rho": "high"})), "optimizers[0].rho", "a finite number in [0, 1)"),
        (opt(json!({"name": "rmsprop", "lr": -0.1})), "optimizers[0].lr", "a finite number >= 0"),
        (opt(json!({"name": "nesterov", "momentum": 0.0})), "optimizers[0].momentum", "a finite number in (0, 1)"),
        (with(json!({"optimizers": [{"name": "sgd"}, {"name": "adam", "rho": 0.9}]})), "optimizers[1].rho", "the options of adam: lr, beta1"),
        (with(json!({"optimizers": [{"name": "rmsprop"}, {"name": "rmsprop", "rho": 0.9}]})), "optimizers[1].label", "a label no other"),
        (opt(json!({"name": "rmsprop", "preset": "caffe"})), "optimizers[0].preset", "one of pytorch, keras"),
        (opt(json!({"name": "rmsprop", "centered": "yes"})), "optimizers[0].centered", "true or false"),
        (with(json!({"optimizers": []})), "optimizers", "1 to 8 optimizers"),
        (with(json!({"optimizers": vec![json!({"name": "sgd"}); 9]})), "optimizers", "1 to 8 optimizers"),
        (with(json!({"steps": 5001})), "steps", "an integer in [1, 5000]"),
        (with(json!({"steps": 0})), "steps", "an integer in [1, 5000]"),
        (with(json!({"steps": -3})), "steps", "an integer in [1, 5000]"),
        (with(json!({"objective": "quadratic", "steps": 5000})), "steps", "at most 4000 steps here"),
        (with(json!({"start": [1.0]})), "start", "2 finite numbers"),
        (with(json!({"start": [1.0, 1e7]})), "start[1]", "a finite number in [-1000000, 1000000]"),
        (with(json!({"noise": -1.0})), "noise", "a finite number in [0, 1000]"),
        (with(json!({"tolerance": 0.0})), "tolerance", "a finite number > 0"),
        (with(json!({"colour": "red"})), "colour", "the fields objective, start"),
        // Non-finite numbers: JSON has no NaN or infinity; they come as a token or an overflow.
        (r#"{"objective": "sphere", "optimizers": [{"name": "rmsprop", "lr": NaN}]}"#.to_string(), "optimizers[0].lr", "a finite number >= 0"),
        (r#"{"objective": "sphere", "optimizers": [{"name": "rmsprop", "eps": 1e999}]}"#.to_string(), "optimizers[0].eps", "a finite number >= 0"),
        ("not json".to_string(), "", ""),
        (r#"{"optimizers": [{"name": "rmsprop"}]}"#.to_string(), "", ""),
    ];
    for (body, field, allowed) in &cases {
        let (status, err) = server.post(body);
        assert_eq!(status, 400, "{body} -> {err}");
        assert!(
            err["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{err}"
        );
        if !field.is_empty() {
            assert_eq!(err["field"], json!(field), "{body} -> {err}");
            let said = err["allowed"].as_str().unwrap_or_default();
            assert!(
                said.starts_with(allowed),
                "{body}: allowed {said:?}, wanted {allowed:?}"
            );
        }
    }
    // Not JSON by its Content-Type (a form post from another page): refused before reading.
    let post_as = |mime: &str| {
        answer(
            ureq::post(&format!("{}/api/run", server.url))
                .set("Content-Type", mime)
                .send_string(&ok.to_string()),
        )
    };
    let (status, text) = post_as("text/plain");
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (status, err["field"].as_str()),
        (400, Some("Content-Type")),
        "{err}"
    );
    assert_eq!(post_as("application/json; charset=utf-8").0, 200);
    // A host name other than loopback's (DNS rebinding): refused.
    let get_as = |host: &str| {
        answer(
            ureq::get(&format!("{}/api/optimizers", server.url))
                .set("Host", host)
                .call(),
        )
    };
    let (status, text) = get_as("attacker.example:80");
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (status, err["field"].as_str()),
        (400, Some("Host")),
        "{err}"
    );
    assert_eq!(err["allowed"], "localhost, 127.0.0.1, [::1]");
    assert_eq!(get_as("localhost:1234").0, 200);
    // A body over the limit is refused, and the client, which sends all of it before it reads,
    // gets the answer rather than a reset connection (repeated: that was a race).
    for size in [65_537 - 36, 100_000, 300_000, 1_000_000].repeat(5) {
        let huge = format!(
            r#"{{"objective": "sphere", "label": "{}"}}"#,
            "x".repeat(size)
        );
        let (status, err) = server.post(&huge);
        assert_eq!(
            (status, err["field"].as_str()),
            (400, Some("body")),
            "{size}: {err}"
        );
        assert_eq!(err["allowed"], "at most 65536 bytes");
    }
    // Still serving.
    let (status, body) = server.post(&ok.to_string());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["runs"][0]["path"].as_array().unwrap().len(), 101);
}

#[test]
fn two_hundred_concurrent_requests_are_all_answered() {
    let server = Server::start();
    let url = format!("{}/api/run", server.url);
    let statuses: Vec<(u16, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let url = url.clone();
                s.spawn(move || {
                    let body = json!({
                        "objective": "rosenbrock", "steps": 200,
                        "optimizers": [{"name": "rmsprop", "lr": 0.001 * (1 + i % 10) as f64}, {"name": "adam"}]
                    });
                    let (status, text) = answer(
                        ureq::post(&url).set("Content-Type", "application/json").send_string(&body.to_string()),
                    );
                    let v: Value = serde_json::from_str(&text).unwrap();
                    (status, v["runs"].as_array().map_or(0, Vec::len))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses.len(), 200);
    assert!(statuses.iter().all(|&s| s == (200, 2)), "{statuses:?}");
}

#[test]
fn the_page_the_registry_the_objectives_and_the_openapi_file_are_served() {
    let server = Server::start();
    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    assert!(
        page.contains("<script src=\"/app.js\"></script>")
            && page.contains("/vendor/plotly.min.js")
    );
    for path in ["/app.js", "/style.css", "/vendor/plotly.min.js"] {
        let (status, text) = server.get(path);
        assert_eq!(status, 200, "{path}");
        assert!(text.len() > 100, "{path}");
    }
    let (status, text) = server.get("/api/nothing");
    assert_eq!(status, 404, "{text}");

    let (_, text) = server.get("/api/openapi.json");
    let spec: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(spec["openapi"], "3.0.3");
    for path in ["/api/run", "/api/objectives", "/api/optimizers"] {
        assert!(spec["paths"][path].is_object(), "{path}");
    }
    // The spec's optimizer names are the registry's.
    let (_, text) = server.get("/api/optimizers");
    let registry: Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = registry["optimizers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        json!(names),
        spec["components"]["schemas"]["OptimizerSpec"]["properties"]["name"]["enum"]
    );
    // The documented limits are the server's.
    let run_schema = &spec["components"]["schemas"]["RunRequest"]["properties"];
    assert_eq!(
        run_schema["steps"]["maximum"],
        registry["limits"]["max_steps"]
    );
    assert_eq!(
        run_schema["optimizers"]["maxItems"],
        registry["limits"]["max_optimizers"]
    );
    // Keras' preset puts eps inside the root, as Keras documents.
    assert_eq!(registry["presets"]["keras"]["eps_placement"], "inside");
    assert_eq!(registry["presets"]["lesson"]["rho"], 0.9);

    let (_, text) = server.get("/api/objectives");
    let objectives: Value = serde_json::from_str(&text).unwrap();
    let sphere = objectives
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "sphere")
        .unwrap();
    assert_eq!(sphere["start"], json!([5.0, 4.0]));
    let (x, y, z) = (
        floats(&sphere["contour"]["x"]),
        floats(&sphere["contour"]["y"]),
        &sphere["contour"]["z"],
    );
    // z[j][i] = x[i]^2 + y[j]^2.
    for (j, i) in [(0, 0), (3, 70), (100, 50)] {
        assert_eq!(z[j][i].as_f64().unwrap(), x[i] * x[i] + y[j] * y[j]);
    }
}

/// A run over the compute limit is stopped and refused (the limit set to 1 ms, so any run of
/// thousands of steps in a test build exceeds it).
#[test]
fn a_run_over_the_compute_limit_is_refused_and_the_server_goes_on() {
    let server = Server::start_with(&["--max-compute-ms", "1"]);
    let optimizers: Vec<Value> = (0..8)
        .map(|i| json!({"name": "rmsprop", "label": format!("r{i}"), "rho": 0.9}))
        .collect();
    let body = json!({"objective": "rosenbrock", "steps": 5000, "optimizers": optimizers});
    let (status, err) = server.post(&body.to_string());
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["field"], "steps");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("longer than the limit of 1 ms"),
        "{err}"
    );
    let (status, _) = server.get("/api/objectives");
    assert_eq!(status, 200);
}
