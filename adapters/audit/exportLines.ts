/**
 * The export's lines as SQL over `incentable_events e`, plain text apart from kysely, shared by
 * the paged reader (export.ts) and the COPY reader (exportCopy.ts).
 */

/** A text expression as a JSON string (to_json escapes as JSON.stringify does). */
const jsonString = (text: string) => `to_json(${text})::text`;

/**
 * One exported event as a JSON line: same fields and order as `ExportedEvent`. data and metadata
 * are jsonb's own text, the bytes the hash chain covers (see eventstore/canonical.ts), so an
 * auditor can recompute every hash from the export alone.
 */
export const jsonLineSql = `'{"position":"' || e.transaction_id::text || '.'
  || e.global_position::text || '","global_position":"' || e.global_position::text
  || '","stream":' || ${jsonString('e.stream_name')} || ',"revision":"'
  || e.stream_revision::text || '","id":"' || e.event_id::text || '","type":'
  || ${jsonString('e.type')} || ',"time":'
  || coalesce(${jsonString(`e.metadata->>'recordedAt'`)}, 'null') || ',"data":'
  || e.data::text || ',"metadata":' || e.metadata::text || ',"hash":'
  || ${jsonString('e.hash')} || '}'`;

/** RFC 4180: quote when needed, double the quotes. */
const csvField = (text: string) =>
  `case when ${text} ~ '[",\\r\\n]' then '"' || replace(${text}, '"', '""') || '"' else ${text} end`;

export const csvColumns = [
  'position',
  'global_position',
  'stream',
  'revision',
  'id',
  'type',
  'time',
  'data',
  'metadata',
  'hash',
] as const;

/** One exported event as a CSV record, the columns of `csvColumns`. */
export const csvLineSql = `concat_ws(',',
  e.transaction_id::text || '.' || e.global_position::text, e.global_position::text,
  ${csvField('e.stream_name')}, e.stream_revision::text, e.event_id::text,
  ${csvField('e.type')}, ${csvField(`coalesce(e.metadata->>'recordedAt', '')`)},
  ${csvField('e.data::text')}, ${csvField('e.metadata::text')}, ${csvField('e.hash')})`;
