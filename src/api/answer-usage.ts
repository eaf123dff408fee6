/**
 * The token usage of a node's OpenAI answer, as the ledger keeps it (`{ promptTokens, completionTokens }`).
 *
 * Contract: the same result as parsing the whole answer and reading its `usage` object, without parsing the
 * whole answer when it can be helped: every warm request's answer passes here, and an answer is mostly text the
 * ledger does not need. In JSON text a quote inside a string is always escaped, so an unescaped `"usage":{` can
 * only be a key; the object after it (to its matching brace, strings skipped) is parsed alone. The last such
 * key is the top level's in every OpenAI-shaped answer (usage comes last; nothing after it nests a usage).
 */
import type { RequestOutcome } from '../domain/front-door-protocol';

const USAGE_KEY = /"usage"\s*:\s*\{/g;

/** Usage from an answer's text (a whole JSON answer, or one stream chunk's JSON). */
export function usageInText(text: string): RequestOutcome['usage'] {
  USAGE_KEY.lastIndex = 0;
  let at = -1;
  for (let match = USAGE_KEY.exec(text); match; match = USAGE_KEY.exec(text)) at = match.index + match[0].length;
  if (at < 0) return undefined;
  // The usage object itself, to its closing brace (its `*_details` objects nest; strings are skipped whole).
  let depth = 1;
  let end = at;
  for (; end < text.length && depth > 0; end++) {
    const c = text.charCodeAt(end);
    if (c === 0x7b) depth++;
    else if (c === 0x7d) depth--;
    else if (c === 0x22) {
      for (end++; end < text.length && text.charCodeAt(end) !== 0x22; end++) if (text.charCodeAt(end) === 0x5c) end++;
    }
  }
  if (depth !== 0) return usageOf(parsedOrUndefined(text));
  // The usage object alone is parsed (a few dozen bytes, whatever the answer's length).
  return usageOf({ usage: parsedOrUndefined(text.slice(at - 1, end)) });
}

/** OpenAI usage (snake case) of a parsed answer, as the ledger keeps it. */
export function usageOf(value: unknown): RequestOutcome['usage'] {
  const usage = (value as { usage?: { prompt_tokens?: number; completion_tokens?: number } } | undefined)?.usage;
  if (!usage || typeof usage.prompt_tokens !== 'number') return undefined;
  return { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens ?? 0 };
}

function parsedOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
