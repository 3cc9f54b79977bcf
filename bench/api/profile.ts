/**
 * Summarises a V8 .cpuprofile (node --cpu-prof) by self time: per category (pg driver, kysely,
 * express/body parsing, zod, our code, crypto, JSON, node http/net, GC...) and the top functions.
 *
 *   npx tsx bench/api/profile.ts /tmp/prof/CPU.*.cpuprofile [top=25]
 */
import { readFileSync } from 'node:fs';

type Node = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
};
type Profile = { nodes: Node[]; startTime: number; endTime: number; samples: number[] };

const categoryOf = (fn: string, url: string): string => {
  const u = url.replace(/^file:\/\//, '');
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return '(program: native/unattributed)';
  if (
    /node_modules\/(pg|pg-protocol|pg-types|pg-pool|pgpass|postgres-[a-z]+|pg-connection-string)\//.test(
      u,
    )
  )
    return 'pg driver';
  if (u.includes('node_modules/kysely/')) return 'kysely';
  if (
    /node_modules\/(express|body-parser|router|raw-body|iconv-lite|type-is|content-type|qs|path-to-regexp|finalhandler|send|serve-static|on-finished|statuses|http-errors|depd|accepts|negotiator|media-typer|mime-types|mime-db|cookie|etag|fresh|parseurl|vary|encodeurl|escape-html|proxy-addr|forwarded|ipaddr\.js|content-disposition|merge-descriptors|range-parser|safe-buffer|setprototypeof|debug|ms|destroy|unpipe|ee-first|bytes|inherits|toidentifier|side-channel[-a-z]*|call-bind[-a-z]*|get-intrinsic|es-[a-z-]+|function-bind|has-symbols|hasown|object-inspect|gopd|dunder-proto|math-intrinsics|is-promise|once|wrappy)\//.test(
      u,
    )
  )
    return 'express + body parsing';
  if (u.includes('node_modules/zod/')) return 'zod';
  if (u.includes('node_modules/undici/') || u.includes('node:internal/deps/undici'))
    return 'undici';
  if (u.includes('node_modules/pino') || u.includes('node_modules/prom-client'))
    return 'pino/prom-client';
  if (u.includes('node_modules/pg-boss/')) return 'pg-boss';
  if (
    u.includes('node_modules/got/') ||
    u.includes('node_modules/@szmarczak') ||
    u.includes('node_modules/cacheable')
  )
    return 'got';
  if (u.includes('node_modules/tsx/') || u.includes('node_modules/esbuild')) return 'tsx loader';
  if (u.includes('node_modules/'))
    return `other node_modules (${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)?.[1]})`;
  if (/\/(domain|projections|delivery)\//.test(u) && !u.includes('/bench/'))
    return 'ours: domain/projections/delivery';
  if (u.includes('/adapters/') && !u.includes('/bench/')) return 'ours: adapters';
  if (u.includes('/bench/')) return 'bench harness';
  if (
    u.includes('internal/crypto') ||
    (/^(Hmac|Hash|digest|update|createHmac|createHash|randomBytes|randomUUID|timingSafeEqual)/.test(
      fn,
    ) &&
      u.startsWith('node:'))
  )
    return 'crypto';
  if (
    /node:internal\/(http|_http|net|stream|streams|timers|dns|async_hooks|process\/task_queues)|node:(_http|http|net|stream)/.test(
      u,
    ) ||
    /^node:_http/.test(u)
  )
    return 'node http/net/streams/timers';
  if (u === '' && /^(parse|stringify)$/.test(fn)) return 'JSON parse/stringify';
  if (u.startsWith('node:')) return 'node other';
  if (u === '') return `native (${fn || 'anonymous'})`;
  return 'other';
};

export const summarise = (path: string, top = 25): void => {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const hits = new Map<number, number>();
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const totalSamples = profile.samples.length;
  const msPerSample = totalMs / Math.max(1, totalSamples);
  const byCategory = new Map<string, number>();
  const byFunction = new Map<string, { n: number; category: string }>();
  let idle = 0;
  for (const node of profile.nodes) {
    const n = hits.get(node.id) ?? node.hitCount ?? 0;
    if (n === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const category = categoryOf(functionName, url);
    if (category === 'idle') {
      idle += n;
      continue;
    }
    byCategory.set(category, (byCategory.get(category) ?? 0) + n);
    const short = url
      .replace(/^file:\/\//, '')
      .replace(/^.*\/node_modules\//, '')
      .replace(/^\/work\/main\//, '');
    const key = `${functionName || '(anonymous)'} ${short}${short ? `:${lineNumber + 1}` : ''}`;
    const entry = byFunction.get(key) ?? { n: 0, category };
    entry.n += n;
    byFunction.set(key, entry);
  }
  const busy = totalSamples - idle;
  console.log(
    `\n### ${path}\n${(totalMs / 1000).toFixed(1)} s profiled, busy ${((busy * msPerSample) / 1000).toFixed(1)} s (${((busy / totalSamples) * 100).toFixed(0)}% of wall), idle ${((idle * msPerSample) / 1000).toFixed(1)} s`,
  );
  console.log('\n| category | self ms | % of busy |\n| --- | --- | --- |');
  for (const [category, n] of [...byCategory].sort((a, b) => b[1] - a[1]))
    console.log(
      `| ${category} | ${Math.round(n * msPerSample)} | ${((n / busy) * 100).toFixed(1)} |`,
    );
  console.log(
    `\n| top self-time function | category | self ms | % of busy |\n| --- | --- | --- | --- |`,
  );
  for (const [key, { n, category }] of [...byFunction]
    .sort((a, b) => b[1].n - a[1].n)
    .slice(0, top))
    console.log(
      `| ${key} | ${category} | ${Math.round(n * msPerSample)} | ${((n / busy) * 100).toFixed(1)} |`,
    );
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = process.argv.slice(2).filter((a) => a.endsWith('.cpuprofile'));
  const top = Number(process.argv.find((a) => /^top=\d+$/.test(a))?.slice(4) ?? 25);
  for (const file of files) summarise(file, top);
}
