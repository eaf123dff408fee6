/** Structured logging (pino). Child loggers name pool, node and job ids. */
import pino from 'pino';

/** The process-wide logger. LOG_LEVEL is read directly so tests and tools can quiet it before config loads. */
export const logger = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { service: 'zeropool' } });
