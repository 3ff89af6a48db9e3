// The progress panel: a bar, a polite live status naming the step that is
// running now, and a quiet timer. It scrolls itself into view when it starts,
// so on a phone it is not left below the button that was pressed.
export function templateTexts(doc, templateId, attribute) {
  const out = {};
  const tpl = doc.getElementById(templateId);
  for (const el of tpl.content.querySelectorAll(`[${attribute}]`)) {
    out[el.getAttribute(attribute)] = el.textContent;
  }
  return out;
}

export class Progress {
  constructor(doc, texts, totalSteps, units) {
    this.panel = doc.getElementById('progress-panel');
    this.bar = doc.getElementById('progress-bar');
    this.status = doc.getElementById('progress-text');
    this.elapsed = doc.getElementById('progress-elapsed');
    this.texts = texts;
    this.total = totalSteps;
    this.timer = null;
    this.units = units;
  }

  start() {
    this.panel.hidden = false;
    // Its top just under the sticky Quick exit bar, so it has the screen to grow into.
    this.panel.scrollIntoView({ block: 'start' });
    const started = Date.now();
    window.clearInterval(this.timer);
    this.timer = window.setInterval(() => {
      this.elapsed.textContent = this.units.text('seconds_so_far', Math.round((Date.now() - started) / 1000));
    }, 1000);
  }

  step(n) {
    this.bar.value = n;
    this.status.textContent = `${this.texts[n]} (${n}/${this.total})`;
  }

  // A state that is not one of the numbered steps (waiting for files to be sent).
  note(key) {
    this.bar.removeAttribute('value');
    this.status.textContent = this.texts[key];
  }

  stop() {
    window.clearInterval(this.timer);
    this.panel.hidden = true;
    this.elapsed.textContent = '';
  }
}

export function showError(box, text) {
  box.textContent = text;
  box.hidden = false;
  box.focus();
}
