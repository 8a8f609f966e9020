"use strict";
poll(async () => {
  const data = await getJSON("/api/jobs");
  const body = document.querySelector("#jobs tbody");
  const rows = data.jobs.map(j => el("tr", {class: "state-" + j.state, "data-job": j.id},
    el("td", {}, el("a", {href: "/jobs/" + j.id}, j.id)),
    el("td", {}, el("span", {class: "state " + j.state}, j.state_label)),
    el("td", {class: "path"}, j.roots.join(", ")),
    el("td", {}, j.selection),
    el("td", {class: "num"}, j.total), el("td", {class: "num"}, j.ok), el("td", {class: "num"}, j.skipped),
    el("td", {class: "num" + (j.failed ? " bad" : "")}, j.failed), el("td", {class: "num"}, j.images),
    el("td", {class: "num"}, fmtSeconds(j.elapsed)), el("td", {}, fmtTime(j.created))));
  body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", {colspan: 11, class: "muted"},
    "No jobs yet. ", el("a", {href: "/"}, "Start one")))]));
  return true;  // new jobs can appear at any time
}, 2000);
