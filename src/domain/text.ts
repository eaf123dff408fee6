/**
 * Text that a store can hold. PostgreSQL's text and jsonb cannot hold the NUL character, and no UTF-8 store can
 * hold a lone UTF-16 surrogate (`"\ud800"` in JSON text parses to one; JSON.stringify writes it back as an
 * escape PostgreSQL's jsonb refuses). The API refuses such text where it enters; what arrives otherwise (a
 * node's answer, a row from before) is made storable where it must be written.
 */

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** No lone surrogate: the engine's own check where it has one (every string of every request passes here). */
function isWellFormed(text: string): boolean {
  const native = (text as { isWellFormed?: () => boolean }).isWellFormed;
  return native ? native.call(text) : !LONE_SURROGATE.test(text);
}

/** Why a piece of text cannot be stored, or undefined. */
export function unstorableTextProblem(text: string): string | undefined {
  if (text.includes('\u0000')) return 'text may not contain the NUL character (\\u0000)';
  if (!isWellFormed(text)) return 'text may not contain a lone UTF-16 surrogate (such as \\ud800): it is not valid Unicode';
  return undefined;
}

/** The text with NUL characters removed and lone surrogates replaced by U+FFFD (what a UTF-8 decoder would show). */
export function storableText(text: string): string {
  return unstorableTextProblem(text) === undefined ? text : text.replaceAll('\u0000', '').replace(LONE_SURROGATES, '\ufffd');
}
