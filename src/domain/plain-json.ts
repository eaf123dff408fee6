/**
 * A deep copy of plain-JSON state (the machines' states travel through Temporal as JSON anyway). Not
 * structuredClone: the workflow sandbox has none.
 */
export function jsonCopy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
