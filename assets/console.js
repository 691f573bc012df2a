// sessiond owner console: the little script the pages use where it helps. Everything works
// without it; with it, destructive actions confirm in a dialog (focus on Cancel) instead of
// a page of their own, and relative times stay current.
"use strict";

document.addEventListener("click", (event) => {
  const opener = event.target.closest("a[data-dialog]");
  if (opener) {
    const dialog = document.getElementById(opener.dataset.dialog);
    if (dialog && typeof dialog.showModal === "function") {
      event.preventDefault();
      dialog.showModal();
      const cancel = dialog.querySelector("[data-cancel]");
      if (cancel) cancel.focus();
    }
    return;
  }
  const cancel = event.target.closest("[data-cancel]");
  if (cancel) {
    const dialog = cancel.closest("dialog");
    if (dialog) dialog.close();
  }
});

// Relative times count from the server's clock (body[data-now]), which tests can move.
(() => {
  const serverNow = Date.parse(document.body.dataset.now || "");
  if (Number.isNaN(serverNow)) return;
  const loaded = Date.now();
  const format = (seconds) => {
    const abs = Math.abs(seconds);
    let amount;
    if (abs < 60) return "just now";
    if (abs < 3600) amount = `${Math.floor(abs / 60)} min`;
    else if (abs < 86400) amount = `${Math.floor(abs / 3600)} h`;
    else amount = `${Math.floor(abs / 86400)} d`;
    return seconds < 0 ? `${amount} ago` : `in ${amount}`;
  };
  const update = () => {
    const now = serverNow + (Date.now() - loaded);
    for (const time of document.querySelectorAll("time[datetime]")) {
      const rel = time.nextElementSibling;
      if (!rel || !rel.classList.contains("rel")) continue;
      const at = Date.parse(time.getAttribute("datetime"));
      if (!Number.isNaN(at)) rel.textContent = `(${format((at - now) / 1000)})`;
    }
  };
  setInterval(update, 30000);
})();
