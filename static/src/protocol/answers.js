// A questionnaire's answers in the browser: the same rules as
// portal/protocol/answers.py, checked against tests/vectors/answers.json.
// `form` maps an input's name to every value sent under it (from FormData).
import { digitValue } from './codes.js';

const YES_NO = ['yes', 'no', 'prefer_not'];
const UNKNOWN_DATE = 'unknown';
const APPROXIMATE = '~';
const MIN_YEAR = 1900;
const MAX_YEAR = 2100;
// Control characters (C0 but tab and line breaks, DEL, C1) are dropped; a line
// break is LF. One set of spaces for both languages (trim() is not Python's strip()).
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g;
const SPACES = ' \t\n\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a'
  + '\u2028\u2029\u202f\u205f\u3000\ufeff';
const NUMBER = /^-?[0-9]{1,15}(\.[0-9]{1,6})?$/;
const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function strip(text) {
  let start = 0;
  let end = text.length;
  while (start < end && SPACES.includes(text[start])) start += 1;
  while (end > start && SPACES.includes(text[end - 1])) end -= 1;
  return text.slice(start, end);
}

const withoutControls = (text) => text.replace(/\r\n/g, '\n').replace(CONTROLS, '');

export function formFromData(data) {
  const form = Object.create(null); // a question may be named like an Object property
  for (const [name, value] of data.entries()) {
    if (typeof value !== 'string') continue;
    (form[name] ||= []).push(value);
  }
  return form;
}

const own = (object, name) => Object.prototype.hasOwnProperty.call(object, name);
const first = (form, name) => (own(form, name) && form[name].length ? form[name][0] : '');

// Digits of any script to ASCII; "٫" and "," as the decimal mark; spaces dropped.
export function asciiNumber(text) {
  let out = '';
  for (const ch of text) {
    const digit = digitValue(ch);
    if (digit >= 0) out += String(digit);
    else if ('.,\u066b'.includes(ch)) out += '.';
    else if ('-\u2212'.includes(ch)) out += '-';
    else if (!SPACES.includes(ch)) out += ch;
  }
  return out;
}

const isDigits = (text) => /^[0-9]+$/.test(text);
const pad2 = (n) => String(n).padStart(2, '0');

function readDate(form, id) {
  const part = {};
  for (const p of ['year', 'month', 'day', 'approx', 'unknown']) part[p] = strip(first(form, `${id}.${p}`));
  if (part.unknown) return [UNKNOWN_DATE, null];
  const [year, month, day] = [part.year, part.month, part.day].map(asciiNumber);
  if (!year && !month && !day) return ['', null];
  if (!isDigits(year) || Number(year) < MIN_YEAR || Number(year) > MAX_YEAR) return ['', 'not_a_date'];
  let text = year;
  if (month) {
    if (!isDigits(month) || Number(month) < 1 || Number(month) > 12) return ['', 'not_a_date'];
    text += `-${pad2(Number(month))}`;
  }
  if (day) {
    const y = Number(year);
    const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
    const days = month && Number(month) === 2 && !leap ? 28 : DAYS[Number(month) - 1];
    if (!month || !isDigits(day) || Number(day) < 1 || Number(day) > days) return ['', 'not_a_date'];
    text += `-${pad2(Number(day))}`;
  }
  return [part.approx ? APPROXIMATE + text : text, null];
}

function readNumber(raw, rule) {
  const text = asciiNumber(raw);
  if (!text) return ['', null];
  if (!NUMBER.test(text) || (rule.integer && text.includes('.'))) return ['', 'not_a_number'];
  const value = Number(text);
  if ((rule.min !== undefined && value < rule.min) || (rule.max !== undefined && value > rule.max)) {
    return ['', 'out_of_range'];
  }
  return [text, null];
}

function choices(rule) {
  return rule.kind === 'yes_no' ? YES_NO : (rule.options || []);
}

function readAnswer(rule, form) {
  switch (rule.kind) {
    case 'short_text':
    case 'long_text': {
      const text = withoutControls(first(form, rule.id));
      if (!strip(text)) return ['', null];
      // Python counts code points, not UTF-16 units.
      return [text, [...text].length > rule.max_length ? 'too_long' : null];
    }
    case 'single_choice':
    case 'yes_no': {
      const value = first(form, rule.id);
      if (!value) return ['', null];
      return choices(rule).includes(value) ? [value, null] : ['', 'not_an_option'];
    }
    case 'multiple_choice': {
      const chosen = new Set(own(form, rule.id) ? form[rule.id] : []);
      if ([...chosen].some((v) => !rule.options.includes(v))) return ['', 'not_an_option'];
      return [rule.options.filter((o) => chosen.has(o)).join(' '), null];
    }
    case 'number': return readNumber(first(form, rule.id), rule);
    case 'date': return readDate(form, rule.id);
    default: return ['', null]; // files: the attachments are the answer
  }
}

export function shown(rule, answers) {
  if (!rule.show_if) return true;
  const given = (own(answers, rule.show_if.question) ? answers[rule.show_if.question] : '').split(' ');
  return rule.show_if.is.some((v) => given.includes(v));
}

// The sealed answers and, per question, what is wrong (see answers.py read()).
export function readAnswers(rules, form) {
  const answers = Object.create(null);
  const problems = Object.create(null);
  for (const rule of rules.rules) {
    if (!shown(rule, answers)) continue;
    const [value, found] = readAnswer(rule, form);
    let problem = found;
    if (problem === null && !value && rule.required) problem = 'required';
    if (problem !== null) problems[rule.id] = problem;
    else if (value) answers[rule.id] = value;
  }
  return { answers, problems };
}
