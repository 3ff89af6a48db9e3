// Sizes and times in the page's language. The words come from the page's
// <template id="unit-texts">, the same catalog entries the server uses, with
// "{n}" where the number goes, so word order follows each language.
import { templateTexts } from './progress.js';

const MiB = 1024 * 1024;

export class Units {
  constructor(doc) {
    this.texts = templateTexts(doc, 'unit-texts', 'data-unit');
  }

  text(key, n) {
    return this.texts[key].replace('{n}', String(n));
  }

  size(bytes) {
    if (bytes >= MiB) return this.text('mb', (bytes / MiB).toFixed(1));
    return this.text('kb', Math.max(1, Math.ceil(bytes / 1024)));
  }
}
