// The page talks to the API through /api/* on the same origin.
async function refresh() {
  const list = document.getElementById("jobs");
  try {
    const jobs = await (await fetch("/api/jobs?limit=10")).json();
    list.innerHTML = "";
    for (const j of jobs) {
      const li = document.createElement("li");
      li.textContent = `#${j.id} ${j.customer}, ${j.address}` +
        (j.price_cents !== undefined ? ` (${(j.price_cents / 100).toFixed(2)})` : "");
      list.appendChild(li);
    }
    if (!jobs.length) list.innerHTML = "<li>none yet</li>";
  } catch (e) { list.innerHTML = "<li>the API is not answering</li>"; }
  try {
    const h = await (await fetch("/api/healthz")).json();
    document.getElementById("health").textContent =
      `api ${h.release}: ${h.status}, migrations ${h.migrations}`;
  } catch (e) { /* shown by the list */ }
}
document.getElementById("job").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  await fetch("/api/jobs", { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ customer: form.get("customer"), address: form.get("address") }) });
  ev.target.reset();
  refresh();
});
refresh();
