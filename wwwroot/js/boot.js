// Loaded first, as a file: the Content-Security-Policy allows no inline script, so the "scripts did
// not load" message cannot be an onerror attribute. Load errors do not bubble, hence the capture phase.
window.addEventListener('error', (e) => {
  const el = e.target;
  if (!(el instanceof HTMLScriptElement) || el.type !== 'module') return;
  const alerts = document.getElementById('alerts');
  if (alerts) alerts.textContent = `The page scripts did not load (${el.src}). Rebuild the app (see README) and reload.`;
}, true);
