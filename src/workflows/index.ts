/** Every workflow the worker registers. */
export { poolWorkflowV2 } from './pool';
export { poolWorkflow } from './pool-legacy';
export { jobWorkflow } from './job';
export { jobDeliveryWorkflow } from './delivery';
export { requestWorkflow } from './request';
