// The review UI's small script: grading without a page reload, and the review keys.
// Everything works without it (plain forms and links); this only makes it quicker.
"use strict";

function gradeInPlace(form, value) {
  const data = new FormData(form);
  data.set("value", value);
  const status = form.querySelector(".saved");
  return fetch(form.action, {
    method: "POST",
    body: data,
    headers: { Accept: "application/json", "X-CSRF-Token": document.body.dataset.csrf },
    credentials: "same-origin",
  }).then((response) => response.json().then((body) => {
    if (!response.ok) throw new Error(body.error || response.statusText);
    form.querySelectorAll("button[name=value]").forEach((b) => b.classList.toggle("chosen", b.value === String(value)));
    if (status) status.textContent = "saved";
  })).catch((error) => { if (status) status.textContent = "not saved: " + error.message; });
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  // Inline grades in the list stay on the page; the call page's form follows its `next` link.
  if (!form.matches("form.grade.inline") || !event.submitter) return;
  event.preventDefault();
  gradeInPlace(form, event.submitter.value);
});

// Filter forms leave out the fields left empty, so the URL names only the filters in force
// (/calls?model=gpt-4o, not ?service=&model=gpt-4o&provider=&...). Disabled fields are not sent.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("form.filters")) return;
  form.querySelectorAll("input[name], select[name]").forEach((field) => {
    if (field.value === "") field.disabled = true;
  });
  // Coming back to the page (the back button) finds the fields usable again.
  window.addEventListener("pageshow", () => form.querySelectorAll(":disabled").forEach((f) => { f.disabled = false; }), { once: true });
});

document.addEventListener("keydown", (event) => {
  const page = document.querySelector(".call-page");
  if (!page || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest("input, textarea, select")) return;
  const go = (id) => { const link = document.getElementById(id); if (link) window.location.href = link.href; };
  const grade = (value) => {
    const button = page.querySelector(`.your-grade form.grade button[value="${value}"]`);
    if (button) button.click();
  };
  switch (event.key) {
    case "j": go("older"); break;
    case "k": go("newer"); break;
    case "n": go("next-ungraded"); break;
    case "1": grade("1"); break;
    case "2": grade("0"); break;
    default: return;
  }
  event.preventDefault();
});
