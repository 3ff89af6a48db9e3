// A questionnaire on the report page: questions behind a condition appear only
// when it is met (without JavaScript they are all shown, with a note saying when
// to answer), and problems are shown on each question and in a summary, as the
// server shows them without JavaScript.
import { formFromData, readAnswers, shown } from '../protocol/answers.js';

export function currentAnswers(form, rules) {
  return readAnswers(rules, formFromData(new FormData(form)));
}

function describedWithout(el, id) {
  const ids = (el.getAttribute('aria-describedby') || '').split(' ').filter((x) => x && x !== id);
  if (ids.length) el.setAttribute('aria-describedby', ids.join(' '));
  else el.removeAttribute('aria-describedby');
}

export function enhanceConditions(form, rules) {
  const conditional = [...form.querySelectorAll('[data-show-if]')];
  for (const box of conditional) {
    // The no-JS note ("only if you answered …") is replaced by showing and hiding.
    for (const note of box.querySelectorAll('.condition')) {
      for (const el of box.querySelectorAll('[aria-describedby]')) describedWithout(el, note.id);
      note.remove();
    }
  }
  const update = () => {
    const { answers } = currentAnswers(form, rules);
    for (const rule of rules.rules) {
      const box = form.querySelector(`#question-${rule.id}`);
      if (box && rule.show_if) box.hidden = !shown(rule, answers);
    }
  };
  form.addEventListener('change', update);
  form.addEventListener('input', update);
  update();
}

function errorElement(doc, box, id) {
  let el = doc.getElementById(id);
  if (!el) {
    el = doc.createElement('p');
    el.className = 'error-text';
    el.id = id;
    const anchor = box.querySelector('.hint') || box.querySelector('legend, label');
    anchor.after(el);
  }
  return el;
}

// Marks every question with a problem; returns [inputId, lead-in, text] for the summary
// (the lead-in is the label as the server puts it before a problem: intake.lead_in).
export function markProblems(doc, form, rules, problems, texts) {
  const listed = [];
  for (const rule of rules.rules) {
    const box = form.querySelector(`#question-${rule.id}`);
    if (!box) continue;
    const input = box.querySelector('input, textarea, select');
    const errorId = `${input.id}-error`;
    const problem = problems[rule.id];
    const existing = doc.getElementById(errorId);
    box.classList.toggle('has-error', Boolean(problem));
    for (const el of box.querySelectorAll('input, textarea, select')) {
      if (problem) el.setAttribute('aria-invalid', 'true');
      else el.removeAttribute('aria-invalid');
    }
    const described = box.querySelector('fieldset') || input;
    if (!problem) {
      if (existing) existing.remove();
      describedWithout(described, errorId);
      continue;
    }
    errorElement(doc, box, errorId).textContent = texts[`problem-${problem}`];
    const ids = (described.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
    if (!ids.includes(errorId)) described.setAttribute('aria-describedby', [...ids, errorId].join(' '));
    listed.push([input.id, box.dataset.leadIn, texts[`problem-${problem}`]]);
  }
  return listed;
}

export function showSummary(doc, box, heading, listed) {
  box.replaceChildren();
  const h = doc.createElement('h2');
  h.textContent = heading;
  const list = doc.createElement('ul');
  for (const [inputId, leadIn, text] of listed) {
    const item = doc.createElement('li');
    const link = doc.createElement('a');
    link.href = `#${inputId}`;
    link.textContent = `${leadIn} ${text}`;
    item.append(link);
    list.append(item);
  }
  box.append(h, list);
  box.hidden = false;
  box.focus();
}

const labelWords = (label) => (label.firstChild ? label.firstChild.textContent.trim() : label.textContent.trim());

// The reporter's own copy: each answered question and its answer in the words the
// page shows them, as one text (the server's twin is portal/server/intake.py copy_words()).
export function copyWords(doc, rules, answers) {
  const said = [];
  for (const rule of rules.rules) {
    const value = answers[rule.id];
    const box = doc.getElementById(`question-${rule.id}`);
    if (value === undefined || !box) continue;
    let words = value;
    if (['single_choice', 'multiple_choice', 'yes_no'].includes(rule.kind)) {
      words = [...box.querySelectorAll('input:checked')]
        .map((input) => box.querySelector(`label[for="${input.id}"]`).textContent.trim()).join('; ');
    } else if (rule.kind === 'date') {
      const note = (part) => box.querySelector(`label[for="${rule.id}-${part}"]`).textContent.trim();
      if (value === 'unknown') words = note('unknown');
      else if (value.startsWith('~')) words = `${value.slice(1)} (${note('approx')})`;
    }
    said.push(`${labelWords(box.querySelector('legend, label'))}\n${words}`);
  }
  return { report: said.join('\n\n') };
}
