/**
 * A request's logger (`res.locals.log`), made on first use: a warm request usually logs nothing, and a pino
 * child per request (two, with the workspace's binding) is measurable on the front door's hot path. The locals
 * object is an instance of a class whose getter makes the child, so a request costs no closures either.
 */
import type { Logger } from 'pino';

/** `res.locals` with the lazy `log` (and whatever else routes keep there). */
class RequestLocals {
  [key: string]: unknown;
  #made: Logger | undefined;
  readonly #base: Logger;
  readonly #bindings: Record<string, unknown>;

  constructor(base: Logger, bindings: Record<string, unknown>) {
    this.#base = base;
    this.#bindings = bindings;
  }

  get log(): Logger {
    this.#made ??= this.#base.child(this.#bindings);
    return this.#made;
  }

  set log(log: Logger) {
    this.#made = log;
  }

  /** Adds bindings to the logger, whether or not it is made yet. */
  bind(bindings: Record<string, unknown>): void {
    if (this.#made) this.#made = this.#made.child(bindings);
    else Object.assign(this.#bindings, bindings);
  }
}

/** Gives `res.locals` a `log` that is `base.child(bindings)` (and the bindings added later), made when first read. */
export function lazyRequestLog(res: { locals: Record<string, unknown> }, base: Logger, bindings: Record<string, unknown>): void {
  const locals = new RequestLocals(base, bindings);
  Object.assign(locals, res.locals);
  res.locals = locals;
}

/** Adds bindings to the request's logger. */
export function addLogBindings(locals: Record<string, unknown>, bindings: Record<string, unknown>): void {
  if (locals instanceof RequestLocals) locals.bind(bindings);
  else locals.log = (locals.log as Logger).child(bindings);
}
