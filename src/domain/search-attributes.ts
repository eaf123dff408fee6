/** Custom search attributes that make pools and jobs findable in the Temporal Web UI. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Pool a workflow belongs to. */
export const poolKey = defineSearchAttributeKey('ZeropoolPool', SearchAttributeType.KEYWORD);
/** Status of a job workflow. */
export const jobStatusKey = defineSearchAttributeKey('ZeropoolStatus', SearchAttributeType.KEYWORD);
/** Every custom search attribute, for registration. */
export const ALL_SEARCH_ATTRIBUTES = [poolKey, jobStatusKey];
