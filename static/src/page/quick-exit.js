// Quick exit: the link works without JavaScript; with it, Escape also leaves,
// and location.replace() keeps this site out of the Back button's history.
export function installQuickExit(doc) {
  const link = doc.getElementById('quick-exit');
  if (!link) return;
  const leave = (event) => {
    if (event) event.preventDefault();
    doc.body.hidden = true;
    window.location.replace(link.href);
  };
  link.addEventListener('click', leave);
  doc.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') leave(event);
  });
}
