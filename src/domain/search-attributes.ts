/** Custom search attributes that make pools and jobs findable in the Temporal Web UI. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Pool a workflow belongs to. */
export const poolKey = defineSearchAttributeKey('ZeropoolPool', SearchAttributeType.KEYWORD);
/** Status of a job workflow. */
export const jobStatusKey = defineSearchAttributeKey('ZeropoolStatus', SearchAttributeType.KEYWORD);
/** Workspace a job belongs to. */
export const workspaceKey = defineSearchAttributeKey('ZeropoolWorkspace', SearchAttributeType.KEYWORD);
/** A job's priority as submitted (1 highest … 5 lowest). */
export const jobPriorityKey = defineSearchAttributeKey('ZeropoolPriority', SearchAttributeType.INT);
/** Every custom search attribute, for registration. */
export const ALL_SEARCH_ATTRIBUTES = [poolKey, jobStatusKey, workspaceKey, jobPriorityKey];
