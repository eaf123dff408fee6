/** Every workflow the worker registers. */
// The live pool workflow keeps its registered type (running pools and recorded histories use it).
export { poolEntityWorkflow as poolWorkflowV2 } from './pool';
export { poolWorkflow } from './pool-legacy';
export { jobWorkflow } from './job';
export { jobDeliveryWorkflow } from './delivery';
export { requestWorkflow } from './request';
