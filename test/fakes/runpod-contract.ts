/**
 * RunPod's published OpenAPI document for REST API v2 (test/fixtures/runpod/openapi-v2.json, see its README)
 * as a validator: which operations exist, which statuses each may answer, and the JSON Schema (2020-12) of
 * every request and response body. The RunPod fake checks every request it receives and every response it
 * sends with it, so the fake cannot drift from what RunPod publishes.
 */
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import spec from '../fixtures/runpod/openapi-v2.json';

type Json = Record<string, any>;
const DOC_ID = 'runpod-v2';

/** A JSON pointer segment. */
const pointerSegment = (segment: string) => segment.replaceAll('~', '~0').replaceAll('/', '~1');

export class RunpodContract {
  private readonly ajv = new Ajv2020({ strict: false, validateSchema: false, allErrors: true });
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly doc = spec as Json;
  private readonly routes: Array<{ template: string; pattern: RegExp }>;

  constructor() {
    addFormats(this.ajv);
    this.ajv.addSchema(this.doc, DOC_ID);
    this.routes = Object.keys(this.doc.paths).map((template) => ({
      template,
      pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
    }));
  }

  /** The operation a request names, or undefined when RunPod publishes no such route or method. */
  operation(method: string, path: string): { template: string; operationId: string } | undefined {
    const route = this.routes.find((r) => r.pattern.test(path));
    const op = route && this.doc.paths[route.template][method.toLowerCase()];
    return op ? { template: route.template, operationId: op.operationId } : undefined;
  }

  /** Problems with a request (empty: it is one RunPod documents, with a body its schema accepts). */
  checkRequest(method: string, path: string, body: unknown): string[] {
    const op = this.operation(method, path);
    if (!op) return [`${method} ${path}: RunPod v2 has no such operation`];
    const requestBody = this.doc.paths[op.template][method.toLowerCase()].requestBody;
    if (!requestBody) return body === undefined ? [] : [`${op.operationId}: takes no body`];
    if (body === undefined) return requestBody.required ? [`${op.operationId}: a body is required`] : [];
    const pointer = `/paths/${pointerSegment(op.template)}/${method.toLowerCase()}/requestBody/content/application~1json/schema`;
    return this.validate(pointer, body).map((e) => `${op.operationId} request ${e}`);
  }

  /** Problems with a response (status documented for the operation, body valid against its schema). */
  checkResponse(method: string, path: string, status: number, body: unknown): string[] {
    const op = this.operation(method, path);
    if (!op) return [`${method} ${path}: RunPod v2 has no such operation`];
    const responses = this.doc.paths[op.template][method.toLowerCase()].responses as Json;
    const key = String(status) in responses ? String(status) : 'default' in responses ? 'default' : undefined;
    if (!key) return [`${op.operationId}: status ${status} is not documented`];
    if (key === 'default' && status < 400) return [`${op.operationId}: success status ${status} is not documented`];
    let pointer = `/paths/${pointerSegment(op.template)}/${method.toLowerCase()}/responses/${key}`;
    let response = responses[key] as Json;
    if (response.$ref) {
      pointer = (response.$ref as string).slice(1);
      response = this.resolve(pointer);
    }
    if (!response.content) return body === undefined ? [] : [`${op.operationId} ${status}: documented without a body`];
    const [mediaType] = Object.keys(response.content);
    return this.validate(`${pointer}/content/${pointerSegment(mediaType!)}/schema`, body).map((e) => `${op.operationId} ${status} ${e}`);
  }

  private resolve(pointer: string): Json {
    return pointer
      .split('/')
      .slice(1)
      .reduce((node: Json, segment) => node[segment.replaceAll('~1', '/').replaceAll('~0', '~')], this.doc);
  }

  private validate(pointer: string, value: unknown): string[] {
    let validate = this.compiled.get(pointer);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `${DOC_ID}#${pointer}` });
      this.compiled.set(pointer, validate);
    }
    if (validate(value)) return [];
    return (validate.errors ?? []).map(
      (e) => `${e.instancePath || '(body)'} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`,
    );
  }
}
