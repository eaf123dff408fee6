/**
 * OpenTelemetry traces, off unless an OTLP endpoint is configured: one trace runs from the HTTP request
 * through the Temporal client call, the job workflow and the pool's placement to each activity (inference
 * included). Temporal's interceptors carry the context in workflow and activity headers; workflow spans
 * leave the sandbox through a sink.
 */
import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { ClientInterceptors } from '@temporalio/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  type OpenTelemetryWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry';
import type { InjectedSinks, WorkerInterceptors } from '@temporalio/worker';
import type { NextFunction, Request, Response } from 'express';

/** A started tracer provider and what the Temporal client and worker need from it. */
export interface Tracing {
  processor: SpanProcessor;
  resource: Resource;
  /** Flushes what is buffered and stops exporting. */
  shutdown(): Promise<void>;
}

/** The tracing settings of the configuration. */
export interface TracingSettings {
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;
  OTEL_SERVICE_NAME?: string;
}

/**
 * Starts tracing when an OTLP endpoint is configured (or an exporter is given, as tests do) and registers the
 * provider globally; returns undefined when tracing is off.
 */
export function startTracing(settings: TracingSettings, defaultServiceName: string, exporter?: SpanExporter): Tracing | undefined {
  if (!exporter && !settings.OTEL_EXPORTER_OTLP_ENDPOINT) return undefined;
  const spanExporter = exporter ?? new OTLPTraceExporter({ url: `${settings.OTEL_EXPORTER_OTLP_ENDPOINT!.replace(/\/$/, '')}/v1/traces` });
  const processor = new BatchSpanProcessor(spanExporter, { scheduledDelayMillis: exporter ? 100 : 2000 });
  const resource = new Resource({ 'service.name': settings.OTEL_SERVICE_NAME ?? defaultServiceName });
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  provider.register();
  return {
    processor,
    resource,
    shutdown: async () => {
      await provider.forceFlush();
      await provider.shutdown();
      trace.disable();
    },
  };
}

/** The Temporal client's interceptors: starts, signals and updates carry the caller's span. */
export function clientTracingInterceptors(tracing: Tracing | undefined): ClientInterceptors | undefined {
  return tracing ? { workflow: [new OpenTelemetryWorkflowClientInterceptor()] } : undefined;
}

/** The worker's activity interceptors and the sink that exports workflow spans. */
export function workerTracing(tracing: Tracing): {
  interceptors: WorkerInterceptors;
  sinks: InjectedSinks<{ exporter: OpenTelemetryWorkflowExporter }>;
} {
  return {
    interceptors: {
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
    },
    sinks: { exporter: makeWorkflowExporter(tracing.processor, tracing.resource) },
  };
}

/** The workflow interceptor module bundled into the workflow code when tracing is on. */
export const WORKFLOW_TRACING_MODULE = require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');

/** Express middleware: one server span per request, active while the route runs (so Temporal calls nest under it). */
export function httpTracing(): (req: Request, res: Response, next: NextFunction) => void {
  const tracer = trace.getTracer('zeropool-api');
  return (req, res, next) => {
    const span: Span = tracer.startSpan(`${req.method} ${req.path}`, {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': req.method, 'url.path': req.path },
    });
    res.on('close', () => {
      // The matched route names the span once routing is done (`POST /v1/jobs`, not each id).
      const route = req.route?.path ? `${req.baseUrl}${req.route.path}`.replace(/(.)\/$/, '$1') : undefined;
      if (route) span.updateName(`${req.method} ${route}`);
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.locals.workspaceId) span.setAttribute('zeropool.workspace', String(res.locals.workspaceId));
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    context.with(trace.setSpan(context.active(), span), next);
  };
}
