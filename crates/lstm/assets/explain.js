// The explain page: everything shown comes from the JSON the library embedded above.
"use strict";
const D = JSON.parse(document.getElementById("explain-data").textContent);
const T = D.trace, H = T.hidden, L = T.layers.length, N = T.tokens.length;
const NAMES = { c: "cell state c", h: "hidden state h", i: "input gate i", f: "forget gate f", g: "cell candidate g", o: "output gate o" };
const state = { layer: 0, unit: 0, q: "c" };
if (D.overall.length > 0) { state.layer = D.overall[0].layer; state.unit = D.overall[0].unit; state.q = D.overall[0].quantity; }
const $ = (id) => document.getElementById(id);
const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const shown = (tok) => tok === "\n" ? "\u21b5" : tok === " " ? "\u2423" : tok;

function value(l, u, q, t) { return T.layers[l][q][t * H + u]; }

// gates in [0, 1]: white to blue; signed values: red (negative) to white to blue (positive),
// c scaled by the unit's largest |c| over the text
function scaleOf(l, u, q) {
  if (q !== "c") return 1;
  let m = 1e-6;
  for (let t = 0; t < N; t++) m = Math.max(m, Math.abs(value(l, u, q, t)));
  return m;
}
function colour(v, q, scale) {
  if (q === "i" || q === "f" || q === "o") return "rgba(42,98,201," + v.toFixed(3) + ")";
  const a = Math.min(1, Math.abs(v) / scale);
  return v >= 0 ? "rgba(42,98,201," + a.toFixed(3) + ")" : "rgba(200,64,43," + a.toFixed(3) + ")";
}

function buildText() {
  const box = $("text");
  const sep = T.token_kind === "word" ? " " : "";
  for (let t = 0; t < N; t++) {
    const s = document.createElement("span");
    s.id = "tok-" + t;
    const tok = T.tokens[t];
    s.textContent = tok === "\n" ? "\u21b5\n" : tok + sep;
    s.addEventListener("mousemove", (e) => tip(e, t));
    s.addEventListener("mouseleave", () => { $("tip").style.display = "none"; });
    box.appendChild(s);
  }
}

function tip(e, t) {
  if (t < 0 || t >= N) return;
  const v = value(state.layer, state.unit, state.q, t);
  let html = "after <b>" + esc(shown(T.tokens[t])) + "</b> (position " + t + "): " + state.q + " = " + v.toFixed(4) + "<table>";
  for (const p of T.top[t]) {
    html += "<tr><td>" + esc(shown(p.token)) + "</td><td><span class='bar' style='width:" + Math.round(p.prob * 80) + "px'></span></td><td>" + (100 * p.prob).toFixed(1) + "%</td></tr>";
  }
  const el = $("tip");
  el.innerHTML = html + "</table>";
  el.style.display = "block";
  el.style.left = Math.min(e.clientX + 14, window.innerWidth - 240) + "px";
  el.style.top = (e.clientY + 16) + "px";
}

function render() {
  const { layer, unit, q } = state;
  const scale = scaleOf(layer, unit, q);
  let lo = Infinity, hi = -Infinity;
  for (let t = 0; t < N; t++) {
    const v = value(layer, unit, q, t);
    lo = Math.min(lo, v); hi = Math.max(hi, v);
    const s = $("tok-" + t);
    s.style.background = colour(v, q, scale);
    s.dataset.value = String(v);
  }
  $("layer").value = String(layer);
  $("unit").value = String(unit);
  $("quantity").value = q;
  const gate = q === "i" || q === "f" || q === "o";
  $("legend").style.background = gate ? "linear-gradient(to right, #fff, rgb(42,98,201))" : "linear-gradient(to right, rgb(200,64,43), #fff, rgb(42,98,201))";
  $("legend-lo").textContent = gate ? "0" : (-scale).toFixed(2);
  $("legend-hi").textContent = gate ? "1" : scale.toFixed(2);
  $("sel-desc").textContent = "layer " + layer + ", unit " + unit + ", " + NAMES[q] + ": from " + lo.toFixed(3) + " to " + hi.toFixed(3) + " over " + N + " positions";
  $("sel-desc").dataset.layer = layer; $("sel-desc").dataset.unit = unit; $("sel-desc").dataset.q = q;
  for (const tr of document.querySelectorAll("tr.pick")) {
    tr.classList.toggle("current", +tr.dataset.layer === layer && +tr.dataset.unit === unit && tr.dataset.q === q);
  }
  const hash = "#layer=" + layer + "&unit=" + unit + "&q=" + q;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function select(layer, unit, q) {
  state.layer = Math.max(0, Math.min(L - 1, layer | 0));
  state.unit = Math.max(0, Math.min(H - 1, unit | 0));
  if (NAMES[q]) state.q = q;
  render();
}

function fromHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  select(p.has("layer") ? +p.get("layer") : state.layer, p.has("unit") ? +p.get("unit") : state.unit, p.get("q") || state.q);
  // #...&tip=T shows the predictions after position T, as hovering it does
  if (p.has("tip")) {
    const t = +p.get("tip"), s = $("tok-" + t);
    if (s) { const r = s.getBoundingClientRect(); tip({ clientX: r.right, clientY: r.bottom }, t); }
  }
}

function pickRow(s, extra) {
  return "<tr class='pick' data-layer='" + s.layer + "' data-unit='" + s.unit + "' data-q='" + s.quantity + "'><td>" + s.layer + "</td><td>" + s.unit + "</td><td>" + s.quantity + "</td>" + extra + "<td>" + s.correlation.toFixed(3) + "</td></tr>";
}

function buildTables() {
  const desc = {};
  for (const r of D.rankings) desc[r.feature] = r.description;
  let html = "<tr><th colspan='5' class='l'>most interpretable units</th></tr><tr><th>layer</th><th>unit</th><th>value</th><th class='l'>follows</th><th>r</th></tr>";
  for (const s of D.overall.slice(0, 15)) html += pickRow(s, "<td class='l'>" + esc(desc[s.feature] || s.feature) + "</td>");
  $("overall").innerHTML = html;
  let out = "";
  for (const r of D.rankings) {
    out += "<table><tr><th colspan='4' class='l'>" + esc(r.description) + "</th></tr>";
    if (!r.varies) out += "<tr><td class='l' colspan='4'>constant in this text</td></tr>";
    else {
      out += "<tr><th>layer</th><th>unit</th><th>value</th><th>r</th></tr>";
      for (const s of r.best.slice(0, 5)) out += pickRow(s, "");
    }
    out += "</table>";
  }
  $("rankings").innerHTML = out;
  for (const tr of document.querySelectorAll("tr.pick")) {
    tr.addEventListener("click", () => select(+tr.dataset.layer, +tr.dataset.unit, tr.dataset.q));
  }
}

function buildSaturation() {
  let html = "";
  for (let l = 0; l < L; l++) {
    html += "<div><b>layer " + l + "</b><br>";
    for (const s of D.saturation.filter((x) => x.layer === l)) {
      const W = 150, P = 22;
      let svg = "<svg width='" + (W + P + 8) + "' height='" + (W + P + 70) + "' role='img'>";
      svg += "<rect x='" + P + "' y='4' width='" + W + "' height='" + W + "' fill='#fff' stroke='#d9dde5'/>";
      svg += "<line x1='" + P + "' y1='" + (W + 4) + "' x2='" + (P + W) + "' y2='4' stroke='#d9dde5'/>";
      for (let u = 0; u < s.left.length; u++) {
        svg += "<circle cx='" + (P + s.left[u] * W).toFixed(1) + "' cy='" + (4 + W - s.right[u] * W).toFixed(1) + "' r='2.5' fill='rgba(42,98,201,.6)'/>";
      }
      svg += "<text x='" + (P + W / 2) + "' y='" + (W + 18) + "' font-size='11' text-anchor='middle' fill='#5c6577'>closed (&lt; 0.1)</text>";
      svg += "<text x='12' y='" + (4 + W / 2) + "' font-size='11' text-anchor='middle' fill='#5c6577' transform='rotate(-90 12 " + (4 + W / 2) + ")'>open (&gt; 0.9)</text>";
      const max = Math.max(1, ...s.histogram), bw = W / 10;
      for (let b = 0; b < 10; b++) {
        const h = 40 * s.histogram[b] / max;
        svg += "<rect x='" + (P + b * bw + 1).toFixed(1) + "' y='" + (W + 64 - h).toFixed(1) + "' width='" + (bw - 2).toFixed(1) + "' height='" + h.toFixed(1) + "' fill='#2a62c9'><title>" + s.histogram[b] + " units saturated " + (b * 10) + "-" + (b * 10 + 10) + "% of the time</title></rect>";
      }
      svg += "</svg>";
      html += "<div class='sat'><span class='small'>" + NAMES[s.gate] + "</span><br>" + svg + "</div>";
    }
    html += "</div>";
  }
  $("saturation").innerHTML = html;
}

function init() {
  $("summary").textContent = N + " " + (T.token_kind === "word" ? "words" : "characters") + ", " + L + " layer(s) of " + H + " " + T.variant + " LSTM units";
  let opts = "";
  for (let l = 0; l < L; l++) opts += "<option value='" + l + "'>" + l + "</option>";
  $("layer").innerHTML = opts;
  $("unit").max = String(H - 1);
  $("layer").addEventListener("change", () => select(+$("layer").value, state.unit, state.q));
  $("unit").addEventListener("input", () => select(state.layer, +$("unit").value, state.q));
  $("quantity").addEventListener("change", () => select(state.layer, state.unit, $("quantity").value));
  window.addEventListener("hashchange", fromHash);
  buildText();
  buildTables();
  buildSaturation();
  fromHash();
}
init();
