// The case code field, written as the code is: six groups of four, spaced as
// the reporter types (only when typing at the end, so the caret never jumps).
import { asciiDigits } from '../protocol/codes.js';

export function enhanceCodeInput(input) {
  if (!input) return;
  input.addEventListener('input', (event) => {
    if (event.inputType && !event.inputType.startsWith('insert')) return;
    if (input.selectionStart !== input.value.length) return;
    const digits = asciiDigits(input.value);
    if (digits === null || digits.length > 24) return;
    const grouped = digits.replace(/(\d{4})(?=\d)/g, '$1 ');
    if (grouped !== input.value) input.value = grouped;
  });
}
