// Sizes and times in the page's language. The words come from the page's
// <template id="unit-texts">, the same catalog entries the server uses, with
// "{n}" where the number goes, so word order follows each language.
import { templateTexts } from './progress.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export class Units {
  constructor(doc) {
    this.texts = templateTexts(doc, 'unit-texts', 'data-unit');
    this.lang = doc.documentElement.lang || 'en';
  }

  text(key, n) {
    return this.texts[key].replace('{n}', String(n));
  }

  size(bytes) {
    // Western digits in every language, as the server writes them and as codes are.
    const number = new Intl.NumberFormat(this.lang, { maximumFractionDigits: 1, numberingSystem: 'latn' });
    if (bytes >= GiB) return this.text('gb', number.format(bytes / GiB));
    if (bytes >= MiB) return this.text('mb', number.format(bytes / MiB));
    return this.text('kb', number.format(Math.max(1, Math.ceil(bytes / 1024))));
  }
}
