// The one-unit LSTM cell of the tutorials, recomputed live from the sliders:
//   a_k = w_k * z + b_k  (k = i, f, g, o; z = previous hidden state plus input)
//   i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)   (coupled: i = 1 - f)
//   c_t = f * c_prev + i * g       h_t = o * tanh(c_t)
"use strict";
const D = JSON.parse(document.getElementById("explore-data").textContent);
const $ = (id) => document.getElementById(id);
const GATES = ["i", "f", "g", "o"];
const sigmoid = (x) => 1 / (1 + Math.exp(-x));

function step(w, b, z, c) {
  const a = GATES.map((_, k) => w[k] * z + b[k]);
  const f = sigmoid(a[1]);
  const i = D.unit.coupled ? 1 - f : sigmoid(a[0]);
  const g = Math.tanh(a[2]);
  const o = sigmoid(a[3]);
  const ct = f * c + i * g;
  return { a, i, f, g, o, c: ct, h: o * Math.tanh(ct) };
}

const SLIDERS = [["z", D.unit.source ? "z = the unit's h\u209c\u208b\u2081" : "z = h\u209c\u208b\u2081 + x\u209c", 3], ["c", "c\u209c\u208b\u2081 previous cell state", 3]];
for (let k = 0; k < 4; k++) SLIDERS.push(["w" + GATES[k], "w_" + GATES[k] + " weight of gate " + GATES[k], 6]);
for (let k = 0; k < 4; k++) SLIDERS.push(["b" + GATES[k], "b_" + GATES[k] + " bias of gate " + GATES[k], 6]);
const initial = { z: 0.5, c: 1 };
for (let k = 0; k < 4; k++) { initial["w" + GATES[k]] = D.unit.w[k]; initial["b" + GATES[k]] = D.unit.b[k]; }

function buildSliders() {
  let html = "";
  for (const [key, label, range] of SLIDERS) {
    const r = Math.max(range, Math.ceil(Math.abs(initial[key]) + 1));
    html += "<div class='slider'><label for='s-" + key + "'>" + label + "</label><input type='range' id='s-" + key + "' min='" + -r + "' max='" + r + "' step='any' value='" + initial[key] + "'><span class='mono' id='v-" + key + "'></span></div>";
  }
  $("sliders").innerHTML = html;
  for (const [key] of SLIDERS) $("s-" + key).addEventListener("input", update);
  if (D.unit.tokens.length > 0) {
    $("token-row").style.display = "block";
    let opts = "<option value=''>(none: biases only)</option>";
    D.unit.tokens.forEach((t, n) => { opts += "<option value='" + n + "'>" + (t === "\n" ? "\\n" : t === " " ? "space" : t.replace(/&/g, "&amp;").replace(/</g, "&lt;")) + "</option>"; });
    $("token").innerHTML = opts;
    $("token").addEventListener("change", () => { setToken($("token").value); update(); });
  }
}

// choosing a token sets the bias sliders to the unit's biases plus what the token adds
function setToken(n) {
  for (let k = 0; k < 4; k++) {
    const extra = n === "" ? 0 : D.unit.token_input[+n][k];
    $("s-b" + GATES[k]).value = String(D.unit.b[k] + extra);
  }
}

function read() {
  const v = {};
  for (const [key] of SLIDERS) v[key] = parseFloat($("s-" + key).value);
  return v;
}

const fmt = (x) => (x < 0 ? "(" + x.toFixed(3) + ")" : x.toFixed(3));
function out(id, x) { const el = $(id); el.textContent = x.toFixed(4); el.dataset.value = String(x); }

function forgetWord(f) { return f < 0.1 ? "forgets" : f > 0.9 ? "keeps" : "keeps " + Math.round(100 * f) + "%"; }
function learnWord(ig) { return Math.abs(ig) < 0.1 ? "barely writes" : "writes " + (ig > 0 ? "+" : "") + ig.toFixed(2); }

function update() {
  const v = read();
  for (const [key] of SLIDERS) { const el = $("v-" + key); el.textContent = v[key].toFixed(2); el.dataset.value = String(v[key]); }
  const w = GATES.map((g) => v["w" + g]), b = GATES.map((g) => v["b" + g]);
  const s = step(w, b, v.z, v.c);
  const term = (k) => "\u03c3(" + fmt(w[k]) + "\u00b7" + fmt(v.z) + " + " + fmt(b[k]) + ")";
  $("equations").innerHTML =
    "f\u209c = " + term(1) + " = <span class='val' id='out-f'></span><br>" +
    "i\u209c = " + (D.unit.coupled ? "1 \u2212 f\u209c" : term(0)) + " = <span class='val' id='out-i'></span><br>" +
    "g\u209c = tanh(" + fmt(w[2]) + "\u00b7" + fmt(v.z) + " + " + fmt(b[2]) + ") = <span class='val' id='out-g'></span><br>" +
    "o\u209c = " + term(3) + " = <span class='val' id='out-o'></span><br>" +
    "c\u209c = f\u209c\u00b7c\u209c\u208b\u2081 + i\u209c\u00b7g\u209c = " + fmt(s.f) + "\u00b7" + fmt(v.c) + " + " + fmt(s.i) + "\u00b7" + fmt(s.g) + " = <span class='val' id='out-c'></span><br>" +
    "h\u209c = o\u209c\u00b7tanh(c\u209c) = " + fmt(s.o) + "\u00b7tanh(" + fmt(s.c) + ") = <span class='val' id='out-h'></span>";
  for (const k of ["i", "f", "g", "o", "c", "h"]) out("out-" + k, s[k]);
  $("valve-f").setAttribute("fill-opacity", s.f.toFixed(3));
  $("valve-i").setAttribute("fill-opacity", s.i.toFixed(3));
  $("valve-o").setAttribute("fill-opacity", s.o.toFixed(3));
  const rows = [["strongly positive", 2], ["weakly positive", 0.5], ["weakly negative", -0.5], ["strongly negative", -2], ["current", v.z]];
  let html = "<tr><th class='l'>input</th><th>z</th><th>f</th><th class='l'>forget?</th><th>i</th><th>g</th><th class='l'>learn?</th><th>c\u209c</th><th>h\u209c</th></tr>";
  rows.forEach(([name, z], n) => {
    const r = step(w, b, z, v.c);
    html += "<tr id='row-" + n + "'" + (n === 4 ? " class='current'" : "") + "><td class='l'>" + name + "</td><td>" + z.toFixed(2) + "</td><td>" + r.f.toFixed(3) + "</td><td class='l'>" + forgetWord(r.f) + "</td><td>" + r.i.toFixed(3) + "</td><td>" + r.g.toFixed(3) + "</td><td class='l'>" + learnWord(r.i * r.g) + "</td><td>" + r.c.toFixed(3) + "</td><td>" + r.h.toFixed(3) + "</td></tr>";
  });
  $("table").innerHTML = html;
}

// initial values from the URL fragment (page.html#z=0.5&c=-1&wf=2&tok=3) through the same
// path a slider's input event takes
function fromHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  if (p.has("tok") && D.unit.tokens.length > 0) { $("token").value = p.get("tok"); setToken(p.get("tok")); }
  for (const [key] of SLIDERS) {
    if (p.has(key)) {
      const x = parseFloat(p.get(key));
      if (Number.isFinite(x)) {
        const el = $("s-" + key);
        const r = Math.max(Math.abs(x), +el.max);
        el.min = String(-r); el.max = String(r);
        el.value = String(x);
      }
    }
  }
  update();
}

$("source").textContent = D.unit.source ? D.unit.source + (D.unit.coupled ? " (coupled gates: i = 1 \u2212 f)" : "") : "A made-up unit: drag the sliders, or run lstm explore --model DIR --unit N for a trained one.";
buildSliders();
window.addEventListener("hashchange", fromHash);
fromHash();
