// monohand's page: upload -> job -> poll -> show. No framework; everything is served locally.
"use strict";

const JOINTS = ["wrist", "thumb CMC", "thumb MCP", "thumb IP", "thumb tip",
  "index MCP", "index PIP", "index DIP", "index tip", "middle MCP", "middle PIP", "middle DIP",
  "middle tip", "ring MCP", "ring PIP", "ring DIP", "ring tip", "little MCP", "little PIP",
  "little DIP", "little tip"];
const $ = (id) => document.getElementById(id);
let busy = false;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function setBusy(on) {
  busy = on;
  $("progress").hidden = !on;
  $("example").disabled = on;
  $("file").disabled = on;
}

async function loadOptions() {
  const r = await fetch("/api/options");
  const o = await r.json();
  for (const [id, values] of [["model", o.models], ["method", o.methods]]) {
    $(id).innerHTML = values.map((v) => `<option value="${v}">${v}</option>`).join("");
  }
  $("example").hidden = !o.example;
  document.body.dataset.maxUploadMb = o.max_upload_mb;
}

async function submit(form) {
  if (busy) return;
  $("error").hidden = true;
  form.append("model", $("model").value);
  form.append("method", $("method").value);
  setBusy(true);
  $("result").hidden = true;  // the last result belongs to another photo
  $("stage").textContent = "uploading";
  try {
    const r = await fetch("/api/jobs", { method: "POST", body: form });
    const job = await r.json();
    if (!r.ok) throw new Error(job.error || job.detail || `upload failed (${r.status})`);
    await poll(job.id);
  } catch (e) {
    showError(e.message);
  } finally {
    setBusy(false);
    $("file").value = "";
  }
}

async function poll(id) {
  for (;;) {
    const r = await fetch(`/api/jobs/${id}`);
    const job = await r.json();
    if (!r.ok) throw new Error(job.error || job.detail || `lost the job (${r.status})`);
    $("stage").textContent = job.stage;
    $("elapsed").textContent = `${job.elapsed.toFixed(1)} s`;
    if (job.status === "done") return show(job);
    if (job.status === "error") throw new Error(job.error);
    await new Promise((ok) => setTimeout(ok, 300));
  }
}

function show(job) {
  const base = `/api/jobs/${job.id}/files/`;
  const res = job.result;
  $("overlay").src = base + res.overlay;
  $("download-json").href = base + res.json;
  $("download-overlay").href = base + res.overlay;
  $("glb-links").innerHTML = res.hands.map((h, i) =>
    `<a class="glb" href="${base + h.glb}" download="${h.glb}">${h.glb} (${h.side})</a>`).join("");
  $("hand-pick").innerHTML = res.hands.length > 1 ? res.hands.map((h, i) =>
    `<button type="button" data-glb="${base + h.glb}">hand ${i} (${h.side})</button>`).join(" ") : "";
  for (const b of $("hand-pick").querySelectorAll("button")) {
    b.onclick = () => { $("viewer").src = b.dataset.glb; };
  }
  $("viewer").src = base + res.hands[0].glb;
  // what the command line would say of these hands (notes.hand_notes), as text: no markup
  $("notes").replaceChildren(...(res.notes || []).map((n) => {
    const li = document.createElement("li");
    li.className = n.kind;
    li.textContent = `${n.kind}: ${n.text}`;
    return li;
  }));
  $("hands").innerHTML = res.hands.map((h, i) => handCard(h, i, res.model)).join("");
  $("result").hidden = false;
  $("result").dataset.job = job.id;
}

function handCard(h, i, model) {
  const rows = JOINTS.map((name, j) => {
    const c = h.confidence[j];
    const [u, v] = h.keypoints2d[j];
    const [x, y, z] = h.joints3d[j].map((m) => 1000 * m);  // metres, as in the JSON file
    return `<tr><td>${name}</td><td>${u.toFixed(0)}, ${v.toFixed(0)}</td>` +
      `<td>${x.toFixed(0)}, ${y.toFixed(0)}, ${z.toFixed(0)}</td>` +
      `<td><span class="conf" style="width:${(60 * c).toFixed(0)}px"></span> ${c.toFixed(2)}</td></tr>`;
  }).join("");
  const fit = Object.entries(h.fit).map(([k, v]) => `${k} ${Number(v).toPrecision(3)}`).join(", ");
  return `<div class="hand"><h3>Hand ${i}: ${h.side}, ${model}</h3><p class="fit">Fit: ${fit}</p>
    <details><summary>21 keypoints and confidences</summary><table class="joints">
    <tr><th>joint</th><th>pixels</th><th>camera mm</th><th>confidence</th></tr>${rows}</table></details></div>`;
}

function submitFile(file) {
  const mb = Number(document.body.dataset.maxUploadMb || 20);
  if (file.size > mb * 1024 * 1024) {
    showError(`${file.name}: too large (at most ${mb} MB)`);
    return;
  }
  const form = new FormData();
  form.append("file", file, file.name);
  submit(form);
}

$("file").addEventListener("change", () => { if ($("file").files[0]) submitFile($("file").files[0]); });
$("example").addEventListener("click", () => { const f = new FormData(); f.append("example", "true"); submit(f); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) submitFile(e.dataTransfer.files[0]);
});
loadOptions().catch((e) => showError(`cannot reach the server: ${e.message}`));
