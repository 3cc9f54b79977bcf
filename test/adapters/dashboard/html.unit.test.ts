import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { html as template, toHtmlString, trusted } from '../../../adapters/http/dashboard/html.ts';

// Not named `html`: Prettier would reformat the markup these tests compare byte for byte.
const h = template;

const render = (markup: ReturnType<typeof template>) => toHtmlString(markup);

describe('dashboard html template', () => {
  it('escapes every interpolated string', () => {
    const hostile = `<script>alert("x")</script>'&\``;
    assert.equal(
      render(h`<p title="${hostile}">${hostile}</p>`),
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;&#96;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;&#96;</p>',
    );
  });

  it('inserts nested templates as markup and escapes their own values', () => {
    const inner = h`<b>${'<i>'}</b>`;
    assert.equal(render(h`<p>${inner}</p>`), '<p><b>&lt;i&gt;</b></p>');
  });

  it('renders arrays item by item', () => {
    assert.equal(render(h`<ul>${['<a>', h`<li>ok</li>`]}</ul>`), '<ul>&lt;a&gt;<li>ok</li></ul>');
  });

  it('renders nothing for null, undefined and false, and numbers as text', () => {
    assert.equal(render(h`${null}${undefined}${false}${0}${12.5}`), '012.5');
  });

  it('passes markup marked trusted through unchanged', () => {
    assert.equal(render(h`${trusted('<hr>')}`), '<hr>');
  });

  it('does not take a look-alike object for markup', () => {
    const forged = { __html: '<script>' } as unknown as string;
    assert.equal(render(h`${forged}`), '[object Object]');
  });
});
