/**
 * ntfy topics per workspace. ntfy topics are readable by whoever knows their name, so a workspace's topic is
 * the operator's base topic, the workspace id and an unguessable suffix (an HMAC of the workspace id under the
 * shared secret key): one workspace's job events never reach another's subscribers, and no one lists them by
 * guessing ids. The default workspace (the operator's own) keeps the base topic.
 */
import { DEFAULT_WORKSPACE } from '../ids';

/** ntfy's topic alphabet and length. */
export const NTFY_TOPIC_PATTERN = /^[-_A-Za-z0-9]{1,64}$/;

/** The topic of `workspaceId`'s notifications; `suffix` is base64url (ntfy's alphabet). */
export function workspaceTopic(baseTopic: string, workspaceId: string, suffix: string): string {
  if (workspaceId === DEFAULT_WORKSPACE) return baseTopic;
  return `${baseTopic.slice(0, 20)}-${workspaceId.slice(0, 24)}-${suffix.slice(0, 16)}`;
}
