import assert from 'node:assert/strict';
import { test } from 'node:test';
import { usageInText, usageOf } from '../../src/api/answer-usage';

/** What parsing the whole answer gives: the rule usageInText must keep. */
function parsedWhole(text: string) {
  try {
    return usageOf(JSON.parse(text));
  } catch {
    return undefined;
  }
}

test('rule: an answer usage read from its text equals the usage of the whole answer parsed', () => {
  const answers = [
    '{"id":"c1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}',
    // vLLM and OpenAI put usage last; nothing requires it.
    '{"usage":{"prompt_tokens":5,"completion_tokens":7},"choices":[]}',
    // Detail objects nest inside usage with keys of their own (a nested completion_tokens must not be read).
    '{"usage":{"prompt_tokens":9,"prompt_tokens_details":{"cached_tokens":3,"completion_tokens":1},"completion_tokens":2}}',
    '{"usage":{"prompt_tokens_details":{"prompt_tokens":1},"prompt_tokens":9,"completion_tokens":2}}',
    // A quote or brace inside a string value inside usage.
    '{"usage":{"prompt_tokens":4,"note":"}{\\"completion_tokens\\":8","completion_tokens":3}}',
    // Generated text that looks like usage is a string: its quotes are escaped.
    '{"choices":[{"message":{"content":"\\"usage\\":{\\"prompt_tokens\\":99}"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}',
    '{ "usage" : { "prompt_tokens" : 4 , "completion_tokens" : 6 } }',
    '{"usage":{"prompt_tokens":4}}',
    '{"usage":{"completion_tokens":3}}',
    '{"usage":{"prompt_tokens":1.5,"completion_tokens":2}}',
    '{"usage":{"prompt_tokens":-1,"completion_tokens":2}}',
    '{"usage":null}',
    '{"choices":[]}',
    'data: not json',
    '',
  ];
  for (const text of answers) assert.deepEqual(usageInText(text), parsedWhole(text), text);
});

test('rule: a stream chunk carrying usage gives it; one without gives none', () => {
  assert.deepEqual(usageInText('{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}'), {
    promptTokens: 3,
    completionTokens: 5,
  });
  assert.equal(usageInText('{"choices":[{"delta":{"content":"usage"}}]}'), undefined);
});

test('rule: generated answers of every shape agree with the whole parse', () => {
  // Deterministic pseudo-random answers: usage placed anywhere, with and without details, numbers of all sizes.
  let seed = 7;
  const next = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < 500; i++) {
    const usage: Record<string, unknown> = { prompt_tokens: next(100_000) };
    if (next(4) > 0) usage.completion_tokens = next(100_000);
    if (next(3) === 0) usage.prompt_tokens_details = { cached_tokens: next(50), completion_tokens: next(50) };
    if (next(3) === 0) usage.total_tokens = next(200_000);
    const fields: Array<[string, unknown]> = [
      ['id', `cmpl-${i}`],
      ['choices', [{ message: { content: `text with "usage":{"prompt_tokens":${next(9)}} in it` } }]],
    ];
    fields.splice(next(3), 0, ['usage', usage]);
    const text = JSON.stringify(Object.fromEntries(fields), null, next(2) === 0 ? undefined : 1);
    assert.deepEqual(usageInText(text), parsedWhole(text), text);
  }
});
