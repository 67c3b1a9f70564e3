// sidekey console: the only script is the disconnect button. A first click
// arms it, a second within five seconds sends DELETE to the admin API from
// this same origin, then the page reloads.
"use strict";

document.addEventListener("click", async (ev) => {
  const button = ev.target.closest("button[data-disconnect]");
  if (!button) {
    return;
  }
  const name = button.dataset.disconnect;
  const message = document.getElementById("message");
  if (button.dataset.armed !== "yes") {
    button.dataset.armed = "yes";
    button.classList.add("armed");
    button.textContent = "Confirm disconnect";
    setTimeout(() => {
      if (button.isConnected && !button.disabled) {
        button.dataset.armed = "";
        button.classList.remove("armed");
        button.textContent = "Disconnect";
      }
    }, 5000);
    return;
  }
  button.disabled = true;
  try {
    const resp = await fetch("/_sidekey/admin/connections/" + encodeURIComponent(name), {
      method: "DELETE",
      credentials: "same-origin",
      headers: { "Accept": "application/json" },
    });
    if (resp.ok) {
      location.reload();
      return;
    }
    const body = await resp.json().catch(() => ({}));
    message.textContent = "Disconnecting " + name + " failed: " + (body.message || resp.status);
  } catch (err) {
    message.textContent = "Disconnecting " + name + " failed: " + err;
  }
  button.disabled = false;
});
