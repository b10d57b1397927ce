// optviz explorer: a thin client. The server runs the engine and the views; this page keeps
// the state in its URL, asks the server for scenes and contour images, and draws the numbers
// it gets (colours, markers, line styles, sizes in points) onto two canvases.
"use strict";

const PT = 96 / 72;                    // CSS pixels per point: the figures' sizes are in points
const $ = (id) => document.getElementById(id);
const META = { optimizers: {}, functions: {} };
const S = {                            // the state; every field is in the URL
  mode: "race", f: null, cards: [], start: null, steps: null, noise: 0, seed: 0, style: "slides",
  arrows: new Set(), view: null, t: null, hide: new Set(),
};
let scene = null;                      // the last scene the server computed
let image = null;                      // {img, view, key}: the last contour image
let playing = false, lastFrame = 0, playPos = 0;
let version = 0;                       // scenes drawn (tests read it)

// ---------------------------------------------------------------------------- numbers

const fmt = (v, digits = 3) => {
  if (!isFinite(v)) return String(v);
  if (v === 0) return "0";
  const s = Number(v.toPrecision(digits));
  return String(s).replace("e+", "e");
};
const decode = (b64) => {
  const bin = atob(b64), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float64Array(bytes.buffer);
};
// slider position (0..1000) <-> value, for the scales the server names
const SCALES = {
  log: { to: (p, lo, hi) => 10 ** (Math.log10(lo) + (p / 1000) * (Math.log10(hi) - Math.log10(lo))),
         from: (v, lo, hi) => 1000 * (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) },
  linear: { to: (p, lo, hi) => lo + (p / 1000) * (hi - lo), from: (v, lo, hi) => 1000 * (v - lo) / (hi - lo) },
  one_minus: { to: (p, lo, hi) => 1 - 10 ** (Math.log10(1 - lo) + (p / 1000) * (Math.log10(1 - hi) - Math.log10(1 - lo))),
               from: (v, lo, hi) => 1000 * (Math.log10(1 - v) - Math.log10(1 - lo)) / (Math.log10(1 - hi) - Math.log10(1 - lo)) },
};
const roundFor = (scale, v) => scale === "linear" ? Math.round(v * 100) / 100 :
  scale === "one_minus" ? 1 - Number((1 - v).toPrecision(2)) : Number(v.toPrecision(3));
const clampPos = (p) => Math.max(0, Math.min(1000, isFinite(p) ? p : 0));

// ---------------------------------------------------------------------------- state <-> URL

function parseSpec(text) {
  const [name, rest = ""] = text.split(":");
  const card = { name: name.trim(), values: {}, extra: [], on: true, clip: null, explicit: new Set() };
  for (const item of rest.split(",").map((s) => s.trim()).filter(Boolean)) {
    const [k, v] = item.split("=").map((s) => s.trim());
    const info = META.optimizers[card.name];
    const num = Number(v);
    if (k === "clip_norm" && isFinite(num)) card.clip = num;
    else if (info && info.sliders.some((s) => s.key === k) && v !== "" && isFinite(num)) {
      card.values[k] = num; card.explicit.add(k);
    } else card.extra.push(item);
  }
  return card;
}

function specOf(card) {
  const info = META.optimizers[card.name];
  const items = [];
  for (const s of (info ? info.sliders : [])) {
    if (card.explicit.has(s.key) || s.key === "lr") {
      const v = s.key in card.values ? card.values[s.key] : s.default;
      items.push(`${s.key}=${card.raw && card.raw[s.key] !== undefined ? card.raw[s.key] : fmt(v, 6)}`);
    }
  }
  items.push(...card.extra);
  if (card.clip !== null) items.push(`clip_norm=${card.clipRaw !== undefined ? card.clipRaw : fmt(card.clip, 3)}`);
  return items.length ? `${card.name}:${items.join(",")}` : card.name;
}

function query(page = true) {
  const q = new URLSearchParams();
  if (S.mode === "race") {
    q.append("f", S.f);
    for (const c of S.cards) q.append(c.on ? "opt" : "off", specOf(c));
    if (S.start) q.append("start", S.start);
    if (S.steps !== null) q.append("steps", S.steps);
    q.append("noise", S.noise);
    q.append("seed", S.seed);
    if (S.arrows.size) q.append("arrows", [...S.arrows].join(","));
  } else {
    for (const i of S.hide) q.append("hide", i);
  }
  q.append("style", S.style);
  if (page && S.view) q.append("view", S.view.map((v) => fmt(v, 8)).join(","));
  if (page && S.t !== null) q.append("t", S.t);
  return q.toString().replace(/%3A/g, ":").replace(/%2C/g, ",").replace(/%3D/g, "=");
}

function loadState(params, defaults) {
  const get = (k) => params.get(k);
  S.style = get("style") || S.style;
  S.view = get("view") ? get("view").split(",").map(Number) : null;
  S.t = get("t") !== null && get("t") !== "" ? Number(get("t")) : null;
  if (S.mode === "run") {
    S.hide = new Set(params.getAll("hide").map(Number));
    return;
  }
  S.f = get("f") || defaults.name;
  const fn = META.functions[S.f] || defaults;
  const given = params.has("opt") || params.has("off");
  S.cards = [];
  for (const [key, on] of [["opt", true], ["off", false]]) {
    for (const text of (given ? params.getAll(key) : (on ? fn.opts : []))) {
      const c = parseSpec(text); c.on = on; S.cards.push(c);
    }
  }
  S.start = get("start") || fn.start.map((v) => fmt(v, 6)).join(",");
  S.steps = get("steps") || String(fn.steps);
  S.noise = get("noise") || "0";
  S.seed = get("seed") || "0";
  S.arrows = new Set((get("arrows") || "").split(",").filter(Boolean));
}

let urlTimer = null;
function pushUrl() {
  clearTimeout(urlTimer);
  urlTimer = setTimeout(() => history.replaceState(null, "", "?" + query()), 150);
}

// ---------------------------------------------------------------------------- talking to the server

let inFlight = false, pending = false;
async function requestScene() {
  pushUrl();
  if (inFlight) { pending = true; return; }
  inFlight = true; pending = false;
  const q = query();
  try {
    const res = await fetch("/api/scene?" + q);
    const data = await res.json();
    if (!res.ok) showError(data);
    else { clearErrors(); setScene(data); }
  } catch (e) {
    showError({ error: "the explorer's server does not answer (was it stopped?)" });
  } finally {
    inFlight = false;
    if (pending) requestScene();
  }
}

let imageTimer = null;
function requestImage(delay = 120) {
  clearTimeout(imageTimer);
  imageTimer = setTimeout(() => {
    const c = $("map"), dpr = Math.min(window.devicePixelRatio || 1, 2);
    const box = plotBox();
    const w = Math.round(box.w * dpr), h = Math.round(box.h * dpr);
    if (w < 16 || h < 16) return;
    const view = currentView();
    const q = new URLSearchParams();
    if (S.mode === "race") q.append("f", S.f);
    q.append("style", S.style);
    q.append("view", view.join(","));
    q.append("w", Math.min(w, 2400)); q.append("h", Math.min(h, 2400));
    const key = q.toString();
    if (image && image.key === key) return;
    const img = new Image();
    img.onload = () => { image = { img, view, key }; draw(); };
    img.onerror = () => {};
    img.src = "/api/field.png?" + key;
  }, delay);
}

function clearErrors() {
  $("message").textContent = "";
  document.querySelectorAll(".msg").forEach((m) => { if (m.dataset.for !== "export") m.textContent = ""; });
  document.querySelectorAll("input.bad").forEach((i) => i.classList.remove("bad"));
}

function showError(data) {
  clearErrors();
  const field = data.field || "";
  const where = field.match(/^(opt|off):(\d+)$/);
  let box = null;
  if (where) {
    const cards = S.cards.filter((c) => c.on === (where[1] === "opt"));
    const card = cards[Number(where[2])];
    if (card && card.el) box = card.el.querySelector(".msg");
  } else box = document.querySelector(`.msg[data-for="${field}"]`);
  if (field && $(field)) $(field).classList.add("bad");
  (box || $("message")).textContent = data.error;
}

// ---------------------------------------------------------------------------- the scene

function setScene(data) {
  const first = scene === null || scene.field.name !== data.field.name;
  scene = data;
  for (const p of scene.paths) {
    p.xy = decode(p.xy); p.y = decode(p.y);
    for (const k in p.arrows) p.arrows[k] = decode(p.arrows[k]);
  }
  scene.step_values = scene.step_values ? decode(scene.step_values) : new Float64Array([0]);
  $("scrub").max = scene.n_steps;
  if (S.t !== null && S.t > scene.n_steps) S.t = scene.n_steps;
  $("scrub").value = S.t === null ? scene.n_steps : S.t;
  $("cmd-plot").textContent = scene.commands.plot;
  $("cmd-animate").textContent = scene.commands.animate;
  const title = $("title");
  if (scene.title_svg) title.innerHTML = scene.title_svg;
  else { title.innerHTML = ""; const s = document.createElement("span"); s.className = "plain"; s.textContent = scene.title || ""; title.append(s); }
  if (scene.noise) {        // a noisy race says so, as the figures' titles do
    const s = document.createElement("span"); s.className = "noise";
    s.textContent = `(gradient noise \u03c3=${fmt(scene.noise, 4)}, seed ${scene.seed})`; title.append(s);
  }
  if (S.mode === "race") {
    const on = S.cards.filter((c) => c.on);
    on.forEach((c, i) => { const p = scene.paths[i]; if (p && c.el) labelCard(c, p); });
    S.cards.filter((c) => !c.on).forEach((c) => c.el && labelCard(c, null));
  } else buildRunList();
  if (first) { sizeCanvases(); requestImage(0); }
  version += 1;
  document.body.dataset.version = version;
  document.body.dataset.query = scene.query;
  draw();
}

// ---------------------------------------------------------------------------- geometry

function domainView() {
  const d = scene ? scene.field.domain : [0, 1, 0, 1];
  return [d[0], d[1], d[2], d[3]];
}
function currentView() { return fitView(S.view || domainView()); }

// equal scales on both axes where the figures have them (the domain not more than 3:1 either way):
// the window grows around its centre until its shape is the plot's
function fitView(v) {
  const d = domainView(), ratio = (d[3] - d[2]) / (d[1] - d[0]);
  if (ratio < 1 / 3 || ratio > 3) return v;
  const box = plotBox(), w = v[1] - v[0], h = v[3] - v[2], want = box.h / box.w;
  if (h / w < want) { const c = (v[2] + v[3]) / 2, nh = w * want; return [v[0], v[1], c - nh / 2, c + nh / 2]; }
  const c = (v[0] + v[1]) / 2, nw = h / want; return [c - nw / 2, c + nw / 2, v[2], v[3]];
}

function margins() {
  const fs = (S.style === "paper" ? 10 : 16) * PT;
  return { l: 3.4 * fs, r: 0.6 * fs, t: 0.5 * fs, b: 2.4 * fs, fs };
}
function plotBox() {
  const c = $("map"), m = margins();
  const W = c.clientWidth, H = c.clientHeight;
  return { x: m.l, y: m.t, w: Math.max(10, W - m.l - m.r), h: Math.max(10, H - m.t - m.b), W, H };
}

function sizeCanvases() {
  const c = $("map"), d = domainView(), m = margins();
  const avail = $("plot").clientWidth || 800;
  // equal scales when the domain is not more than 3:1 either way (as the figures), else 3:4
  let ratio = (d[3] - d[2]) / (d[1] - d[0]);
  if (ratio < 1 / 3 || ratio > 3) ratio = 0.75;
  ratio = Math.min(Math.max(ratio, 0.45), 1.2);
  // the room below the map is kept for the transport and export rows; a tall domain narrows the map
  const maxPlotH = Math.max(220, window.innerHeight - (S.style === "paper" ? 210 : 250) - m.t - m.b);
  let plotW = avail - m.l - m.r, plotH = plotW * ratio;
  if (plotH > maxPlotH) { plotH = maxPlotH; plotW = plotH / ratio; }
  c.style.width = Math.round(plotW + m.l + m.r) + "px";
  c.style.height = Math.round(plotH + m.t + m.b) + "px";
  for (const cv of [$("map"), $("loss")]) {
    const dpr = window.devicePixelRatio || 1;
    cv.width = Math.round(cv.clientWidth * dpr); cv.height = Math.round(cv.clientHeight * dpr);
  }
}

function toPx(view, box) {
  const [x0, x1, y0, y1] = view;
  return {
    x: (x) => box.x + (x - x0) / (x1 - x0) * box.w,
    y: (y) => box.y + box.h - (y - y0) / (y1 - y0) * box.h,
    ix: (px) => x0 + (px - box.x) / box.w * (x1 - x0),
    iy: (py) => y0 + (box.y + box.h - py) / box.h * (y1 - y0),
  };
}

function niceTicks(lo, hi, n = 5) {
  const span = hi - lo, raw = span / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => span / s <= n + 0.5) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) out.push(Math.abs(v) < 1e-12 * span ? 0 : v);
  return out;
}
const tickText = (v) => {
  const a = Math.abs(v);
  const s = (a !== 0 && (a >= 1e4 || a < 1e-3)) ? v.toExponential(1).replace("e+", "e") : String(Number(v.toPrecision(6)));
  return s.replace("-", "\u2212");
};

// ---------------------------------------------------------------------------- drawing: markers

function markerPath(ctx, m, x, y, s) {
  const r = s / 2;
  ctx.beginPath();
  const poly = (n, rot, rx = r, ry = r) => {
    for (let i = 0; i < n; i++) {
      const a = rot + (2 * Math.PI * i) / n;
      const px = x + rx * Math.sin(a), py = y - ry * Math.cos(a);
      i ? ctx.lineTo(px, py) : ctx.moveTo(px, py);
    }
    ctx.closePath();
  };
  const tri = (rot) => {
    const pts = [[0, -r], [-r, r], [r, r]];
    const c = Math.cos(rot), sn = Math.sin(rot);
    pts.forEach(([px, py], i) => { const qx = x + px * c - py * sn, qy = y + px * sn + py * c; i ? ctx.lineTo(qx, qy) : ctx.moveTo(qx, qy); });
    ctx.closePath();
  };
  const plus = (rot) => {
    const a = r / 3, pts = [[-a, -r], [a, -r], [a, -a], [r, -a], [r, a], [a, a], [a, r], [-a, r], [-a, a], [-r, a], [-r, -a], [-a, -a]];
    const c = Math.cos(rot), sn = Math.sin(rot);
    pts.forEach(([px, py], i) => { const qx = x + px * c - py * sn, qy = y + px * sn + py * c; i ? ctx.lineTo(qx, qy) : ctx.moveTo(qx, qy); });
    ctx.closePath();
  };
  switch (m) {
    case "s": ctx.rect(x - r, y - r, s, s); break;
    case "^": tri(0); break;
    case "v": tri(Math.PI); break;
    case "<": tri(-Math.PI / 2); break;
    case ">": tri(Math.PI / 2); break;
    case "D": poly(4, 0, r * Math.SQRT2, r * Math.SQRT2); break;
    case "d": poly(4, 0, 0.6 * r * Math.SQRT2, r * Math.SQRT2); break;
    case "P": plus(0); break;
    case "X": plus(Math.PI / 4); break;
    case "h": poly(6, 0); break;
    case "H": poly(6, Math.PI / 6); break;
    case "p": poly(5, 0); break;
    case "8": poly(8, Math.PI / 8); break;
    default: ctx.arc(x, y, r, 0, 2 * Math.PI);
  }
}

function marker(ctx, m, x, y, sizePt, fill, edge, edgePt, alpha = 1) {
  markerPath(ctx, m, x, y, sizePt * PT);
  ctx.globalAlpha = alpha;
  if (fill) { ctx.fillStyle = fill; ctx.fill(); }
  if (edge && edgePt > 0) { ctx.strokeStyle = edge; ctx.lineWidth = edgePt * PT; ctx.setLineDash([]); ctx.stroke(); }
  ctx.globalAlpha = 1;
}

// where to put a diverged path's cross in the view [x0, x1, y0, y1]: as the views' exit_point, where
// the path first leaves the picture (else its last point); when the view does not hold the start
// (zoomed in elsewhere), where the path leaves the view for the last time; null if it never shows
function exitPoint(xs, ys, n, v) {
  const inside = (i) => xs[i] >= v[0] && xs[i] <= v[1] && ys[i] >= v[2] && ys[i] <= v[3];
  const cross = (k) => {                 // the point where segment k-1 -> k meets the box's edge
    const p = [xs[k - 1], ys[k - 1]], q = [xs[k], ys[k]], d = [q[0] - p[0], q[1] - p[1]];
    let t = 1;
    [[v[0], v[1]], [v[2], v[3]]].forEach(([lo, hi], i) => {
      if (d[i] > 0 && q[i] > hi) t = Math.min(t, (hi - p[i]) / d[i]);
      else if (d[i] < 0 && q[i] < lo) t = Math.min(t, (lo - p[i]) / d[i]);
    });
    t = Math.max(0, t);
    return [p[0] + t * d[0], p[1] + t * d[1]];
  };
  if (inside(0)) {
    let k = 1;
    while (k < n && inside(k)) k++;
    return k >= n ? [xs[n - 1], ys[n - 1]] : cross(k);
  }
  if (inside(n - 1)) return [xs[n - 1], ys[n - 1]];
  for (let k = n - 1; k >= 1; k--) if (inside(k - 1)) return cross(k);
  return null;
}

// ---------------------------------------------------------------------------- drawing: the map

function currentStep() {
  if (!scene) return 0;
  return Math.min(S.t === null ? scene.n_steps : S.t, scene.n_steps);
}

function draw() {
  drawMap();
  drawLoss();
  const k = currentStep();
  const shown = scene && scene.step_values.length > k ? scene.step_values[k] : k;
  const last = scene && scene.step_values.length ? scene.step_values[scene.step_values.length - 1] : 0;
  $("stepnum").textContent = scene ? `step ${Math.round(shown).toLocaleString("en")} / ${Math.round(last).toLocaleString("en")}` : "";
  $("scrub").value = k;
}

function drawMap() {
  const c = $("map"), ctx = c.getContext("2d"), dpr = c.width / (c.clientWidth || 1);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  if (!scene) return;
  const deco = scene.deco, box = plotBox(), view = currentView(), T = toPx(view, box);
  ctx.clearRect(0, 0, box.W, box.H);
  ctx.fillStyle = deco.background; ctx.fillRect(0, 0, box.W, box.H);
  ctx.save();
  ctx.beginPath(); ctx.rect(box.x, box.y, box.w, box.h); ctx.clip();
  if (image) {   // the last image, placed where its view lies in the current one (pan and zoom before it is redrawn)
    const v = image.view;
    ctx.drawImage(image.img, T.x(v[0]), T.y(v[3]), T.x(v[1]) - T.x(v[0]), T.y(v[2]) - T.y(v[3]));
  }
  const d = scene.field.domain;
  const tol = 0.005 * Math.max(d[1] - d[0], d[3] - d[2]);
  if (view[0] < d[0] - tol || view[1] > d[1] + tol || view[2] < d[2] - tol || view[3] > d[3] + tol) {   // where a start may go
    ctx.setLineDash([6, 4]); ctx.strokeStyle = deco.ink; ctx.globalAlpha = 0.6; ctx.lineWidth = 1.2;
    ctx.strokeRect(T.x(d[0]), T.y(d[3]), T.x(d[1]) - T.x(d[0]), T.y(d[2]) - T.y(d[3]));
    ctx.globalAlpha = 1; ctx.setLineDash([]);
  }
  const k = currentStep();
  const lw = deco.linewidth;
  scene.paths.forEach((p) => {
    const n = p.n, i = Math.min(k, n - 1);
    const gone = p.diverged_at !== null && k >= p.diverged_at;
    const xs = [], ys = [];
    for (let j = 0; j <= i; j++) { xs.push(p.xy[2 * j]); ys.push(p.xy[2 * j + 1]); }
    // halo in the background colour, then the line (its own dash pattern, scaled as matplotlib scales it)
    ctx.lineCap = "round"; ctx.lineJoin = "round";
    const line = (width, colour, dash, alpha) => {
      ctx.beginPath();
      xs.forEach((x, j) => (j ? ctx.lineTo(T.x(x), T.y(ys[j])) : ctx.moveTo(T.x(x), T.y(ys[j]))));
      ctx.setLineDash(dash.map((v) => v * PT)); ctx.strokeStyle = colour; ctx.lineWidth = width * PT;
      ctx.globalAlpha = alpha; ctx.stroke(); ctx.globalAlpha = 1;
    };
    line(lw + deco.halo_extra, deco.halo, [], 0.85);
    line(lw, p.colour, p.dash, 1);
    ctx.setLineDash([]);
    for (let j = 0; j <= i; j += p.markevery) {
      marker(ctx, p.marker, T.x(xs[j]), T.y(ys[j]), deco.path_marker_size, p.colour, deco.halo, lw < 2 ? 0.6 : 1.0);
    }
    marker(ctx, "o", T.x(xs[0]), T.y(ys[0]), deco.start_size, null, deco.ink, lw * 0.8);
  });
  // heads, crosses and arrows above every line (as the animation's z-order)
  scene.paths.forEach((p) => {
    const n = p.n, i = Math.min(k, n - 1);
    const gone = p.diverged_at !== null && k >= p.diverged_at;
    if (gone) {
      ctx.restore(); ctx.save();          // the cross may sit on the edge: unclipped, as in the figures
      const xs = [], ys = [];
      for (let j = 0; j < n; j++) { xs.push(p.xy[2 * j]); ys.push(p.xy[2 * j + 1]); }
      const e = exitPoint(xs, ys, n, view);
      if (e) marker(ctx, "X", T.x(e[0]), T.y(e[1]), deco.cross_size, p.colour, deco.ink, lw < 2 ? 1.0 : 1.6);
      ctx.beginPath(); ctx.rect(box.x, box.y, box.w, box.h); ctx.clip();
      return;
    }
    const hx = p.xy[2 * i], hy = p.xy[2 * i + 1];
    marker(ctx, "o", T.x(hx), T.y(hy), deco.start_size * 0.7, p.colour, deco.halo, 1.2);
    for (const kind of ["momentum", "grad"]) {
      const a = p.arrows[kind];
      if (!a || !S.arrows.has(kind)) continue;
      const f = Math.min(k, a.length / 2 - 1);
      arrow(ctx, T.x(hx), T.y(hy), T.x(hx + a[2 * f]), T.y(hy + a[2 * f + 1]), scene.arrow_width[kind] * box.w,
            p.colour, deco.ink, kind === "momentum" ? 0.6 : 1.0);
    }
  });
  ctx.restore();
  drawAxes(ctx, box, view, deco);
}

function arrow(ctx, x0, y0, x1, y1, width, fill, edge, alpha) {
  const dx = x1 - x0, dy = y1 - y0, L = Math.hypot(dx, dy);
  if (!(L > 0.5)) return;
  const ux = dx / L, uy = dy / L, nx = -uy, ny = ux;
  const hw = Math.min(2.6 * width, L) / 2 * 1.0, hl = Math.min(3.0 * width, L), ha = Math.min(2.7 * width, L), w = width / 2;
  const pts = [[0, -w], [L - ha, -w], [L - hl, -hw - 0], [L, 0], [L - hl, hw], [L - ha, w], [0, w]];
  ctx.beginPath();
  pts.forEach(([a, b], i) => { const px = x0 + a * ux + b * nx, py = y0 + a * uy + b * ny; i ? ctx.lineTo(px, py) : ctx.moveTo(px, py); });
  ctx.closePath();
  ctx.globalAlpha = alpha; ctx.fillStyle = fill; ctx.fill();
  ctx.strokeStyle = edge; ctx.lineWidth = 1.0 * PT; ctx.setLineDash([]); ctx.stroke(); ctx.globalAlpha = 1;
}

function drawAxes(ctx, box, view, deco) {
  const m = margins(), T = toPx(view, box);
  ctx.strokeStyle = deco.ink; ctx.fillStyle = deco.ink; ctx.lineWidth = 1; ctx.globalAlpha = 1;
  ctx.strokeRect(box.x, box.y, box.w, box.h);
  ctx.font = `${Math.round(m.fs * 0.82)}px "DejaVu Sans", Arial, sans-serif`;
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (const v of niceTicks(view[0], view[1], Math.max(3, Math.floor(box.w / (m.fs * 5))))) {
    const x = T.x(v);
    ctx.beginPath(); ctx.moveTo(x, box.y + box.h); ctx.lineTo(x, box.y + box.h + 5); ctx.stroke();
    ctx.fillText(tickText(v), x, box.y + box.h + 7);
  }
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const v of niceTicks(view[2], view[3], Math.max(3, Math.floor(box.h / (m.fs * 3))))) {
    const y = T.y(v);
    ctx.beginPath(); ctx.moveTo(box.x - 5, y); ctx.lineTo(box.x, y); ctx.stroke();
    ctx.fillText(tickText(v), box.x - 7, y);
  }
  ctx.font = `${Math.round(m.fs)}px "DejaVu Sans", Arial, sans-serif`;
  ctx.textAlign = "center"; ctx.textBaseline = "bottom";
  ctx.fillText(scene.field.xlabel, box.x + box.w / 2, box.H - 2);
  ctx.save(); ctx.translate(m.fs * 0.9, box.y + box.h / 2);
  if (scene.field.ylabel.length > 2) ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle"; ctx.fillText(scene.field.ylabel, 0, 0); ctx.restore();
}

// ---------------------------------------------------------------------------- drawing: the loss panel

function lossScale(L) {
  const lt = L.linthresh || 1;
  if (L.scale === "log") return (v) => Math.log10(v);
  if (L.scale === "symlog") return (v) => Math.sign(v) * (Math.abs(v) <= lt ? Math.abs(v) / lt : 1 + Math.log10(Math.abs(v) / lt));
  return (v) => v;
}

function drawLoss() {
  const c = $("loss"), ctx = c.getContext("2d"), dpr = c.width / (c.clientWidth || 1);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const W = c.clientWidth, H = c.clientHeight;
  ctx.clearRect(0, 0, W, H);
  if (!scene || !scene.loss) return;
  const deco = scene.deco, L = scene.loss, fs = (S.style === "paper" ? 10 : 15) * PT;
  const box = { x: 3.6 * fs, y: 0.5 * fs, w: W - 4.1 * fs, h: H - 2.6 * fs };
  const f = lossScale(L), sv = scene.step_values, last = sv[sv.length - 1] || 1;
  const [ylo, yhi] = [f(L.ylim[0]), f(L.ylim[1])];
  const X = (s) => box.x + (s + 0.02 * last) / (1.04 * Math.max(last, 1)) * box.w;
  const Y = (v) => box.y + box.h - (f(v) - ylo) / (yhi - ylo) * box.h;
  ctx.fillStyle = deco.background; ctx.fillRect(0, 0, W, H);
  // grid and ticks
  ctx.font = `${Math.round(fs * 0.8)}px "DejaVu Sans", Arial, sans-serif`;
  ctx.fillStyle = deco.ink; ctx.strokeStyle = deco.ink;
  let yt = [];
  if (L.scale === "log") {
    for (let e = Math.ceil(Math.log10(L.ylim[0])); e <= Math.floor(Math.log10(L.ylim[1])); e++) yt.push(10 ** e);
    if (yt.length > 7) { const step = Math.ceil(yt.length / 6); yt = yt.filter((_, i) => i % step === 0); }
    if (yt.length < 2) yt = [L.ylim[0], L.ylim[1]].map((v) => Number(v.toPrecision(1)));
  } else if (L.scale === "symlog") {
    yt = [0];
    for (let e = 0; e < 12; e++) { const v = L.linthresh * 10 ** e; if (v <= L.ylim[1]) yt.push(v); if (-v >= L.ylim[0]) yt.unshift(-v); }
  } else yt = niceTicks(L.ylim[0], L.ylim[1], 5);
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const v of yt) {
    const y = Y(v); if (y < box.y - 1 || y > box.y + box.h + 1) continue;
    ctx.globalAlpha = 0.25; ctx.beginPath(); ctx.moveTo(box.x, y); ctx.lineTo(box.x + box.w, y); ctx.stroke(); ctx.globalAlpha = 1;
    const a = Math.abs(v);
    const label = L.scale !== "linear" && a !== 0 && (a >= 1e3 || a < 1e-2) ? `1e${Math.round(Math.log10(a))}` : tickText(v);
    ctx.fillText((v < 0 && !label.startsWith("\u2212") ? "\u2212" : "") + label, box.x - 5, y);
  }
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (const s of niceTicks(0, last, 4)) {
    const x = X(s); ctx.globalAlpha = 0.25; ctx.beginPath(); ctx.moveTo(x, box.y); ctx.lineTo(x, box.y + box.h); ctx.stroke();
    ctx.globalAlpha = 1; ctx.fillText(tickText(s), x, box.y + box.h + 4);
  }
  ctx.strokeRect(box.x, box.y, box.w, box.h);
  ctx.textBaseline = "bottom"; ctx.fillText(S.mode === "run" ? "training step" : "step", box.x + box.w / 2, H - 1);
  ctx.save(); ctx.translate(fs * 0.75, box.y + box.h / 2); ctx.rotate(-Math.PI / 2); ctx.textBaseline = "middle";
  ctx.fillText(L.ylabel, 0, 0); ctx.restore();

  const k = currentStep();
  ctx.save(); ctx.beginPath(); ctx.rect(box.x, box.y, box.w, box.h); ctx.clip();
  const xk = X(sv[Math.min(k, sv.length - 1)]);
  ctx.globalAlpha = 0.35; ctx.lineWidth = 1.2 * PT; ctx.beginPath(); ctx.moveTo(xk, box.y); ctx.lineTo(xk, box.y + box.h); ctx.stroke(); ctx.globalAlpha = 1;
  const lw = deco.linewidth * 0.75;
  scene.paths.forEach((p) => {
    const n = p.n, i = Math.min(k, n - 1);
    ctx.beginPath(); let started = false;
    for (let j = 0; j <= i; j++) {
      const v = p.y[j]; if (!isFinite(v)) break;
      const x = X(sv[j]), y = Y(v);
      started ? ctx.lineTo(x, y) : ctx.moveTo(x, y); started = true;
    }
    ctx.setLineDash(p.dash.map((v) => v * 0.75 * PT)); ctx.strokeStyle = p.colour; ctx.lineWidth = lw * PT;
    ctx.lineCap = "round"; ctx.stroke(); ctx.setLineDash([]);
  });
  ctx.restore();
  scene.paths.forEach((p) => {
    const n = p.n, i = Math.min(k, n - 1), v = p.y[i];
    if (!isFinite(v)) return;
    const gone = p.diverged_at !== null && k >= p.diverged_at;
    const x = X(sv[i]), y = Math.max(box.y, Math.min(box.y + box.h, Y(v)));
    if (gone) marker(ctx, "X", x, y, deco.cross_size * 0.7, p.colour, deco.ink, 1.0);
    else marker(ctx, "o", x, y, deco.start_size * 0.5, p.colour, deco.halo, 1.0);
  });
}

// ---------------------------------------------------------------------------- controls: optimizers

function swatch(colour, markerName, dash) {
  const c = document.createElement("canvas");
  c.className = "swatch"; c.width = 48; c.height = 40;
  const ctx = c.getContext("2d");
  ctx.lineWidth = 5; ctx.strokeStyle = colour; ctx.setLineDash(dash.map((v) => v * 5));
  ctx.beginPath(); ctx.moveTo(2, 20); ctx.lineTo(46, 20); ctx.stroke(); ctx.setLineDash([]);
  markerPath(ctx, markerName, 24, 20, 22); ctx.fillStyle = colour; ctx.fill();
  ctx.strokeStyle = S.style === "dark" ? "#121417" : "#ffffff"; ctx.lineWidth = 2; ctx.stroke();
  return c;
}

function labelCard(card, path) {
  const el = card.el.querySelector(".label");
  const info = META.optimizers[card.name];
  let text = path ? path.label : "off";
  if (info && text.startsWith(info.display + " ")) text = text.slice(info.display.length + 1);   // the name is beside it
  el.textContent = text;
  el.title = path ? path.label : "";
  el.classList.toggle("diverged", !!(path && path.diverged_at !== null && path.exit === "diverged"));
  if (path && card.swatch) {        // the card's swatch draws the path's own line style
    const fresh = swatch(path.colour, path.marker, path.dash.map((v) => v / scene.deco.linewidth));
    card.swatch.replaceWith(fresh); card.swatch = fresh;
  }
}

function buildCards() {
  const box = $("optimizers");
  box.innerHTML = "";
  S.cards.forEach((card, idx) => {
    const info = META.optimizers[card.name];
    const colour = info ? info.colour[S.style] : "#555555";
    const el = document.createElement("div");
    el.className = "card opt" + (card.on ? "" : " off");
    el.style.setProperty("--c", colour);
    el.dataset.optimizer = card.name;
    card.el = el;
    const head = document.createElement("div"); head.className = "head";
    const toggle = document.createElement("input"); toggle.type = "checkbox"; toggle.checked = card.on;
    toggle.className = "toggle"; toggle.title = "show this optimizer";
    toggle.addEventListener("change", () => { card.on = toggle.checked; el.classList.toggle("off", !card.on); requestScene(); });
    const name = document.createElement("span"); name.className = "name"; name.textContent = info ? info.display : card.name;
    const label = document.createElement("span"); label.className = "label";
    const remove = document.createElement("button"); remove.type = "button"; remove.className = "remove"; remove.textContent = "\u00d7";
    remove.title = "remove"; remove.addEventListener("click", () => { S.cards.splice(idx, 1); buildCards(); requestScene(); });
    const clip = document.createElement("label"); clip.className = "clip"; clip.title = "clip the gradient's norm first";
    const clipBox = document.createElement("input"); clipBox.type = "checkbox"; clipBox.checked = card.clip !== null;
    clipBox.setAttribute("aria-label", `${card.name} clipping`);
    clip.append(clipBox, " clip");
    card.swatch = swatch(colour, info ? info.marker : "o", []);
    head.append(toggle, card.swatch, name, label, clip, remove);
    el.append(head);
    for (const s of (info ? info.sliders : [])) el.append(sliderRow(card, s));
    const clipRowEl = sliderRow(card, META.clip, true);
    clipRowEl.hidden = card.clip === null;
    clipBox.addEventListener("change", () => {
      card.clip = clipBox.checked ? (card.lastClip || 1) : null;
      if (card.clip === null) card.lastClip = Number(clipRowEl.querySelector("input.num-in").value) || 1;
      clipRowEl.hidden = card.clip === null;
      clipRowEl.querySelectorAll("input").forEach((i) => { if (i.type === "range") i.value = clampPos(SCALES.log.from(card.clip || 1, META.clip.min, META.clip.max)); else i.value = fmt(card.clip || 1, 4); });
      requestScene();
    });
    el.append(clipRowEl);
    const msg = document.createElement("div"); msg.className = "msg"; el.append(msg);
    box.append(el);
  });
}

function sliderRow(card, s, clip = false) {
  const row = document.createElement("div"); row.className = "row slider";
  const label = document.createElement("label"); label.textContent = s.label;
  const range = document.createElement("input"); range.type = "range"; range.min = 0; range.max = 1000; range.step = 1;
  range.setAttribute("aria-label", `${card.name} ${s.key}`); range.dataset.key = s.key;
  const num = document.createElement("input"); num.className = "num-in"; num.dataset.key = s.key;
  const value = () => clip ? (card.clip === null ? 1 : card.clip) : (s.key in card.values ? card.values[s.key] : s.default);
  const show = () => { const v = value(); range.value = clampPos(SCALES[s.scale].from(v, s.min, s.max)); num.value = fmt(v, 4); };
  range.addEventListener("input", () => {
    const v = roundFor(s.scale, SCALES[s.scale].to(Number(range.value), s.min, s.max));
    set(v); num.value = fmt(v, 4);
  });
  num.addEventListener("change", () => {
    const text = num.value.trim(), v = Number(text);
    if (clip) { if (text !== "" && isFinite(v)) { range.value = clampPos(SCALES.log.from(v, s.min, s.max)); } card.clipRaw = text; set(isFinite(v) ? v : card.clip); return; }
    card.raw = card.raw || {}; card.raw[s.key] = text; card.explicit.add(s.key);
    if (text !== "" && isFinite(v)) { card.values[s.key] = v; range.value = clampPos(SCALES[s.scale].from(v, s.min, s.max)); }
    requestScene();
  });
  const set = (v) => {
    if (clip) { card.clip = v; if (card.clipRaw !== undefined && Number(card.clipRaw) !== v) delete card.clipRaw; }
    else { card.values[s.key] = v; card.explicit.add(s.key); if (card.raw) delete card.raw[s.key]; }
    requestScene();
  };
  show();
  row.append(label, range, num);
  return row;
}

function buildAddMenu() {
  const sel = $("add-opt");
  for (const o of Object.values(META.optimizers)) {
    const opt = document.createElement("option"); opt.value = o.name; opt.textContent = `${o.display} (${o.description})`;
    sel.append(opt);
  }
  sel.addEventListener("change", () => {
    if (!sel.value) return;
    const info = META.optimizers[sel.value];
    const card = parseSpec(`${sel.value}:lr=${fmt(info.defaults.lr, 3)}`);
    S.cards.push(card); sel.value = ""; buildCards(); requestScene();
  });
}

// ---------------------------------------------------------------------------- controls: run paths

function buildRunList() {
  const box = $("optimizers");
  if (box.dataset.built === "1") {
    scene.runs.forEach((r, i) => { const el = box.children[i]; if (el) el.querySelector(".label").textContent = r.label; });
    return;
  }
  box.dataset.built = "1"; box.innerHTML = "";
  scene.runs.forEach((r, i) => {
    const el = document.createElement("div"); el.className = "card opt" + (r.hidden ? " off" : "");
    el.style.setProperty("--c", r.colour);
    const head = document.createElement("div"); head.className = "head";
    const toggle = document.createElement("input"); toggle.type = "checkbox"; toggle.checked = !r.hidden;
    toggle.addEventListener("change", () => {
      if (toggle.checked) S.hide.delete(i); else S.hide.add(i);
      el.classList.toggle("off", !toggle.checked); requestScene();
    });
    const label = document.createElement("span"); label.className = "label"; label.textContent = r.label; label.title = r.label;
    head.append(toggle, swatch(r.colour, r.marker, []), label);
    el.append(head); box.append(el);
  });
}

// ---------------------------------------------------------------------------- controls: globals

const STEPS_MAX = () => META.limits.steps;
function stepsPos(n) { return clampPos(1000 * Math.log10(n / 10) / Math.log10(STEPS_MAX() / 10)); }
function stepsAt(p) { return Math.round(10 * (STEPS_MAX() / 10) ** (p / 1000)); }
function noisePos(v) { return v > 0 ? Math.max(1, Math.min(100, Math.round(1 + 99 * (Math.log10(v) + 3) / 5))) : 0; }
function noiseAt(p) { return p <= 0 ? 0 : Number((10 ** (-3 + 5 * (p - 1) / 99)).toPrecision(2)); }

function syncGlobals() {
  $("start").value = S.start || "";
  $("steps").value = S.steps; $("steps-range").value = stepsPos(Number(S.steps) || 10);
  $("noise").value = S.noise; $("noise-range").value = noisePos(Number(S.noise) || 0);
  $("seed").value = S.seed;
  $("arrow-grad").checked = S.arrows.has("grad");
  $("arrow-momentum").checked = S.arrows.has("momentum");
  $("style").value = S.style;
  if (S.f) $("function").value = S.f;
  $("export-frames").value = S.mode === "run" ? 120 : 300;
}

function wireGlobals() {
  $("start").addEventListener("change", () => { S.start = $("start").value.trim(); requestScene(); });
  $("steps-range").addEventListener("input", () => { S.steps = String(stepsAt(Number($("steps-range").value))); $("steps").value = S.steps; S.t = null; requestScene(); });
  $("steps").addEventListener("change", () => { S.steps = $("steps").value.trim(); S.t = null; $("steps-range").value = stepsPos(Number(S.steps) || 10); requestScene(); });
  $("noise-range").addEventListener("input", () => { S.noise = String(noiseAt(Number($("noise-range").value))); $("noise").value = S.noise; requestScene(); });
  $("noise").addEventListener("change", () => { S.noise = $("noise").value.trim(); $("noise-range").value = noisePos(Number(S.noise) || 0); requestScene(); });
  $("seed").addEventListener("change", () => { S.seed = $("seed").value.trim(); requestScene(); });
  for (const kind of ["grad", "momentum"]) {
    $(`arrow-${kind}`).addEventListener("change", (e) => { e.target.checked ? S.arrows.add(kind) : S.arrows.delete(kind); requestScene(); });
  }
  $("style").addEventListener("change", () => { S.style = $("style").value; applyStyle(); requestScene(); requestImage(0); });
  $("function").addEventListener("change", async () => {
    const fn = META.functions[$("function").value];
    S.f = fn.name; S.view = null; S.t = null; image = null;
    S.cards = fn.opts.map(parseSpec);
    S.start = fn.start.map((v) => fmt(v, 6)).join(","); S.steps = String(fn.steps);
    buildCards(); syncGlobals(); scene = null; requestScene();
  });
  $("reset-view").addEventListener("click", () => { S.view = null; draw(); requestImage(0); pushUrl(); });
  $("play").addEventListener("click", togglePlay);
  $("scrub").addEventListener("input", () => { stopPlay(); S.t = Number($("scrub").value); if (scene && S.t >= scene.n_steps) S.t = null; draw(); pushUrl(); });
  document.addEventListener("keydown", (e) => { if (e.code === "Space" && e.target === document.body) { e.preventDefault(); togglePlay(); } });
}

function applyStyle() {
  document.body.classList.remove("style-paper", "style-slides", "style-dark");
  document.body.classList.add("style-" + S.style);
  if (S.mode === "race") buildCards();
  else $("optimizers").dataset.built = "";        // the run's list is rebuilt in the new colours
  sizeCanvases();
}

// ---------------------------------------------------------------------------- play, pan, zoom, click

function togglePlay() { playing ? stopPlay() : startPlay(); }
function startPlay() {
  if (!scene || !scene.n_steps) return;
  if (S.t === null || S.t >= scene.n_steps) S.t = 0;
  playing = true; playPos = S.t; lastFrame = performance.now();
  $("play").innerHTML = "&#10074;&#10074;"; $("play").setAttribute("aria-label", "pause");
  requestAnimationFrame(tick);
}
function stopPlay() {
  playing = false; $("play").innerHTML = "&#9654;"; $("play").setAttribute("aria-label", "play");
}
function tick(now) {
  if (!playing || !scene) return;
  const dt = (now - lastFrame) / 1000; lastFrame = now;
  playPos += dt * Math.max(scene.n_steps / 6, 10);        // a race takes about six seconds
  if (playPos >= scene.n_steps) { S.t = null; stopPlay(); draw(); pushUrl(); return; }
  S.t = Math.floor(playPos); draw();
  requestAnimationFrame(tick);
}

function wireMap() {
  const c = $("map");
  let drag = null;
  c.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, view: currentView().slice(), moved: false };
    c.setPointerCapture(e.pointerId);
  });
  c.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 5) return;
    drag.moved = true; c.classList.add("panning");
    const box = plotBox(), v = drag.view;
    const sx = (v[1] - v[0]) / box.w, sy = (v[3] - v[2]) / box.h;
    S.view = [v[0] - dx * sx, v[1] - dx * sx, v[2] + dy * sy, v[3] + dy * sy];
    draw();
  });
  c.addEventListener("pointerup", (e) => {
    c.classList.remove("panning");
    if (drag && !drag.moved && S.mode === "race") {
      const r = c.getBoundingClientRect(), box = plotBox(), T = toPx(currentView(), box);
      const px = e.clientX - r.left, py = e.clientY - r.top;
      if (px >= box.x && px <= box.x + box.w && py >= box.y && py <= box.y + box.h) {
        S.start = `${fmt(T.ix(px), 4)},${fmt(T.iy(py), 4)}`; S.t = null;
        $("start").value = S.start; requestScene();
      }
    } else if (drag && drag.moved) { requestImage(); pushUrl(); }
    drag = null;
  });
  c.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = c.getBoundingClientRect(), box = plotBox(), v = currentView(), T = toPx(v, box);
    const mx = T.ix(e.clientX - r.left), my = T.iy(e.clientY - r.top);
    const f = Math.exp(Math.sign(e.deltaY) * 0.15);
    const d = domainView(), w = d[1] - d[0], h = d[3] - d[2];
    let nv = [mx + (v[0] - mx) * f, mx + (v[1] - mx) * f, my + (v[2] - my) * f, my + (v[3] - my) * f];
    // the server's bounds: at most 5 domains, at least 1e-6 of one
    if (nv[1] - nv[0] > 4.9 * w || nv[3] - nv[2] > 4.9 * h || nv[1] - nv[0] < 2e-6 * w || nv[3] - nv[2] < 2e-6 * h) return;
    S.view = nv; draw(); requestImage(); pushUrl();
  }, { passive: false });
  window.addEventListener("resize", () => { sizeCanvases(); draw(); requestImage(); });
}

// ---------------------------------------------------------------------------- export and copy

function wireExport() {
  document.querySelectorAll("#export button[data-format]").forEach((b) => b.addEventListener("click", async () => {
    const fmtName = b.dataset.format, status = $("export-status"), msg = document.querySelector('.msg[data-for="export"]');
    const buttons = document.querySelectorAll("#export button[data-format]");
    buttons.forEach((x) => (x.disabled = true));
    msg.textContent = ""; status.textContent = `writing ${fmtName.toUpperCase()} ...`;
    const body = { query: query(false), format: fmtName, kind: $("export-kind").value,
                   frames: Number($("export-frames").value) || 0 };
    const name = $("export-name").value.trim();
    if (name) body.name = name;
    try {
      const res = await fetch("/api/export", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const data = await res.json();
      if (!res.ok) { status.textContent = ""; msg.textContent = data.error; }
      else {
        status.innerHTML = "";
        const a = document.createElement("a"); a.href = data.download; a.textContent = data.path; a.download = data.name;
        status.append("wrote ", a, ` (${(data.bytes / 1024).toFixed(0)} kB)`);
        status.dataset.written = data.path;
        $(FORMAT_CMD[fmtName]).textContent = data.command;
      }
    } catch (e) { status.textContent = ""; msg.textContent = "the explorer's server does not answer"; }
    buttons.forEach((x) => (x.disabled = false));
  }));
  document.querySelectorAll("button.copy").forEach((b) => b.addEventListener("click", async () => {
    const text = $(b.dataset.copy).textContent;
    try { await navigator.clipboard.writeText(text); }
    catch (e) {                                  // no clipboard API (plain http in an iframe): select it
      const r = document.createRange(); r.selectNodeContents($(b.dataset.copy));
      const sel = getSelection(); sel.removeAllRanges(); sel.addRange(r); document.execCommand && document.execCommand("copy");
    }
    b.textContent = "copied"; setTimeout(() => (b.textContent = "copy"), 1200);
  }));
}
const FORMAT_CMD = { png: "cmd-plot", svg: "cmd-plot", gif: "cmd-animate", mp4: "cmd-animate" };

// ---------------------------------------------------------------------------- start

async function main() {
  const meta = await (await fetch("/api/meta")).json();
  S.mode = meta.mode;
  META.limits = meta.limits; META.clip = meta.clip;
  meta.optimizers.forEach((o) => (META.optimizers[o.name] = o));
  meta.functions.forEach((f) => (META.functions[f.name] = f));
  document.body.classList.add("mode-" + meta.mode);
  for (const s of meta.styles) { const o = document.createElement("option"); o.textContent = s; $("style").append(o); }
  for (const f of meta.functions) { const o = document.createElement("option"); o.value = f.name; o.textContent = f.name.replace(/_/g, " "); $("function").append(o); }
  const params = new URLSearchParams(location.search);
  loadState(params, META.functions[meta.default_function] || {});
  $("hint").textContent = meta.mode === "race"
    ? "click the map: start there · drag: pan · scroll: zoom · space: play / pause"
    : `training run ${meta.run_dir}: its recorded paths on the loss landscape · drag: pan · scroll: zoom`;
  applyStyle();
  if (S.mode === "race") buildAddMenu();
  syncGlobals(); wireGlobals(); wireMap(); wireExport();
  document.body.classList.remove("loading");
  sizeCanvases();
  await requestScene();
}

window.__optviz = { state: S, get scene() { return scene; }, query, busy: () => inFlight || pending };
main();
