/**
 * The dashboard's one script, served as /dashboard/static/dashboard.js. It is kept as text here
 * because the project lints every .js file as TypeScript of the server; it only enhances: Copy
 * buttons (hidden until this runs) and "Select all events". Every form works without it.
 */
export const clientScript = String.raw`(() => {
  'use strict';

  const copyText = async (input) => {
    try {
      await navigator.clipboard.writeText(input.value);
      return true;
    } catch {
      // The Clipboard API refused (no permission, insecure context): copy a selection instead.
      input.focus();
      input.select();
      return document.execCommand('copy');
    }
  };

  for (const button of document.querySelectorAll('[data-copy]')) {
    const name = button.getAttribute('data-copy');
    const input = document.getElementById(name);
    const status = document.querySelector('[data-copy-status="' + name + '"]');
    if (!input) continue;
    button.hidden = false;
    button.addEventListener('click', async () => {
      const copied = await copyText(input);
      if (status) status.textContent = copied ? 'Copied to the clipboard.' : 'Select the text and copy it.';
    });
  }

  for (const all of document.querySelectorAll('[data-select-all]')) {
    const name = all.getAttribute('data-select-all');
    const boxes = Array.from(
      document.querySelectorAll('input[type="checkbox"][name="' + name + '"]'),
    );
    const sync = () => {
      const checked = boxes.filter((box) => box.checked).length;
      all.checked = checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    };
    all.addEventListener('change', () => {
      for (const box of boxes) box.checked = all.checked;
      all.indeterminate = false;
    });
    for (const box of boxes) box.addEventListener('change', sync);
    sync();
  }
})();
`;
