// A video's page: a thumbnail opens its image, full size, in a viewer over the page
// (arrow keys for the next and previous); without script the link opens the image itself.
"use strict";
(function () {
  const viewer = document.getElementById("viewer");
  const links = Array.from(document.querySelectorAll("a.frame"));
  if (!viewer || !viewer.showModal) return;
  const img = document.getElementById("viewer-image");
  let at = -1;
  function show(i) {
    if (i < 0 || i >= links.length) return;
    at = i;
    img.src = links[i].getAttribute("href");
    img.alt = links[i].dataset.caption;
    document.getElementById("viewer-caption").textContent = links[i].dataset.caption;
    if (!viewer.open) viewer.showModal();
  }
  links.forEach((a, i) => a.addEventListener("click", e => { e.preventDefault(); show(i); }));
  document.getElementById("viewer-prev").addEventListener("click", () => show(at - 1));
  document.getElementById("viewer-next").addEventListener("click", () => show(at + 1));
  img.addEventListener("click", () => viewer.close());
  document.addEventListener("keydown", e => {
    if (!viewer.open) return;
    if (e.key === "ArrowRight") show(at + 1);
    if (e.key === "ArrowLeft") show(at - 1);
  });
})();
