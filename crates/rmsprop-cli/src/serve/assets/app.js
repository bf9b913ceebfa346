// The playground page. It draws; the server computes (POST /api/run runs the library).
"use strict";

// The lesson's example: f(x, y) = x^2 + y^2 from (5, 4), lr 0.1, rho 0.9, eps 1e-6 (eps outside
// the root, square average from 0), beside plain gradient descent at the same rate.
const LESSON = {
  objective: "sphere",
  start: [5, 4],
  steps: 100,
  noise: 0,
  seed: 0,
  view: "effective_lr",
  optimizers: [
    { name: "rmsprop", preset: "lesson", lr: 0.1, rho: 0.9, eps: 1e-6 },
    { name: "sgd", lr: 0.1 },
  ],
};

// How each numeric option is shown: a log-scale slider (lo, hi as powers of ten) or a linear one.
const SLIDERS = {
  lr: { log: true, lo: -4, hi: 1 },
  eps: { log: true, lo: -12, hi: 0 },
  weight_decay: { lo: 0, hi: 0.1, step: 0.001 },
  initial_square_avg: { lo: 0, hi: 2, step: 0.05 },
  rho: { lo: 0, hi: 0.999, step: 0.001 },
  momentum: { lo: 0, hi: 0.99, step: 0.01 },
  beta1: { lo: 0, hi: 0.999, step: 0.001 },
  beta2: { lo: 0, hi: 0.9999, step: 0.0001 },
  lr_decay: { lo: 0.95, hi: 1, step: 0.001 },
  clip_norm: { log: true, lo: -2, hi: 3 },
};
const FALLBACK_COLOURS = ["#7b3294", "#1b7837", "#c51b7d", "#2166ac", "#8c510a", "#01665e"];

const objectives = {};
const registry = {};
let presets = {};
let state = null;
let lastRun = null;
let runCount = 0;
let latest = 0;
let debounce = null;
let animation = null;
let statusBase = "";
const VIEWS = { effective_lr: "effective learning rate", root: "sqrt(v)", square_avg: "v (square average)" };

const $ = (id) => document.getElementById(id);

async function getJson(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) {
    const where = body.field ? ` (${body.field}: ${body.allowed})` : "";
    throw new Error(body.error + where);
  }
  return body;
}

function readHash() {
  if (location.hash.length < 2) return null;
  try {
    const s = JSON.parse(decodeURIComponent(location.hash.slice(1)));
    if (s && typeof s.objective === "string" && Array.isArray(s.optimizers)) return { ...LESSON, ...s };
  } catch (e) {
    setStatus("the address holds no readable view: showing the lesson's example", false);
  }
  return null;
}

function writeHash() {
  history.replaceState(null, "", "#" + encodeURIComponent(JSON.stringify(state)));
}

function setStatus(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", !!isError);
}

function format(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e4 ? String(Number(v.toPrecision(4))) : v.toExponential(2);
}

// The value an optimizer runs with: what the view sets, else its preset's, else the registry's.
function valueOf(spec, option) {
  if (spec[option.name] !== undefined) return spec[option.name];
  if (spec.name === "rmsprop") {
    const preset = presets[spec.preset || "pytorch"];
    if (preset && preset[option.name] !== undefined) return preset[option.name];
  }
  return option.default;
}

function colourOf(index) {
  const spec = state.optimizers[index];
  const same = state.optimizers.slice(0, index).filter((s) => s.name === spec.name).length;
  return same === 0 ? registry[spec.name].colour : FALLBACK_COLOURS[(index + same) % FALLBACK_COLOURS.length];
}

function labelOf(index) {
  const spec = state.optimizers[index];
  const same = state.optimizers.slice(0, index).filter((s) => s.name === spec.name).length;
  return same === 0 ? spec.name : `${spec.name} #${same + 1}`;
}

function slider(labelText, cfg, value, onInput) {
  const label = document.createElement("label");
  label.append(labelText);
  const input = document.createElement("input");
  input.type = "range";
  input.name = labelText;
  const out = document.createElement("output");
  if (cfg.log) {
    input.min = cfg.lo;
    input.max = cfg.hi;
    input.step = 0.01;
    input.value = Math.log10(Math.max(value, 10 ** cfg.lo));
  } else {
    input.min = cfg.lo;
    input.max = cfg.hi;
    input.step = cfg.step;
    input.value = value;
  }
  out.textContent = format(value);
  input.addEventListener("input", () => {
    const v = cfg.log ? Number((10 ** Number(input.value)).toPrecision(3)) : Number(input.value);
    out.textContent = format(v);
    onInput(v);
  });
  label.append(input, out);
  return label;
}

function optionControl(spec, option, index) {
  const value = valueOf(spec, option);
  const set = (v) => {
    state.optimizers[index][option.name] = v;
    changed();
  };
  if (option.type === "number") {
    const base = SLIDERS[option.name] || { lo: option.min, hi: option.max ?? 10, step: 0.01 };
    // Never past the registry's range (Nesterov's momentum must be > 0).
    const cfg = { ...base };
    if (!cfg.log && (cfg.lo < option.min || (cfg.lo === option.min && !option.min_inclusive))) {
      cfg.lo = option.min_inclusive ? option.min : option.min + cfg.step;
    }
    const el = slider(option.name, cfg, value, set);
    el.title = option.doc;
    el.dataset.option = option.name;
    return el;
  }
  const label = document.createElement("label");
  label.title = option.doc;
  label.dataset.option = option.name;
  label.append(option.name);
  if (option.type === "bool") {
    label.className = "flag";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = !!value;
    box.addEventListener("change", () => set(box.checked));
    label.append(box);
  } else {
    const select = document.createElement("select");
    for (const c of option.choices) select.append(new Option(c, c, false, c === value));
    select.addEventListener("change", () => {
      if (option.name === "preset") {
        // A new formulation: its own defaults, keeping only the learning rate the view set.
        const keep = { name: spec.name, lr: spec.lr, preset: select.value };
        state.optimizers[index] = keep;
        renderOptimizers();
        changed();
      } else {
        set(select.value);
      }
    });
    label.append(select);
  }
  return label;
}

function renderOptimizers() {
  const box = $("optimizers");
  box.replaceChildren();
  state.optimizers.forEach((spec, index) => {
    const info = registry[spec.name];
    const div = document.createElement("div");
    div.className = "opt";
    div.dataset.optimizer = String(index);
    div.style.setProperty("--colour", colourOf(index));
    const head = document.createElement("h3");
    head.append(labelOf(index));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "remove";
    remove.disabled = state.optimizers.length === 1;
    remove.addEventListener("click", () => {
      state.optimizers.splice(index, 1);
      renderOptimizers();
      changed();
    });
    head.append(remove);
    div.append(head);
    div.title = info.summary;
    for (const option of info.options) div.append(optionControl(spec, option, index));
    box.append(div);
  });
  $("add").disabled = state.optimizers.length >= limits.max_optimizers;
}

let limits = { max_optimizers: 8, max_steps: 5000 };

function renderProblem() {
  $("objective").value = state.objective;
  $("start").textContent = `(${state.start.map(format).join(", ")})`;
  $("steps").value = state.steps;
  $("steps-out").textContent = state.steps;
  $("noise").value = state.noise;
  $("noise-out").textContent = format(state.noise);
  $("seed").value = state.seed;
}

function changed() {
  writeHash();
  clearTimeout(debounce);
  debounce = setTimeout(run, 80);
}

async function run() {
  const id = ++latest;
  const request = {
    objective: state.objective,
    start: state.start,
    steps: state.steps,
    noise: state.noise,
    seed: state.seed,
    // Two optimizers of one kind need labels apart (the page shows "rmsprop #2").
    optimizers: state.optimizers.map((spec, i) => (labelOf(i) === spec.name ? spec : { ...spec, label: labelOf(i) })),
  };
  setStatus("running…", false);
  try {
    const result = await getJson("/api/run", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request),
    });
    if (id !== latest) return;
    lastRun = result;
    runCount += 1;
    document.body.dataset.runs = String(runCount);
    statusBase = `${state.steps} steps of ${state.optimizers.length} optimizer(s), computed by the library`;
    setStatus(statusBase, false);
    draw(true);
  } catch (e) {
    if (id === latest) setStatus(e.message, true);
  }
}

// Values on log axes: exact zeros (and negatives) cannot be drawn; they are left out and said.
function positive(values, dropped) {
  return values.map((v) => {
    if (v > 0 && Number.isFinite(v)) return v;
    if (v === null || !Number.isFinite(v)) dropped.diverged += 1;
    else dropped.zeros += 1;
    return null;
  });
}

function contourTrace(obj) {
  // log10(f - f_min), the colours spanning the top six decades (lower values take the lightest).
  const floor = 1e-12;
  const z = obj.contour.z.map((row) => row.map((f) => Math.log10(Math.max(f - obj.f_min, 0) + floor)));
  const top = Math.max(...z.map((row) => Math.max(...row)));
  return {
    zmin: top - 6,
    zmax: top,
    zauto: false,
    type: "contour",
    x: obj.contour.x,
    y: obj.contour.y,
    z,
    colorscale: "Viridis",
    reversescale: true,
    contours: { coloring: "heatmap", showlines: true, start: top - 6, end: top, size: 0.5 },
    line: { width: 0.5, color: "rgba(255,255,255,0.45)" },
    colorbar: { title: { text: "log10(f − f_min)", side: "right" }, thickness: 12, tickformat: ".0f", dtick: 1 },
    hovertemplate: "x %{x:.3g}, y %{y:.3g}<br>log10(f − f_min) %{z:.2f}<extra>click: start here</extra>",
    name: "f",
  };
}

function draw(animate) {
  if (!lastRun) return;
  if (animation) cancelAnimationFrame(animation);
  const steps = lastRun.runs.reduce((m, r) => Math.max(m, r.path.length), 0);
  if (!animate) return drawUpTo(steps);
  const began = performance.now();
  const duration = 900;
  const frame = (now) => {
    const t = Math.min(1, (now - began) / duration);
    drawUpTo(Math.max(2, Math.ceil(t * steps)));
    if (t < 1) animation = requestAnimationFrame(frame);
    else animation = null;
  };
  animation = requestAnimationFrame(frame);
}

function drawUpTo(k) {
  const obj = objectives[state.objective];
  const order = lastRun.runs.map((_, i) => i).sort((a, b) => (lastRun.runs[a].summary.spec.name === "rmsprop") - (lastRun.runs[b].summary.spec.name === "rmsprop"));
  const width = (i) => (lastRun.runs[i].summary.spec.name === "rmsprop" ? 3.5 : 2);
  // Points far outside the frame (a diverging run) are left out: the browser cannot draw
  // coordinates of 1e300, and the frame would not show them anyway.
  const [bx, by] = obj.bounds;
  const far = (q) => q === null || !Number.isFinite(q[0]) || !Number.isFinite(q[1]) ||
    Math.abs(q[0] - (bx[0] + bx[1]) / 2) > 50 * (bx[1] - bx[0]) || Math.abs(q[1] - (by[0] + by[1]) / 2) > 50 * (by[1] - by[0]);
  let leftFrame = false;
  const pathTraces = order.map((i) => {
    const r = lastRun.runs[i];
    const p = r.path.slice(0, k).map((q) => {
      if (!far(q)) return q;
      leftFrame = true;
      return [null, null];
    });
    return {
      type: "scatter",
      mode: "lines+markers",
      x: p.map((q) => q[0]),
      y: p.map((q) => q[1]),
      name: `${labelOf(i)} (lr ${format(r.summary.lr)})`,
      line: { color: colourOf(i), width: width(i) },
      marker: { size: 3, color: colourOf(i) },
      hovertemplate: `${labelOf(i)} step %{pointNumber}: (%{x:.4g}, %{y:.4g})<extra></extra>`,
    };
  });
  const marks = {
    type: "scatter",
    mode: "markers",
    x: [state.start[0], obj.minimum[0]],
    y: [state.start[1], obj.minimum[1]],
    marker: { symbol: ["circle-open", "x"], size: [13, 11], color: "#111", line: { width: 2 } },
    name: "start, minimum",
    hoverinfo: "skip",
  };
  const bounds = obj.bounds;
  Plotly.react($("paths"), [contourTrace(obj), ...pathTraces, marks], {
    title: { text: `${state.objective}: paths from (${state.start.map(format).join(", ")})`, font: { size: 14 } },
    xaxis: { range: bounds[0], title: { text: "x" }, constrain: "domain" },
    yaxis: { range: bounds[1], title: { text: "y" }, scaleanchor: "x", scaleratio: 1, constrain: "domain" },
    legend: { orientation: "h", y: -0.12 },
    margin: { l: 50, r: 10, t: 40, b: 40 },
    hovermode: "closest",
    uirevision: state.objective,
  }, { responsive: true, displaylogo: false });

  const dropped = { zeros: 0, diverged: 0 };
  const curves = (pick, y0) => order.map((i) => {
    const r = lastRun.runs[i];
    const ys = positive(pick(r).slice(0, k - y0), dropped);
    return {
      type: "scatter",
      mode: "lines",
      x: ys.map((_, s) => s + y0),
      y: ys,
      name: labelOf(i),
      line: { color: colourOf(i), width: width(i) },
    };
  });
  const curveLayout = (title, ytitle) => ({
    title: { text: title, font: { size: 14 } },
    xaxis: { title: { text: "step" } },
    yaxis: { title: { text: ytitle }, type: "log", exponentformat: "power" },
    legend: { orientation: "h", y: -0.25 },
    margin: { l: 60, r: 10, t: 40, b: 40 },
  });
  Plotly.react($("loss"), curves((r) => r.loss, 0), curveLayout("f − f_min per step", "f − f_min (log)"), { responsive: true, displaylogo: false });
  Plotly.react($("steps-plot"), curves((r) => r.step_lengths, 1), curveLayout("length of each step", "|x(k+1) − x(k)| (log)"), { responsive: true, displaylogo: false });

  const view = VIEWS[state.view] ? state.view : "effective_lr";
  const acc = [];
  let hidden = false;
  order.forEach((i) => {
    const r = lastRun.runs[i];
    if (!r.accumulator) return;
    if (!r.accumulator[view]) {
      hidden = true;
      return;
    }
    const rows = r.accumulator[view].slice(0, k - 1);
    const dim = rows.length ? rows[0].length : 0;
    for (let c = 0; c < Math.min(dim, 3); c++) {
      acc.push({
        type: "scatter",
        mode: "lines",
        x: rows.map((_, s) => s + 1),
        y: positive(rows.map((row) => row[c]), dropped),
        name: `${labelOf(i)} ${["x", "y", "z"][c]}`,
        line: { color: colourOf(i), width: width(i), dash: ["solid", "dash", "dot"][c] },
      });
    }
  });
  const names = VIEWS;
  // The buttons name the view: no title above them.
  const accLayout = curveLayout("", `${names[view]} per coordinate (log)`);
  accLayout.margin = { l: 60, r: 10, t: 50, b: 40 };
  if (!acc.length) accLayout.annotations = [{ text: "add an RMSProp to see its accumulator", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }];
  accLayout.updatemenus = [{
    type: "buttons",
    direction: "right",
    x: 0,
    y: 1.2,
    xanchor: "left",
    showactive: true,
    active: Object.keys(names).indexOf(view),
    buttons: Object.entries(names).map(([key, text]) => ({ label: text, method: "skip", args: [key] })),
  }];
  Plotly.react($("accumulator"), acc, accLayout, { responsive: true, displaylogo: false });
  const notes = [statusBase];
  if (dropped.zeros) notes.push(`${dropped.zeros} values ≤ 0 are not drawn on the log axes`);
  if (dropped.diverged) notes.push(`${dropped.diverged} non-finite values (a run diverged) are not drawn`);
  if (leftFrame) notes.push("a path leaves the frame far behind (its far points are not drawn)");
  if (hidden) notes.push("the effective learning rate is not shown for centered or bias-corrected runs");
  if (!$("status").classList.contains("error")) setStatus(notes.join(" · "), false);
  if (k >= lastRun.runs.reduce((m, r) => Math.max(m, r.path.length), 0)) summary();
}

function summary() {
  const rows = lastRun.runs.map((r, i) => {
    const s = r.summary;
    return `<tr><td style="color:${colourOf(i)}">${labelOf(i)}</td><td>${format(s.lr)}</td><td>${format(s.final_gap)}</td>` +
      `<td>${s.steps_to_tolerance ?? "not reached"}</td><td>${format(s.first_step)}</td><td>${format(s.distance_to_minimum)}</td></tr>`;
  });
  $("summary").innerHTML = `<thead><tr><th>optimizer</th><th>lr</th><th>final f − f_min</th>` +
    `<th>steps to f − f_min &lt; ${format(lastRun.experiment.tolerance)}</th><th>first step length</th><th>distance to minimum</th></tr></thead>` +
    `<tbody>${rows.join("")}</tbody>`;
}

function wireProblem() {
  const select = $("objective");
  for (const name of Object.keys(objectives)) select.append(new Option(name, name));
  select.addEventListener("change", () => {
    state.objective = select.value;
    state.start = objectives[select.value].start.slice();
    renderProblem();
    changed();
  });
  $("steps").max = Math.min(1000, limits.max_steps);
  $("steps").addEventListener("input", () => {
    state.steps = Number($("steps").value);
    $("steps-out").textContent = state.steps;
    changed();
  });
  $("noise").addEventListener("input", () => {
    state.noise = Number($("noise").value);
    $("noise-out").textContent = format(state.noise);
    changed();
  });
  $("seed").addEventListener("change", () => {
    state.seed = Math.max(0, Math.floor(Number($("seed").value) || 0));
    changed();
  });
  $("play").addEventListener("click", () => draw(true));
  $("lesson").addEventListener("click", () => {
    state = structuredClone(LESSON);
    renderProblem();
    renderOptimizers();
    changed();
  });
  const add = $("add-name");
  for (const name of Object.keys(registry)) add.append(new Option(name, name));
  $("add").addEventListener("click", () => {
    state.optimizers.push({ name: add.value });
    renderOptimizers();
    changed();
  });
  $("paths").on("plotly_click", (event) => {
    const p = event.points && event.points[0];
    if (!p || typeof p.x !== "number" || typeof p.y !== "number") return;
    state.start = [Number(p.x.toPrecision(4)), Number(p.y.toPrecision(4))];
    renderProblem();
    changed();
  });
  $("accumulator").on("plotly_buttonclicked", (event) => {
    state.view = event.button.args[0];
    writeHash();
    draw(false);
  });
}

async function boot() {
  try {
    const [objs, opts] = await Promise.all([getJson("/api/objectives"), getJson("/api/optimizers")]);
    for (const o of objs) if (o.contour && !o.moving) objectives[o.name] = o;
    for (const o of opts.optimizers) registry[o.name] = o;
    presets = opts.presets || {};
    limits = opts.limits;
    state = readHash() || structuredClone(LESSON);
    if (!objectives[state.objective]) state = structuredClone(LESSON);
    state.optimizers = state.optimizers.filter((s) => registry[s.name]);
    if (!state.optimizers.length) state.optimizers = structuredClone(LESSON.optimizers);
    // The first draw makes the plot elements that the click handlers attach to.
    Plotly.newPlot($("paths"), []);
    Plotly.newPlot($("accumulator"), []);
    wireProblem();
    renderProblem();
    renderOptimizers();
    writeHash();
    await run();
  } catch (e) {
    setStatus(`the playground could not start: ${e.message}`, true);
  }
}

window.playground = {
  get state() { return state; },
  get lastRun() { return lastRun; },
};
boot();
