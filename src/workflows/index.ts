/** Every workflow the worker registers. */
export { poolWorkflow } from './pool';
export { jobWorkflow } from './job';
export { jobDeliveryWorkflow } from './delivery';
