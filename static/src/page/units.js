// Sizes and times in the page's language. The words come from the page's
// <template id="unit-texts">, the same catalog entries the server uses, with
// "{n}" where the number goes (so word order follows each language), and, for
// counted words, one text per plural category, chosen with Intl.PluralRules.
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export class Units {
  constructor(doc) {
    this.texts = {};
    for (const el of doc.getElementById('unit-texts').content.querySelectorAll('[data-unit]')) {
      const forms = this.texts[el.dataset.unit] || (this.texts[el.dataset.unit] = {});
      forms[el.dataset.plural || 'other'] = el.textContent;
    }
    this.lang = doc.documentElement.lang || 'en';
    this.plurals = new Intl.PluralRules(this.lang);
    // Western digits in every language, as the server writes them and as codes are.
    this.number = new Intl.NumberFormat(this.lang, { maximumFractionDigits: 1, numberingSystem: 'latn' });
  }

  text(key, n) {
    const forms = this.texts[key];
    const form = forms[this.plurals.select(n)] || forms.other || Object.values(forms)[0];
    return form.replace('{n}', this.number.format(n));
  }

  size(bytes) {
    if (bytes >= GiB) return this.text('gb', bytes / GiB);
    if (bytes >= MiB) return this.text('mb', bytes / MiB);
    return this.text('kb', Math.max(1, Math.ceil(bytes / 1024)));
  }

  // "about 40 seconds left", or minutes once it is longer than a minute and a half.
  timeLeft(seconds) {
    return seconds > 90 ? this.text('minutes_left', Math.round(seconds / 60))
      : this.text('seconds_left', Math.max(1, Math.ceil(seconds)));
  }
}
